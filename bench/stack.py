"""Requests per second of the cached pages through the production stack, with wrk.

Builds the scratch SQLite database of bench/pages.py (1,000 topics, 10,000 links by
default), collects static files, and starts deploy/stack.py with bench.settings (nginx in
front of granian for HTTP and Daphne for WebSockets). Then wrk drives the bare view and
the cached home, letter and topic pages at three doors of the same processes, one after
the other: nginx (the production path), granian directly, and Daphne directly (how
`make run` serves HTTP). Goals: every page at 0.8x the bare view or better on the same
server, and 2,000 req/s or more through nginx.

    .venv/bin/python bench/stack.py [--seconds 5] [--rounds 1] [--connections 8] [--gzip]

req/s is the mean over the rounds, p50 the median and p99 the worst.
"""

import argparse
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pages import HOST, build_data, free_port, pick_pages, setup_django, spawn, stop

GOAL_RATIO = 0.8
GOAL_PROXY_RPS = 2000
WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
WRK_PERCENTILE = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
WRK_BAD = re.compile(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)")
UNIT_MS = {"us": 0.001, "ms": 1, "s": 1000}
DOORS = ["nginx", "granian", "daphne"]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="wrk's time per page and door")
    parser.add_argument("--connections", type=int, default=8, help="wrk's keep-alive connections")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk's threads")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="granian's")
    parser.add_argument("--threads", type=int, default=1, help="running Django, per granian worker")
    parser.add_argument("--rounds", type=int, default=1, help="passes over all pages, averaged")
    parser.add_argument("--gzip", action="store_true", help="ask for gzip, as browsers do")
    parser.add_argument(
        "--doors", nargs="+", choices=DOORS, default=DOORS, help="where to drive the pages"
    )
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--links-per-topic", type=int, default=10)
    parser.add_argument("--snippets-per-topic", type=int, default=2)
    return parser.parse_args()


def wait_until_serving(url, process, within=60):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the stack exited while starting")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answered at {url}")


def wrk(url, args, seconds=None):
    """(req/s, p50 ms, p99 ms, failures) for url."""
    seconds = seconds or args.seconds
    argv = ["wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{seconds}s"]
    if args.gzip:
        argv += ["-H", "Accept-Encoding: gzip"]
    output = subprocess.run([*argv, "--latency", url], capture_output=True, text=True).stdout
    percentiles = {p: float(v) * UNIT_MS[u] for p, v, u in WRK_PERCENTILE.findall(output)}
    failures = [match.group(0) for match in WRK_BAD.finditer(output)]
    return float(WRK_RPS.search(output).group(1)), percentiles["50"], percentiles["99"], failures


def load():
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


def main():
    args = parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt install wrk).")
    scratch = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    env = {
        **{name: value for name, value in os.environ.items() if name != "REDIS_URL"},
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": f"sqlite:///{scratch / 'bench.sqlite3'}",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "STATIC_ROOT": str(scratch / "static"),
        "TRUSTED_PROXIES": "127.0.0.1",
    }
    process = None
    try:
        setup_django(env)
        from django.core.management import call_command

        print("Building the scratch database…", file=sys.stderr, flush=True)
        sizes = build_data(args.topics, args.links_per_topic, args.snippets_per_topic)
        call_command("collectstatic", interactive=False, verbosity=0)
        pages = pick_pages()
        ports = {"nginx": free_port(), "granian": free_port(), "daphne": free_port()}
        process = spawn(
            [
                sys.executable, "deploy/stack.py", "--port", str(ports["nginx"]),
                "--http-port", str(ports["granian"]), "--websocket-port", str(ports["daphne"]),
                "--workers", str(args.workers), "--threads", str(args.threads),
                "--run-dir", str(scratch / "run"),
            ],
            env,
            scratch / "stack.log",
        )  # fmt: skip
        for port in ports.values():
            wait_until_serving(f"http://{HOST}:{port}/bare/", process)

        print("Measuring…", file=sys.stderr, flush=True)
        load_before = load()
        urls = {
            (door, label): f"http://{HOST}:{port}{path}"
            for door, port in ports.items()
            if door in args.doors
            for label, path in pages
        }
        for url in urls.values():
            wrk(url, args, seconds=1)  # every worker renders and caches the page once
        # Rounds interleave the pages, so load from elsewhere falls on all of them alike.
        runs = {key: [] for key in urls}
        for _ in range(args.rounds):
            for key, url in urls.items():
                runs[key].append(wrk(url, args))
        load_after = load()
        rows = [
            (
                *key,
                statistics.mean(run[0] for run in results),
                statistics.median(run[1] for run in results),
                max(run[2] for run in results),
                [failure for run in results for failure in run[3]],
            )
            for key, results in runs.items()
        ]

        topics, links, snippets = sizes
        print(
            f"Pages through the production stack: {os.cpu_count()} CPUs, granian "
            f"{args.workers} workers x {args.threads} threads, 1 Daphne, nginx; SQLite "
            f"scratch database of {topics:,} topics, {links:,} links, {snippets:,} snippets"
        )
        print(
            f"wrk: {args.wrk_threads} threads, {args.connections} connections, {args.seconds} s "
            f"per page x {args.rounds} round(s)"
            f"{', Accept-Encoding: gzip' if args.gzip else ''}; load average (1, 5, 15 min) "
            f"before {load_before}, after {load_after}\n"
        )
        print(f"{'door':9} {'page':10} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'vs bare':>7}")
        bare = {door: rps for door, label, rps, *_ in rows if label == "bare"}
        failed = False
        for door, label, rps, p50, p99, failures in rows:
            ratio = rps / bare[door]
            print(
                f"{door:9} {label:10} {rps:7.0f} {p50:7.2f} {p99:7.2f} {ratio:6.2f}x"
                + (f"  {'; '.join(failures)}" if failures else "")
            )
            failed |= bool(failures)
        if proxied := [row for row in rows if row[0] == "nginx" and row[1] != "bare"]:
            ratios_met = all(r[2] >= GOAL_RATIO * bare["nginx"] for r in proxied)
            print(
                f"\nGoals through nginx: every page at {GOAL_RATIO}x bare or better: "
                f"{'met' if ratios_met else 'NOT met'}; {GOAL_PROXY_RPS:,} req/s or more: "
                f"{'met' if all(r[2] >= GOAL_PROXY_RPS for r in proxied) else 'NOT met'}"
            )
        return 1 if failed else 0
    finally:
        if process is not None:
            stop(process)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
