"""Snippet runs through a real Daphne and WebSocket, next to spawning Python directly.

Builds a scratch SQLite database (migrate + the seed fixture + three bench snippets) in a
temporary directory. First, in this process, where a run's time goes: each stage of
starting a run (bubblewrap, setpriv and prlimit, the interpreter, its site import, the
child, a fork from the fork server, a warm process's handoff, a private server's start),
its time to first output and its CPU (perf's task-clock, children included), and the
memory of each runtime's warm processes and fork server. Then it starts Daphne on a free
port and measures:

  (a) time from sending {"action": "run"} to the first stdout event, for print(1) next to
      a bare `python -c 'print(1)'`, for a Django ORM snippet next to a fresh process
      that runs django.setup() and the same query, for a warm postgresql and redis run
      (each connects to its own server) next to the bare print(1), and for a reader's
      edited print(1) ({"action": "run", "code": ...}) next to the curated one, and for
      print(1) next to a warm Jupyter kernel's execute request (bench/kernel.py);
  (b) runs per second with 20 WebSocket clients next to 20 concurrent bare spawns, for
      print(1) and for postgresql runs;
  (c) a topic page's p99 latency while 20 runs stream, next to idle.

    .venv/bin/python bench/runs.py [--tries 30] [--seconds 10] [--warm-pool 2] [--edited-only]
        [--stages-only]
"""

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pages import HOST, free_port, start_daphne, stop  # noqa: E402

CLIENTS = 20
KERNEL_PYTHON = ROOT / ".bench-venv" / "bin" / "python"
# Not the snippet's own code ("print(1)"), so it runs as a reader's edit.
EDITED_PRINT = "print(1)\n"
ORM_QUERY = "from glossary.models import Topic; print(Topic.objects.count())"
SNIPPETS = {
    "bench-print": ("python", "print(1)"),
    "bench-orm": ("django", ORM_QUERY.replace("; ", "\n")),
    "bench-postgresql": (
        "postgresql",
        "import psycopg\nprint(psycopg.connect().execute('SELECT 1').fetchone()[0])",
    ),
    "bench-redis": (
        "redis",
        "import os, redis\nprint(redis.Redis.from_url(os.environ['REDIS_URL']).ping())",
    ),
    "bench-stream": (
        "python",
        "import time\nfor n in range(40):\n    print('line', n)\n    time.sleep(0.05)\n",
    ),
}
SETUP = """\
from glossary.models import Snippet, Topic
topic = Topic.objects.published().order_by("pk").first()
for slug, (runtime, code) in {snippets!r}.items():
    Snippet.objects.update_or_create(
        slug=slug, defaults=dict(topic=topic, title=slug, code=code, runtime=runtime)
    )
print(topic.get_absolute_url())
"""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=30, help="runs per first-output row")
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between those runs")
    parser.add_argument("--seconds", type=float, default=10, help="per throughput/load row")
    parser.add_argument("--rounds", type=int, default=2, help="alternations per row")
    parser.add_argument("--warm-pool", type=int, default=2, help="SNIPPET_WARM_POOL for Daphne")
    parser.add_argument(
        "--edited-only", action="store_true", help="only the edited print(1) row (quick)"
    )
    parser.add_argument("--stages-only", action="store_true", help="only the stage table")
    return parser.parse_args()


def server_env(database, warm_pool):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE", "RUNNER_MODE")
    }
    return env | {
        "DJANGO_SETTINGS_MODULE": "config.settings.development",
        "DEBUG": "false",
        "DATABASE_URL": f"sqlite:///{database}",
        "SNIPPET_RUNS_PER_MINUTE": "1000000",
        "SNIPPET_QUEUE_SIZE": "1000",
        # Every bench client comes from one address.
        "SNIPPET_RUNS_PER_CLIENT": "1000",
        "SNIPPET_QUEUED_PER_CLIENT": "1000",
        "SNIPPET_WARM_POOL": str(warm_pool),
    }


