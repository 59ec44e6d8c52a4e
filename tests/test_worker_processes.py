"""Daphne and `manage.py runworker snippet-runs` processes sharing one Redis
(RUNNER_MODE=workers), over real WebSockets: runs spread over the workers, cancel and a
killed worker reach the reader. tests/test_run_workers.py drives the same parts in-process.
"""

import asyncio
import json
import signal
import sys
import time
import uuid

import pytest
from websockets.asyncio.client import connect as websocket_connect

from glossary import runner
from glossary.workers import protocol
from tests.conftest import require
from tests.live_server import daphne, migrated_database, shell, site_env, start
from tests.processes import exec_with_marker, processes_with, until_gone
from tests.test_run_workers import (
    COUNTER,
    EXPECTED,
    REDIS_URL,
    SLEEPER,
    delete_keys,
    redis_is_up,
    stdout,
    unique_prefix,
)

SITE_SNIPPETS = """\
from glossary.models import Snippet, Topic
topic = Topic.objects.create(name="Workers", slug="workers")
for slug, code in {snippets!r}.items():
    Snippet.objects.create(topic=topic, slug=slug, title=slug, runtime="python", code=code)
"""


class Site:
    """Run workers beside a Daphne, sharing its environment; each a process of its own."""

    def __init__(self, directory, env, markers, port):
        self.directory = directory
        self.env = env
        self.markers = markers
        self.port = port
        self.workers = []

    def start_workers(self, count):
        started = []
        for _ in range(count):
            argv = [sys.executable, "manage.py", "runworker", protocol.RUNS_CHANNEL]
            process = start(argv, self.env, self.directory / f"worker-{len(self.workers)}.log")
            self.workers.append(process)
            started.append(process)
        deadline = time.monotonic() + 30
        for process in started:
            while "Running worker" not in process.log.read_text():
                assert process.poll() is None, process.log.read_text()
                assert time.monotonic() < deadline, "a run worker did not start"
                time.sleep(0.05)

    def running_workers(self):
        return [process for process in self.workers if process.poll() is None]

    def stop_workers(self, sig=signal.SIGTERM):
        for process in self.running_workers():
            process.send_signal(sig)
            process.wait(timeout=10)

    def url(self, slug):
        return f"ws://127.0.0.1:{self.port}/ws/snippets/{slug}/"

    async def run(self, slug, until=("exit", "error"), timeout=30):
        """Run a snippet over a real WebSocket; every event up to the first of `until`."""
        async with websocket_connect(self.url(slug), origin=self.origin) as socket:
            await socket.send(json.dumps({"action": "run"}))
            events = []
            async with asyncio.timeout(timeout):
                while not events or events[-1]["type"] not in until:
                    events.append(json.loads(await socket.recv()))
            return events

    @property
    def origin(self):
        return f"http://127.0.0.1:{self.port}"


def runs_taken(process):
    return process.log.read_text().count("Took run")


def worker_of(pid, candidates):
    """The worker among candidates whose process tree holds pid."""
    pids = {process.pid: process for process in candidates}
    while pid > 1:
        if pid in pids:
            return pids[pid]
        with open(f"/proc/{pid}/stat") as stat:
            pid = int(stat.read().rpartition(")")[2].split()[1])
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    require(redis_is_up(), f"Redis is not reachable at {REDIS_URL}")
    directory = tmp_path_factory.mktemp("workers-site")
    prefix = unique_prefix()
    env = site_env(
        DATABASE_URL=migrated_database(directory),
        RUNNER_MODE="workers",
        REDIS_URL=REDIS_URL,
        CHANNELS_PREFIX=prefix,
        # Its pages are its own: another site's (another run's) are never served.
        CACHE_KEY_PREFIX=prefix,
        SNIPPET_RUNS_PER_MINUTE="100000",
        # Every run here comes from one address.
        SNIPPET_RUNS_PER_CLIENT="100",
        SNIPPET_QUEUED_PER_CLIENT="100",
        # One run at a time per worker: a busy worker is one with a run going.
        SNIPPET_RUN_SLOTS="1",
    )
    markers = {
        name: f"worker-site-{name}-{uuid.uuid4().hex}" for name in ("cancel", "kill", "long")
    }
    snippets = {
        "counter": COUNTER,
        "short": "print('short')",
        **{name: exec_with_marker(marker, SLEEPER) for name, marker in markers.items()},
    }
    shell(SITE_SNIPPETS.format(snippets=snippets), env)
    try:
        with daphne(env, directory / "daphne.log") as process:
            site = Site(directory, env, markers, process.port)
            try:
                site.start_workers(2)
                yield site
            finally:
                site.stop_workers()
    finally:
        delete_keys(prefix)


