"""Mixed load on Daphne with two run workers over Redis: pages, searches and snippet runs.

Builds a scratch SQLite database (the seed content plus a snippet that prints numbered
lines) in a temporary directory, starts Daphne and two `manage.py runworker snippet-runs`
processes with RUNNER_MODE=workers on a Redis database and key prefix of their own, and
drives them from 50 concurrent clients for 60 s. Each client cycles through the home page,
topic pages, searches and snippet runs (a WebSocket each, as a reader pressing Run). Prints
requests, throughput, p50 and p99 per kind, errors, and the output lines lost: every run
prints the same numbered lines, and each one missing from what the client got counts.
The goal is 0 errors and 0 lost lines.

    .venv/bin/python bench/load.py [--seconds 60] [--clients 50]
"""

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import redis
from websockets.asyncio.client import connect as websocket_connect
from websockets.exceptions import WebSocketException

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pages import HOST, fetch, free_port, spawn, stop, tail  # noqa: E402

LINES = 200
LINES_CODE = f"for i in range({LINES}):\n    print(f'line {{i:03}}')\n"
EXPECTED = [f"line {i:03}" for i in range(LINES)]
SEARCHES = ["index", "transaction", "postgres", "redis", "shard", "acid", "orm", "replica"]
# Each client walks this cycle from its own starting point: about one run in six requests.
CYCLE = ["topic", "search", "home", "topic", "search", "run"]
REQUEST_TIMEOUT = 30
MAX_REQUESTS_PER_CLIENT = 100_000
SETUP = """\
import json
from glossary.models import Snippet, Topic
topic = Topic.objects.published().order_by("pk").first()
Snippet.objects.create(
    topic=topic, slug="bench-lines", title="Numbered lines", runtime="python", code={code!r}
)
print(json.dumps(list(Topic.objects.published().values_list("slug", flat=True))))
"""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="measured time")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=2, help="runworker processes")
    parser.add_argument(
        "--redis", default="redis://127.0.0.1:6379/6", help="Redis URL (a database of its own)"
    )
    return parser.parse_args()


@dataclass
class Kind:
    ok: int = 0
    errors: int = 0
    latencies: list = field(default_factory=list)
    examples: list = field(default_factory=list)

    def record(self, started, problem=None):
        self.latencies.append(time.perf_counter() - started)
        if problem is None:
            self.ok += 1
            return
        self.errors += 1
        if len(self.examples) < 3:
            self.examples.append(problem)

    def percentile_ms(self, fraction):
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


@dataclass
class Load:
    port: int
    topics: list
    kinds: dict = field(default_factory=lambda: {k: Kind() for k in ("home", "topic", "search")})
    runs: Kind = field(default_factory=Kind)
    lines_expected: int = 0
    lines_lost: int = 0

    def path(self, kind, n):
        if kind == "home":
            return "/"
        if kind == "topic":
            return f"/topics/{self.topics[n % len(self.topics)]}/"
        return f"/search/?q={SEARCHES[n % len(SEARCHES)]}"


class Page:
    """One kept-alive HTTP/1.1 connection."""

    def __init__(self, port):
        self.port = port
        self.reader = self.writer = None

    async def get(self, path):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n\r\n".encode()
        try:
            status, close = await fetch(self.reader, self.writer, request)
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        return status

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def run_snippet(load):
    """One run over a WebSocket: None, or what went wrong. Counts the lines it lost."""
    url = f"ws://{HOST}:{load.port}/ws/snippets/bench-lines/"
    load.lines_expected += LINES
    output, last = [], None
    try:
        async with websocket_connect(url, origin=f"http://{HOST}:{load.port}") as socket:
            await socket.send(json.dumps({"action": "run"}))
            while last is None or last["type"] not in ("exit", "error"):
                last = json.loads(await socket.recv())
                if last["type"] == "stdout":
                    output.append(last["text"])
    finally:
        got = "".join(output).splitlines()
        load.lines_lost += len(set(EXPECTED) - set(got))
    if last["type"] == "error":
        return last["message"]
    if last["reason"] != "ok":
        return f"exit {last['reason']}"
    if got != EXPECTED:
        return "the output is not the numbered lines in order"
    return None


async def client(load, number, deadline):
    page = Page(load.port)
    cycle = itertools.islice(itertools.cycle(CYCLE), number, None)
    for n, kind in zip(range(MAX_REQUESTS_PER_CLIENT), cycle, strict=False):
        if time.perf_counter() >= deadline:
            break
        started = time.perf_counter()
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                if kind == "run":
                    problem = await run_snippet(load)
                else:
                    status = await page.get(load.path(kind, number + n))
                    problem = None if status == 200 else f"HTTP {status}"
        except (OSError, ValueError, asyncio.IncompleteReadError, WebSocketException) as error:
            problem = repr(error)
            page.close()
        (load.runs if kind == "run" else load.kinds[kind]).record(started, problem)
    page.close()