def build_database(env):
    """Migrate, load the seed, add the bench snippets; the topic page's path."""
    manage = [sys.executable, str(ROOT / "manage.py")]
    for command in (["migrate", "--no-input"], ["loadseed"]):
        subprocess.run([*manage, *command, "-v", "0"], env=env, cwd=ROOT, check=True)
    setup = SETUP.format(snippets=SNIPPETS)
    result = subprocess.run(
        [*manage, "shell", "-c", setup], env=env, cwd=ROOT, check=True, capture_output=True
    )
    return result.stdout.decode().strip().splitlines()[-1]


# Where a run's time goes ---------------------------------------------------------------


def spawn_stats(argv, stdin=b""):
    """(seconds to argv's first byte of stdout, CPU seconds of argv and its children)."""
    perf = shutil.which("perf")
    with tempfile.NamedTemporaryFile("r") as report:
        if perf:
            argv = [perf, "stat", "-x,", "-e", "task-clock", "-o", report.name, "--", *argv]
        from glossary.runner import SANDBOX_DIR, child_env

        started = time.perf_counter()
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=child_env(SANDBOX_DIR)
        )
        process.stdin.write(stdin)
        process.stdin.close()
        process.stdout.read(1)
        first = time.perf_counter() - started
        process.stdout.read()
        process.wait()
        lines = [line for line in report.read().splitlines() if "task-clock" in line]
    cpu = float(lines[-1].split(",")[0]) / 1000 if lines else None
    return first, cpu


def process_cpu(pid):
    """CPU seconds of pid and of the children it has reaped."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def zygote_of(pid):
    """The fork server's Python process under its bubblewrap processes."""
    while Path(f"/proc/{pid}/comm").read_text().strip() == "bwrap":
        pid = int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0])
    return pid


async def run_first_output(code, runtime, language="python"):
    from glossary import runner

    started, first = time.perf_counter(), None
    async for event in runner.run(code, runtime, language=language):
        if event["type"] == "stdout" and first is None:
            first = time.perf_counter() - started
        if event["type"] in ("exit", "error") and event.get("reason", "error") != "ok":
            raise SystemExit(f"a {runtime} run failed: {event}")
    return first


def stage_row(label, firsts, cpus=(), note=""):
    cpu = f"{statistics.median(cpus) * 1000:.1f} ms" if cpus and None not in cpus else "-"
    return (label, f"{statistics.median(firsts) * 1000:.1f} ms", cpu, note)


