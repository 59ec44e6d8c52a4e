"""The private servers of runs: template build, cold start and memory, per kind.

For each server kind whose software is installed, with a fresh template cache in a
temporary directory:

  build     seconds to build the template data directory (once per cache key)
  template  its size on disk
  sandbox   median seconds from spawning a sandbox to the snippet's first output, for the
            sandbox's Python alone (print(1), no server)
  cold      the same with the server: template copied into the run's tmpfs, server started
            and accepting connections, then print(1)
  server    cold - sandbox: what the server adds to a run that starts cold
  copy      of that, the median time to copy the template into a tmpfs inside the sandbox
  RSS/PSS   memory of a started sandbox (every process of the run's uid, after a snippet
            connected once), RSS summed and proportional set size summed
  tmpfs     what the server's files take in the run's tmpfs (memory too)

    .venv/bin/python bench/servers.py [--tries 10]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.development")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from glossary import runner  # noqa: E402
from glossary.runner import serve  # noqa: E402
from glossary.runner.servers import SERVERS, sandbox_python  # noqa: E402

CONNECT = {
    "postgresql": "import psycopg; psycopg.connect().execute('SELECT 1')",
    "redis": "import os, redis; redis.Redis.from_url(os.environ['REDIS_URL']).ping()",
    "mysql": (
        "import os, pymysql; pymysql.connect(unix_socket=os.environ['MYSQL_UNIX_PORT'],"
        " user='root').ping()"
    ),
}
HOLD = "{connect}\nimport shutil, sys\nprint(shutil.disk_usage('/server').used, flush=True)\n"
HOLD += "sys.stdin.read()\n"


def first_output_seconds(argv):
    started = time.monotonic()
    process = subprocess.Popen(
        argv, env=runner.child_env(runner.SANDBOX_DIR), stdout=subprocess.PIPE, text=True
    )
    process.stdout.readline()
    elapsed = time.monotonic() - started
    process.wait()
    return elapsed


def median_seconds(argv, tries):
    first_output_seconds(argv)  # page cache
    return statistics.median(first_output_seconds(argv) for _ in range(tries))


def copy_seconds(server, tries):
    """Median seconds to copy the template inside a sandbox, as the launcher does."""
    code = "import shutil, time\nstarted = time.monotonic()\n"
    code += f"shutil.copytree({serve.TEMPLATE_DIR!r}, '/server/copy', symlinks=True,"
    code += " copy_function=shutil.copyfile)\n"
    code += "print(time.monotonic() - started)"
    argv = server.sandbox_argv([str(sandbox_python()), "-c", code])
    env = runner.child_env(runner.SANDBOX_DIR)
    runs = [subprocess.run(argv, env=env, capture_output=True, text=True) for _ in range(tries)]
    return statistics.median(float(run.stdout) for run in runs)


def memory_kb(uid):
    """(RSS, PSS) in kB summed over the host's processes of uid."""
    rss = pss = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            for line in (entry / "smaps_rollup").read_text().splitlines():
                name, _, value = line.partition(":")
                if name == "Rss":
                    rss += int(value.split()[0])
                elif name == "Pss":
                    pss += int(value.split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return rss, pss


def started_memory(server):
    argv = server.sandbox_argv(
        [str(sandbox_python()), "-c", HOLD.format(connect=CONNECT[server.kind])]
    )
    uid = int(next(arg for arg in argv if arg.startswith("--reuid=")).split("=")[1])
    process = subprocess.Popen(
        argv,
        env=runner.child_env(runner.SANDBOX_DIR),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    tmpfs = int(process.stdout.readline())
    time.sleep(0.5)  # let background workers settle
    rss, pss = memory_kb(uid)
    process.stdin.close()
    process.wait()
    return rss, pss, tmpfs


def table(tries):
    python = [str(sandbox_python()), "-c", "print(1)"]
    read_only = [sys.base_prefix, sandbox_python().parent.parent]
    bare = median_seconds(runner.bwrap_argv(python, read_only), tries)
    header = f"{'server':<11}{'build s':>8}{'template':>10}{'sandbox s':>10}{'cold s':>8}"
    header += f"{'server s':>9}{'copy s':>8}{'RSS MB':>8}{'PSS MB':>8}{'tmpfs MB':>9}"
    print(header)
    for kind, server in SERVERS.items():
        if not server.available():
            print(f"{kind:<11}skipped: {server.missing()}")
            continue
        build, size, copy = "-", "-", "-"
        if server.has_template:
            started = time.monotonic()
            template = server.template()
            build = f"{time.monotonic() - started:.2f}"
            used = sum(path.stat().st_size for path in template.rglob("*") if path.is_file())
            size = f"{used / 2**20:.0f} MB"
            copy = f"{copy_seconds(server, tries):.3f}"
        cold = median_seconds(server.sandbox_argv(python), tries)
        rss, pss, tmpfs = started_memory(server)
        row = f"{kind:<11}{build:>8}{size:>10}{bare:>10.3f}{cold:>8.3f}{cold - bare:>9.3f}{copy:>8}"
        row += f"{rss / 1024:>8.0f}{pss / 1024:>8.0f}{tmpfs / 2**20:>9.0f}"
        print(row)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=10, help="spawns per median")
    args = parser.parse_args()
    if not runner.bubblewrap_works():
        sys.exit("bubblewrap with namespaces is needed")
    with tempfile.TemporaryDirectory(prefix="bench-servers-") as cache:
        settings.SNIPPET_CACHE_DIR = Path(cache)
        table(args.tries)


if __name__ == "__main__":
    main()
