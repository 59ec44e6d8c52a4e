"""Snippet runs through a real Daphne and WebSocket, next to spawning Python directly.

Builds a scratch SQLite database (migrate + the seed fixture + three bench snippets) in a
temporary directory, starts Daphne on a free port, and measures:

  (a) time from sending {"action": "run"} to the first stdout event, for print(1) next to
      a bare `python -c 'print(1)'`, for a Django ORM snippet next to a fresh process
      that runs django.setup() and the same query, for a warm postgresql and redis run
      (each connects to its own server) next to the bare print(1), and for a reader's
      edited print(1) ({"action": "run", "code": ...}) next to the curated one;
  (b) runs per second with 20 WebSocket clients next to 20 concurrent bare spawns, for
      print(1) and for postgresql runs;
  (c) a topic page's p99 latency while 20 runs stream, next to idle.

    .venv/bin/python bench/runs.py [--tries 30] [--seconds 10] [--warm-pool 2] [--edited-only]
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
                ">= 0.8x" if slug == "bench-print" else "reported",
                ratio >= 0.8 or slug != "bench-print",
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