async def stage_rows(tries):
    """Each stage of a run: subprocess stages first, then the runner's own in this process."""
    from django.conf import settings

    from glossary import runner
    from glossary.runner import child, runtimes
    from glossary.runner.limits import Limits
    from glossary.runner.pool import tree_pss_kb, tree_rss_kb, warm_pool

    base = runner.base_python()
    limits = Limits.from_settings("python")

    def bwrapped(command):
        return runner.bwrap_argv(command, read_only=[sys.base_prefix], limits=limits)

    echo = bwrapped(["echo", "1"])
    bare_bwrap = echo[: echo.index("setpriv")] + ["echo", "1"] if "setpriv" in echo else echo
    spawned = [
        ("bare `python -c print(1)` (the yardstick)", [sys.executable, "-c", "print(1)"], b""),
        ("interpreter: python -I -S", [base, "-I", "-S", "-c", "print(1)"], b""),
        ("  + site import: python -I", [base, "-I", "-c", "print(1)"], b""),
        ("bwrap -> echo", bare_bwrap, b""),
        ("bwrap -> setpriv -> prlimit -> echo", echo, b""),
        ("bwrap -> ... -> python -I", bwrapped([base, "-I", "-c", "print(1)"]), b""),
        (
            "cold run: bwrap -> ... -> child (before)",
            bwrapped(child.command(base, "serve", "5")),
            b"python\nprint(1)",
        ),
    ]
    rows = []
    for label, argv, stdin in spawned:
        stats = [spawn_stats(argv, stdin) for _ in range(tries)]
        rows.append(stage_row(label, [s[0] for s in stats], [s[1] for s in stats]))

    pool = warm_pool()
    for runtime, code in (
        ("python", "print(1)"),
        ("django", ORM_QUERY),
        ("postgresql", SNIPPETS["bench-postgresql"][1]),
        ("redis", SNIPPETS["bench-redis"][1]),
    ):
        kind = runtimes.get(runtime)
        if kind.unavailable(runner.sandbox.available()):
            continue
        given = await kind.given()
        settings_limits = Limits.from_settings(runtime)
        firsts = []
        for _ in range(max(3, tries // 3)):
            started = time.perf_counter()
            process = await kind.start(runner.sandbox.Bubblewrap(), settings_limits, given)
            process.stdin.write(f"python\n{code}".encode())
            process.stdin.close()
            await process.stdout.read(1)
            firsts.append(time.perf_counter() - started)
            await process.communicate()
        rows.append(stage_row(f"{runtime}: cold start, bwrap -> ... -> output", firsts))

        for _ in range(2):  # the pool keeps a runtime warm from its second run on
            await run_first_output(code, runtime)
        deadline = time.monotonic() + 30
        while len(runner.warm_pids(runtime)) < settings.SNIPPET_WARM_POOL:
            if time.monotonic() > deadline:
                raise SystemExit(f"the pool did not warm {runtime}")
            await asyncio.sleep(0.05)
        idle = runner.warm_pids(runtime)
        sandbox_mb = statistics.median(tree_pss_kb(pid) for pid in idle) / 1024
        sandbox_rss = statistics.median(tree_rss_kb(pid) for pid in idle) / 1024
        zygote = pool.zygotes.get(runtime)
        if zygote is not None:
            zygote_pid = zygote_of(zygote.pid)
            forks = []
            cpu_before = process_cpu(zygote_pid) + sum(os.times()[:2])
            for _ in range(tries):
                started = time.perf_counter()
                process = await zygote.fork(
                    kind.spawn_limits(settings_limits, given), settings_limits.cpu_seconds
                )
                process.stdin.write(f"python\n{code}".encode())
                process.stdin.close()
                await process.stdout.read(1)
                forks.append(time.perf_counter() - started)
                await process.stdout.read()
                await process.stderr.read()
                await process.wait()
            await asyncio.sleep(1.5)  # the zygote reaps its runs' inits within a second
            # Clock ticks are 10 ms: the CPU of all the forks, shared out.
            cpus = [(process_cpu(zygote_pid) + sum(os.times()[:2]) - cpu_before) / tries]
            zygote_mb = tree_pss_kb(zygote.pid) / 1024
            rows.append(
                stage_row(
                    f"{runtime}: fork from the fork server -> output",
                    forks,
                    cpus,
                    f"fork server {zygote_mb:.0f} MB",
                )
            )
        warm = []
        for _ in range(tries):
            warm.append(await run_first_output(code, runtime))
            await asyncio.sleep(0.3)  # let the pool replace what the run took
        rows.append(
            stage_row(
                f"{runtime}: warm handoff (runner.run) -> output",
                warm,
                note=f"each warm sandbox {sandbox_mb:.0f} MB PSS, {sandbox_rss:.0f} MB RSS",
            )
        )
    pids = [*runner.warm_pids(), *(zygote.pid for zygote in pool.zygotes.values())]
    pss = sum(tree_pss_kb(pid) for pid in pids) / 1024
    rows.append(
        (
            "warm pool, all runtimes",
            "-",
            "-",
            f"{pss:.0f} MB PSS, {pool.idle_mb():.0f} MB RSS "
            f"(bound SNIPPET_WARM_POOL_MB={settings.SNIPPET_WARM_POOL_MB})",
        )
    )
    await runner.shutdown_pool()
    return rows


def print_stage_table(rows):
    headers = ("stage", "first output (median)", "CPU (median)", "")
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    print()


# Through Daphne ------------------------------------------------------------------------


async def get(port, path):
    """(status, seconds) of one GET on a new connection."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        response = await reader.read()
    finally:
        writer.close()
    return int(response.split(maxsplit=2)[1]), time.perf_counter() - started


async def wait_until_serving(process, port, log_path, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if (await get(port, "/"))[0] == 200:
                return
        except (OSError, IndexError, ValueError):
            pass
        await asyncio.sleep(0.2)
    raise SystemExit(f"Daphne did not serve /; its log ends:\n{log_path.read_text()[-2000:]}")


class Socket:
    """One WebSocket to a snippet's run endpoint."""

    def __init__(self, port, slug):
        self.uri = f"ws://{HOST}:{port}/ws/snippets/{slug}/"
        self.origin = f"http://{HOST}:{port}"

    async def __aenter__(self):
        self.connection = await connect(self.uri, origin=self.origin, compression=None)
        return self

    async def __aexit__(self, *exc_info):
        await self.connection.close()

    async def run(self, code=None):
        """(seconds to the first stdout event or None, the exit event). With code: a
        reader's own code instead of the snippet's."""
        message = {"action": "run"} if code is None else {"action": "run", "code": code}
        started = time.perf_counter()
        await self.connection.send(json.dumps(message))
        first = None
        while True:
            event = json.loads(await self.connection.recv())
            if event["type"] == "stdout" and first is None:
                first = time.perf_counter() - started
            if event["type"] in ("exit", "error"):
                return first, event


async def spawn(argv, env=None):
    """Seconds from spawning argv to its first byte of stdout; waits for it to end."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=ROOT
    )
    await process.stdout.read(1)
    first = time.perf_counter() - started
    await process.communicate()
    return first


def quantiles(samples):
    """(median, p90, p99) in milliseconds."""
    ordered = sorted(samples)

    def at(fraction):
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

    return statistics.median(ordered) * 1000, at(0.9), at(0.99)


async def first_outputs(port, slug, bare_argv, bare_env, tries, gap):
    """Seconds to first output through the socket and of bare spawns, tries interleaved."""
    ours, bare = [], []
    async with Socket(port, slug) as sock:
        for _ in range(3):  # the pool warms a runtime from its second run on
            await sock.run()
            await asyncio.sleep(gap)
        for _ in range(tries):
            first, exit_event = await sock.run()
            if first is None or exit_event.get("reason") != "ok":
                raise SystemExit(f"{slug} did not run: {exit_event}")
            ours.append(first)
            await asyncio.sleep(gap / 2)
            bare.append(await spawn(bare_argv, bare_env))
            await asyncio.sleep(gap / 2)
    return ours, bare


async def edited_first_outputs(port, tries, gap):
    """Seconds to first output of an edited print(1), the curated one and a bare spawn,
    interleaved on one socket."""
    edited, curated, bare = [], [], []
    bare_argv = [sys.executable, "-c", "print(1)"]
    async with Socket(port, "bench-print") as sock:
        for _ in range(3):
            await sock.run(EDITED_PRINT)
            await asyncio.sleep(gap)
        for _ in range(tries):
            for code, samples in ((EDITED_PRINT, edited), (None, curated)):
                first, exit_event = await sock.run(code)
                if first is None or exit_event.get("reason") != "ok":
                    raise SystemExit(f"an edited run did not run: {exit_event}")
                samples.append(first)
                await asyncio.sleep(gap / 3)
            bare.append(await spawn(bare_argv))
            await asyncio.sleep(gap / 3)
    return edited, curated, bare


async def kernel_first_outputs(port, tries, gap):
    """Seconds to first output of print(1) through the socket and of a warm Jupyter
    kernel (bench/kernel.py), tries interleaved; None without .bench-venv."""
    if not KERNEL_PYTHON.exists():
        return None
    kernel = await asyncio.create_subprocess_exec(
        str(KERNEL_PYTHON),
        str(ROOT / "bench" / "kernel.py"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    ours, theirs = [], []
    try:
        if (await kernel.stdout.readline()).strip() != b"ready":
            raise SystemExit("The Jupyter kernel did not start (make bench builds .bench-venv).")
        async with Socket(port, "bench-print") as sock:
            for _ in range(3):
                await sock.run()
                await asyncio.sleep(gap)
            for _ in range(tries):
                first, exit_event = await sock.run()
                if first is None or exit_event.get("reason") != "ok":
                    raise SystemExit(f"print(1) did not run: {exit_event}")
                ours.append(first)
                await asyncio.sleep(gap / 2)
                kernel.stdin.write(b"go\n")
                theirs.append(float(await kernel.stdout.readline()))
                await asyncio.sleep(gap / 2)
    finally:
        kernel.stdin.close()
        await kernel.wait()
    return ours, theirs


def edited_row(edited, curated, bare):
    median = quantiles(edited)[0]
    ratio = median / quantiles(bare)[0]
    return ratio_row(
        "first stdout, edited print(1)",
        f"{median:.1f} ms (curated {quantiles(curated)[0]:.1f} ms)",
        f"{quantiles(bare)[0]:.1f} ms",
        ratio,
        "<= 1.5x",
        ratio <= 1.5,
    )


async def for_seconds(seconds, clients, step):
    """Run step() in a loop in each of clients tasks for seconds; steps per second."""
    deadline = time.perf_counter() + seconds
    counts = [0] * clients

    async def loop(index):
        while time.perf_counter() < deadline:
            await step(index)
            counts[index] += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(index) for index in range(clients)))
    return sum(counts) / (time.perf_counter() - started)


async def ws_throughput(port, slug, seconds):
    sockets = [Socket(port, slug) for _ in range(CLIENTS)]
    for sock in sockets:
        await sock.__aenter__()
    try:

        async def step(index):
            _, exit_event = await sockets[index].run()
            if exit_event.get("reason") != "ok":
                raise SystemExit(f"a run failed: {exit_event}")

        return await for_seconds(seconds, CLIENTS, step)
    finally:
        for sock in sockets:
            await sock.__aexit__()


async def bare_throughput(seconds):
    async def step(index):
        await spawn([sys.executable, "-c", "print(1)"])

    return await for_seconds(seconds, CLIENTS, step)


async def page_latencies(port, path, seconds):
    samples = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        status, elapsed = await get(port, path)
        if status != 200:
            raise SystemExit(f"{path} answered {status}")
        samples.append(elapsed)
    return samples


async def page_latencies_under_load(port, path, seconds):
    load = asyncio.create_task(ws_throughput(port, "bench-stream", seconds + 2.5))
    await asyncio.sleep(1)  # let the runs start streaming
    try:
        return await page_latencies(port, path, seconds)
    finally:
        await load


def ratio_row(label, ours, bare, ratio, goal, met):
    return (label, ours, bare, f"{ratio:.2f}x", goal, "yes" if met else "NO")


def print_table(rows, notes):
    headers = ("measure", "through Daphne", "yardstick", "ratio", "goal", "met")
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    print()
    for note in notes:
        print(note)


async def interleaved(rounds, seconds, first, second):
    """Average of first(seconds) and of second(seconds), alternating over rounds."""
    results = ([], [])
    for _ in range(rounds):
        results[0].append(await first(seconds / rounds))
        results[1].append(await second(seconds / rounds))
    return statistics.fmean(results[0]), statistics.fmean(results[1])


async def measure(args, port, topic_path, env):
    def ms(samples):
        median, p90, _ = quantiles(samples)
        return f"{median:.1f} / {p90:.1f} ms"

    rows = [edited_row(*await edited_first_outputs(port, args.tries, args.gap))]
    if args.edited_only:
        return rows
    bare_argv = [sys.executable, "-c", "print(1)"]
    ours, bare = await first_outputs(port, "bench-print", bare_argv, None, args.tries, args.gap)
    ratio = quantiles(ours)[0] / quantiles(bare)[0]
    rows.append(
        ratio_row("first stdout, print(1)", ms(ours), ms(bare), ratio, "<= 1.5x", ratio <= 1.5)
    )

    kernel = await kernel_first_outputs(port, args.tries, args.gap)
    if kernel is None:
        rows.append(("first stdout, print(1)", "-", "no .bench-venv: make bench", "-", "", ""))
    else:
        ours, theirs = kernel
        ratio = quantiles(ours)[0] / quantiles(theirs)[0]
        rows.append(
            ratio_row(
                "first stdout, print(1), vs Jupyter",
                ms(ours),
                f"{ms(theirs)} kernel",
                ratio,
                "<= 1.0x",
                ratio <= 1.0,
            )
        )

    fresh_argv = [sys.executable, "-c", f"import django; django.setup(); {ORM_QUERY}"]
    fresh_env = env | {"DJANGO_SETTINGS_MODULE": "config.settings.sandbox"}
    ours, bare = await first_outputs(port, "bench-orm", fresh_argv, fresh_env, args.tries, args.gap)
    median = quantiles(ours)[0]
    ratio = median / quantiles(bare)[0]
    rows.append(
        ratio_row("first stdout, Django ORM", ms(ours), ms(bare), ratio, "<= 50 ms", median <= 50)
    )

    for slug, goal_ms in (("bench-postgresql", 50), ("bench-redis", 20)):
        ours, bare = await first_outputs(port, slug, bare_argv, None, args.tries, args.gap)
        median = quantiles(ours)[0]
        ratio = median / quantiles(bare)[0]
        label = f"first stdout, warm {SNIPPETS[slug][0]}"
        rows.append(
            ratio_row(label, ms(ours), ms(bare), ratio, f"<= {goal_ms} ms", median <= goal_ms)
        )

    for slug in ("bench-print", "bench-postgresql"):
        ours, bare = await interleaved(
            args.rounds,
            args.seconds,
            lambda seconds, slug=slug: ws_throughput(port, slug, seconds),
            bare_throughput,
        )
        ratio = ours / bare
        rows.append(
            ratio_row(
                f"runs/s, {CLIENTS} clients, {SNIPPETS[slug][0]}",
                f"{ours:.1f}/s",
                f"{bare:.1f}/s bare",
                ratio,
                ">= 1.0x" if slug == "bench-print" else "reported",
                ratio >= 1.0 or slug != "bench-print",
            )
        )

    async def p99(latencies, seconds):
        return quantiles(await latencies(port, topic_path, seconds))[2]

    loaded, idle = await interleaved(
        args.rounds,
        args.seconds,
        lambda seconds: p99(page_latencies_under_load, seconds),
        lambda seconds: p99(page_latencies, seconds),
    )
    ratio = loaded / idle
    rows.append(
        ratio_row(
            f"topic page p99, {CLIENTS} runs streaming",
            f"{loaded:.1f} ms",
            f"{idle:.1f} ms idle",
            ratio,
            "<= 2x idle",
            ratio <= 2,
        )
    )
    return rows


async def main():
    args = parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-runs-"))
    env = server_env(scratch / "db.sqlite3", args.warm_pool)
    log_path = scratch / "daphne.log"
    print(f"Building the scratch database in {scratch} ...", flush=True)
    topic_path = build_database(env)
    os.environ.update(env)
    import django

    django.setup()
    print_stage_table(await stage_rows(max(5, args.tries // 2)))
    if args.stages_only:
        shutil.rmtree(scratch, ignore_errors=True)
        return
    port = free_port()
    daphne = start_daphne(port, env, log_path)
    try:
        await wait_until_serving(daphne, port, log_path)
        rows = await measure(args, port, topic_path, env)
    finally:
        stop(daphne)
        shutil.rmtree(scratch, ignore_errors=True)
    notes = [
        f"First stdout: median / p90 of {args.tries} runs {args.gap} s apart, each followed by "
        "its yardstick: `python -c 'print(1)'`, or a fresh process doing django.setup() and "
        "the same query.",
        f"Throughput and page rows: {args.seconds:g} s each side, alternated over "
        f"{args.rounds} rounds. SNIPPET_WARM_POOL={args.warm_pool}.",
        f"{os.cpu_count()} CPUs, shared by Daphne, its runs and this client.",
    ]
    print_table(rows, notes)


if __name__ == "__main__":
    asyncio.run(main())
