"""Uneven runs on two run workers: do short runs wait behind a long one?

Builds a scratch SQLite database in a temporary directory with two snippets, a long one
(it sleeps) and a short one (it prints), then, for each way of handing runs to workers,
starts Daphne and two run workers over Redis (RUNNER_MODE=workers, a key prefix of their
own, SNIPPET_RUN_SLOTS each) and sends, over real WebSockets, the long runs first and,
once they have started, the short ones all at once:

- greedy: channels' own `runworker`, how runs were handed over before: each worker takes
  every request as it comes and queues it behind its own runs, busy or not.
- balanced: the project's `runworker snippet-runs`: a worker takes a request only while
  it has a free slot, so runs wait in Redis until any worker has room.

Prints, per mode, each short run's wait (Run pressed to start event, p50 and max), the
time until every short run had finished, and how many runs each worker took. With
3 long runs on 2 workers of 2 slots, one slot stays free: the ideal is that no short run
waits for a long one, so their wait stays far below the long runs' length.

    .venv/bin/python bench/workers.py [--slots 2] [--long 3] [--short 12] [--long-seconds 4]
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
from websockets.asyncio.client import connect as websocket_connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import wait_until_ready  # noqa: E402
from bench.pages import HOST, free_port, spawn, stop  # noqa: E402

SETUP = """\
from glossary.models import Snippet, Topic
topic = Topic.objects.create(name="Bench", slug="bench")
for slug, code in {snippets!r}.items():
    Snippet.objects.create(topic=topic, slug=slug, title=slug, runtime="python", code=code)
"""
# channels' own runworker, whose Worker takes every request off the channel at once.
GREEDY = """\
import django
django.setup()
from channels.management.commands.runworker import Command
from django.core.management import call_command
call_command(Command(), "snippet-runs")
"""
MODES = {
    "greedy": [sys.executable, "-c", GREEDY],
    "balanced": [sys.executable, "manage.py", "runworker", "snippet-runs"],
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", type=int, default=2, help="run slots per worker")
    parser.add_argument("--long", type=int, default=3, help="long runs, sent first")
    parser.add_argument("--short", type=int, default=12, help="short runs, sent next")
    parser.add_argument("--long-seconds", type=float, default=4, help="a long run's sleep")
    parser.add_argument(
        "--redis", default="redis://127.0.0.1:6379/7", help="Redis URL (a database of its own)"
    )
    return parser.parse_args()


async def run(port, slug, started=None):
    """Run a snippet as a reader does; seconds until its start event and until its end."""
    url = f"ws://{HOST}:{port}/ws/snippets/{slug}/"
    async with websocket_connect(url, origin=f"http://{HOST}:{port}") as socket:
        sent = time.perf_counter()
        await socket.send(json.dumps({"action": "run"}))
        waited = None
        async with asyncio.timeout(120):
            while True:
                event = json.loads(await socket.recv())
                if event["type"] == "start":
                    waited = time.perf_counter() - sent
                    if started:
                        started.set()
                elif event["type"] in ("exit", "error"):
                    if event.get("reason") != "ok":
                        raise RuntimeError(f"{slug} did not run: {event}")
                    return waited, time.perf_counter() - sent


async def scenario(port, args):
    """The long runs, then, once they all run, the short ones; each short run's wait and
    the seconds until the last short one ended."""
    starts = [asyncio.Event() for _ in range(args.long)]
    longs = [asyncio.create_task(run(port, "long", started)) for started in starts]
    async with asyncio.timeout(30):
        await asyncio.gather(*(started.wait() for started in starts))
    begun = time.perf_counter()
    shorts = await asyncio.gather(*(run(port, "short") for _ in range(args.short)))
    all_short = time.perf_counter() - begun
    await asyncio.gather(*longs)
    return [waited for waited, _ in shorts], all_short


def measure(mode, args, directory, env):
    prefix = f"bench-workers-{uuid.uuid4().hex[:12]}-"
    env = {**env, "CHANNELS_PREFIX": prefix, "CACHE_KEY_PREFIX": prefix}
    port = free_port()
    logs_dir = directory / mode
    logs_dir.mkdir()
    logs = [logs_dir / f"worker-{i}.log" for i in range(2)]
    daphne_argv = [sys.executable, "-m", "daphne", "-b", HOST, "-p", str(port)]
    processes = []
    try:
        daphne = spawn([*daphne_argv, "config.asgi:application"], env, logs_dir / "daphne.log")
        processes.append(daphne)
        workers = [spawn(MODES[mode], env, log) for log in logs]
        processes += workers
        asyncio.run(wait_until_ready(daphne, workers, port, logs_dir))
        # Warm up each worker's pool; then count short runs from here on.
        asyncio.run(scenario(port, argparse.Namespace(**{**vars(args), "short": 4})))
        before = [log.read_text().count("Took run") for log in logs]
        waits, all_short = asyncio.run(scenario(port, args))
        after = [log.read_text().count("Took run") for log in logs]
        taken = [end - start for start, end in zip(before, after, strict=True)]
    finally:
        for process in processes:
            stop(process)
        connection = redis.Redis.from_url(args.redis)
        for key in connection.scan_iter(match=f"{prefix}*", count=1000):
            connection.delete(key)
    return waits, all_short, taken


def main():
    args = parse_args()
    snippets = {
        "long": f"import time\nprint('long', flush=True)\ntime.sleep({args.long_seconds})\n",
        "short": "print('short')\n",
    }
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as scratch:
        directory = Path(scratch)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.development",
            "DATABASE_URL": f"sqlite:///{directory / 'workers.sqlite3'}",
            "DEBUG": "false",
            "RUNNER_MODE": "workers",
            "REDIS_URL": args.redis,
            "SNIPPET_RUN_SLOTS": str(args.slots),
            "SNIPPET_RUNS_PER_MINUTE": "1000000",
            # Every bench run comes from one address.
            "SNIPPET_RUNS_PER_CLIENT": "1000",
            "SNIPPET_QUEUED_PER_CLIENT": "1000",
        }
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        setup = ["shell", "-v0", "-c", SETUP.format(snippets=snippets)]
        subprocess.run([*manage, *setup], cwd=ROOT, env=env, check=True)
        for mode in MODES:
            results[mode] = measure(mode, args, directory, env)
    print_table(args, results)


def print_table(args, results):
    print(
        f"\n2 workers x {args.slots} slots; {args.long} long runs ({args.long_seconds:g} s), "
        f"then {args.short} short runs at once; load average "
        + " ".join(f"{load:.2f}" for load in os.getloadavg())
    )
    print(
        f"\n{'dispatch':<10}{'short wait p50 s':>18}{'max s':>8}{'all short done s':>18}"
        f"{'runs per worker':>18}"
    )
    for mode, (waits, all_short, taken) in results.items():
        print(
            f"{mode:<10}{statistics.median(waits):>18.3f}{max(waits):>8.3f}"
            f"{all_short:>18.3f}{str(taken):>18}"
        )
    waited_for_long = [
        mode for mode, (waits, _, _) in results.items() if max(waits) >= args.long_seconds / 2
    ]
    print(f"\nShort runs that waited for a long one: {', '.join(waited_for_long) or 'none'}")


if __name__ == "__main__":
    main()