async def wait_until_ready(daphne, workers, port, directory, timeout=30):
    deadline = time.monotonic() + timeout
    for log in (directory / f"worker-{i}.log" for i in range(len(workers))):
        while "Running worker" not in log.read_text():
            if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                raise RuntimeError(f"A run worker did not start; its log ends:\n{tail(log)}")
            await asyncio.sleep(0.1)
    page = Page(port)
    while True:
        try:
            if await page.get("/") == 200:
                page.close()
                return
        except (OSError, ValueError, asyncio.IncompleteReadError):
            page.close()
        if time.monotonic() > deadline or daphne.poll() is not None:
            raise RuntimeError(
                f"Daphne did not serve; its log ends:\n{tail(directory / 'daphne.log')}"
            )
        await asyncio.sleep(0.2)


def print_table(args, load, seconds, taken):
    print(
        f"\n{args.clients} clients for {seconds:.0f} s against Daphne and {args.workers} run "
        f"workers over Redis (RUNNER_MODE=workers); runs per worker: {taken}\n"
    )
    print(f"{'kind':<8} {'requests':>9} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    rows = [*load.kinds.items(), ("run", load.runs)]
    for name, kind in rows:
        total = kind.ok + kind.errors
        print(
            f"{name:<8} {total:>9} {total / seconds:>8.1f} {kind.percentile_ms(0.5):>8.1f} "
            f"{kind.percentile_ms(0.99):>8.1f} {kind.errors:>7}"
        )
    everything = Kind(
        ok=sum(k.ok for _, k in rows),
        errors=sum(k.errors for _, k in rows),
        latencies=[latency for _, k in rows for latency in k.latencies],
    )
    total = everything.ok + everything.errors
    print(
        f"{'all':<8} {total:>9} {total / seconds:>8.1f} {everything.percentile_ms(0.5):>8.1f} "
        f"{everything.percentile_ms(0.99):>8.1f} {everything.errors:>7}"
    )
    print(f"\nlost output lines: {load.lines_lost} of {load.lines_expected}")
    for name, kind in rows:
        for example in kind.examples:
            print(f"  {name} error: {example}")


def main():
    args = parse_args()
    prefix = f"bench-load-{uuid.uuid4().hex[:12]}-"
    with tempfile.TemporaryDirectory(prefix="bench-load-") as scratch:
        directory = Path(scratch)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.development",
            "DATABASE_URL": f"sqlite:///{directory / 'load.sqlite3'}",
            "DEBUG": "false",
            "RUNNER_MODE": "workers",
            "REDIS_URL": args.redis,
            "CHANNELS_PREFIX": prefix,
            "SNIPPET_RUNS_PER_MINUTE": "1000000",
            # Every bench client comes from one address.
            "SNIPPET_RUNS_PER_CLIENT": "1000",
            "SNIPPET_QUEUED_PER_CLIENT": "1000",
        }
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        subprocess.run([*manage, "loadseed"], cwd=ROOT, env=env, check=True, capture_output=True)
        setup = SETUP.format(code=LINES_CODE)
        topics = json.loads(
            subprocess.run(
                [*manage, "shell", "-v0", "-c", setup],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
            ).stdout
        )
        port = free_port()
        processes = []
        try:
            daphne_argv = [sys.executable, "-m", "daphne", "-b", HOST, "-p", str(port)]
            daphne = spawn([*daphne_argv, "config.asgi:application"], env, directory / "daphne.log")
            processes.append(daphne)
            workers = [
                spawn([*manage, "runworker", "snippet-runs"], env, directory / f"worker-{i}.log")
                for i in range(args.workers)
            ]
            processes += workers
            asyncio.run(wait_until_ready(daphne, workers, port, directory))

            load = Load(port, topics)

            async def drive():
                deadline = time.perf_counter() + args.seconds
                await asyncio.gather(*(client(load, i, deadline) for i in range(args.clients)))

            started = time.perf_counter()
            asyncio.run(drive())
            seconds = time.perf_counter() - started
            taken = [
                (directory / f"worker-{i}.log").read_text().count("Took run")
                for i in range(args.workers)
            ]
        finally:
            for process in processes:
                stop(process)
            connection = redis.Redis.from_url(args.redis)
            for key in connection.scan_iter(match=f"{prefix}*", count=1000):
                connection.delete(key)
        print_table(args, load, seconds, taken)
        failed = sum(k.errors for k in load.kinds.values()) + load.runs.errors + load.lines_lost
        if failed:
            for log in ["daphne.log", *(f"worker-{i}.log" for i in range(args.workers))]:
                lines = (directory / log).read_text().splitlines()
                notes = [line for line in lines if not line.startswith(("Took run", HOST))]
                print(f"\n{log} ends:\n" + "\n".join(notes[-15:]))
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