@pytest.mark.asyncio
async def test_twenty_concurrent_runs_arrive_complete_on_both_workers(site):
    taken_before = [runs_taken(process) for process in site.running_workers()]

    runs = await asyncio.gather(*(site.run("counter") for _ in range(20)))

    for events in runs:
        assert events[-1]["type"] == "exit", events[-1]
        assert events[-1]["reason"] == "ok"
        assert stdout(events) == EXPECTED
    taken = [
        runs_taken(p) - before
        for p, before in zip(site.running_workers(), taken_before, strict=True)
    ]
    assert sum(taken) == 20
    assert all(taken), f"runs per worker: {taken}"


@pytest.mark.asyncio
async def test_short_runs_go_to_the_idle_worker_not_behind_a_long_run(site):
    marker = site.markers["long"]
    async with websocket_connect(site.url("long"), origin=site.origin) as long_run:
        await long_run.send(json.dumps({"action": "run"}))
        assert json.loads(await long_run.recv())["type"] == "start"
        assert "ready" in json.loads(await long_run.recv())["text"]
        [pid] = processes_with(marker)
        busy = worker_of(pid, site.running_workers())
        [idle] = [process for process in site.running_workers() if process is not busy]
        taken_before = runs_taken(idle)

        started = time.monotonic()
        runs = await asyncio.gather(*(site.run("short", timeout=8) for _ in range(6)))
        took = time.monotonic() - started
        long_still_running = processes_with(marker) != []

    assert [events[-1]["reason"] for events in runs] == ["ok"] * 6
    assert runs_taken(idle) - taken_before == 6
    assert long_still_running
    assert took < 5


@pytest.mark.asyncio
async def test_cancel_through_a_worker_kills_the_process(site):
    marker = site.markers["cancel"]
    async with websocket_connect(site.url("cancel"), origin=site.origin) as socket:
        await socket.send(json.dumps({"action": "run"}))
        assert json.loads(await socket.recv())["type"] == "start"
        assert "ready" in json.loads(await socket.recv())["text"]
        assert processes_with(marker)

        await socket.send(json.dumps({"action": "cancel"}))
        exit_event = json.loads(await asyncio.wait_for(socket.recv(), 5))

    assert exit_event["type"] == "exit"
    assert exit_event["reason"] == "cancelled"
    assert until_gone(marker, within=0.5) == []


@pytest.mark.asyncio
async def test_a_worker_killed_mid_run_ends_the_started_run_with_a_lost_exit(site):
    marker = site.markers["kill"]
    try:
        async with websocket_connect(site.url("kill"), origin=site.origin) as socket:
            await socket.send(json.dumps({"action": "run"}))
            assert json.loads(await socket.recv())["type"] == "start"
            assert "ready" in json.loads(await socket.recv())["text"]
            [pid] = processes_with(marker)
            host = worker_of(pid, site.running_workers())
            assert host is not None

            host.kill()
            host.wait()
            killed = time.monotonic()
            event = json.loads(await asyncio.wait_for(socket.recv(), 10))
            waited = time.monotonic() - killed

        assert event["type"] == "exit"
        assert event["reason"] == "lost"
        assert event["message"] == protocol.LOST
        assert waited < protocol.SILENCE_SECONDS + 1.5
        # The sandbox dies with its worker.
        assert until_gone(marker, within=2) == []
    finally:
        site.start_workers(2 - len(site.running_workers()))


@pytest.mark.asyncio
async def test_with_no_worker_running_the_reader_is_told_so(site):
    site.stop_workers()
    try:
        started = time.monotonic()
        events = await site.run("counter")
        waited = time.monotonic() - started
    finally:
        site.start_workers(2)

    assert events == [{"type": "error", "message": protocol.NO_WORKER}]
    assert waited < protocol.PICKUP_SECONDS + 2
