"""Runs handed to Channels workers over a real Redis (RUNNER_MODE=workers).

The first half drives the consumer through the full ASGI stack with a worker running in
this process; the second starts Daphne and `manage.py runworker snippet-runs` processes
and talks to them over real WebSockets. Both use a Redis database and key prefix of their
own, whatever REDIS_URL says, and delete their keys afterwards.
"""

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytest_asyncio
import redis
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from websockets.asyncio.client import connect as websocket_connect

from config.asgi import application
from glossary import runner
from glossary.models import Snippet, Topic
from glossary.workers import protocol
from glossary.workers.client import Replies, next_batch
from glossary.workers.worker import RunWorker
from tests.conftest import require
from tests.processes import exec_with_marker, processes_with, until_gone
from tests.test_runner_sql_events import MALFORMED, printing_malformed_records, strict_json

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/5"
ORIGIN = (b"origin", b"http://127.0.0.1:8000")
LINES = 200
COUNTER = f"for i in range({LINES}):\n    print(f'line {{i:03}}')\n"
EXPECTED = "".join(f"line {i:03}\n" for i in range(LINES))
SLEEPER = "import time\nprint('ready', flush=True)\ntime.sleep(60)\n"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_is_up():
    try:
        return redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except redis.RedisError:
        return False


def delete_keys(prefix):
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)


def unique_prefix():
    return f"glossary-test-{uuid.uuid4().hex[:12]}-"


def stdout(events):
    return "".join(e["text"] for e in events if e["type"] == "stdout")


@pytest.fixture
def real_parts():
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    require(redis_is_up(), f"Redis is not reachable at {REDIS_URL}")


# Through the consumer, with a worker in this process -------------------------------------


def use_redis_layer(settings, prefix, **config):
    # As config/settings/base.py has it, on a database and prefix of these tests' own.
    host = {"address": REDIS_URL, "socket_timeout": 15}
    config = {"hosts": [host], "prefix": prefix, "capacity": 1000, **config}
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": config}
    }


@pytest_asyncio.fixture
async def redis_layer(real_parts, settings):
    """The consumer in workers mode on a Redis layer of its own; returns its key prefix."""
    prefix = unique_prefix()
    use_redis_layer(settings, prefix)
    settings.SNIPPET_RUN_BACKEND = "glossary.workers.client.WorkerRuns"
    settings.SNIPPET_RUNS_PER_MINUTE = 1000
    yield prefix
    await get_channel_layer().close_pools()
    delete_keys(prefix)


@pytest_asyncio.fixture
async def worker(redis_layer):
    """`runworker snippet-runs` in this event loop: its Worker on one listener."""
    server = RunWorker(application, [protocol.RUNS_CHANNEL], get_channel_layer())
    listening = asyncio.create_task(server.listener(protocol.RUNS_CHANNEL))
    yield server
    instances = [details["future"] for details in server.application_instances.values()]
    for task in [listening, *instances]:
        task.cancel()
    await asyncio.gather(listening, *instances, return_exceptions=True)


# In the thread the async ORM uses: each asyncio.to_thread thread would keep a pooled
# PostgreSQL connection, and the pool would run dry.
@database_sync_to_async
def make_snippet(code, slug="demo", runtime="python"):
    topic, _ = Topic.objects.get_or_create(name="Demo", slug="demo-topic")
    return Snippet.objects.create(topic=topic, slug=slug, title=slug, code=code, runtime=runtime)


async def connect(slug="demo"):
    communicator = WebsocketCommunicator(application, f"/ws/snippets/{slug}/", headers=[ORIGIN])
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def events_until_end(communicator, timeout=15):
    events = []
    while not events or events[-1]["type"] not in ("exit", "error"):
        events.append(await communicator.receive_json_from(timeout=timeout))
    return events


consumer_test = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest.mark.usefixtures("worker")
class TestThroughTheConsumer:
    pytestmark = consumer_test

    async def test_a_run_arrives_complete_and_in_order(self):
        await make_snippet(COUNTER)
        communicator = await connect()
        await communicator.send_json_to({"action": "run"})
        events = await events_until_end(communicator)
        await communicator.disconnect()

        assert events[0]["type"] == "start"
        assert stdout(events) == EXPECTED
        assert events[-1]["reason"] == "ok"
        # Batched: 200 lines do not take 200 frames.
        assert len(events) < 20

    async def test_cancel_kills_the_process_on_the_worker(self):
        marker = f"worker-cancel-{uuid.uuid4().hex}"
        await make_snippet(exec_with_marker(marker, SLEEPER))
        communicator = await connect()
        await communicator.send_json_to({"action": "run"})
        assert (await communicator.receive_json_from(timeout=5))["type"] == "start"
        assert "ready" in (await communicator.receive_json_from(timeout=5))["text"]
        assert processes_with(marker)

        await communicator.send_json_to({"action": "cancel"})
        exit_event = await communicator.receive_json_from(timeout=5)
        gone = processes_with(marker)
        await communicator.disconnect()

        assert exit_event["type"] == "exit"
        assert exit_event["reason"] == "cancelled"
        # The consumer waited for the worker to confirm: nothing is left to wait for.
        assert gone == []

    async def test_closing_the_socket_kills_the_process_on_the_worker(self):
        marker = f"worker-close-{uuid.uuid4().hex}"
        await make_snippet(exec_with_marker(marker, SLEEPER))
        communicator = await connect()
        await communicator.send_json_to({"action": "run"})
        await communicator.receive_json_from(timeout=5)
        await communicator.receive_json_from(timeout=5)

        await communicator.disconnect()

        assert until_gone(marker, within=0.5) == []

    async def test_a_quiet_run_is_kept_alive_by_heartbeats(self):
        quiet = protocol.SILENCE_SECONDS + 1
        code = f"import time\nprint('a', flush=True)\ntime.sleep({quiet})\nprint('b')\n"
        await make_snippet(code)
        communicator = await connect()
        await communicator.send_json_to({"action": "run"})
        events = await events_until_end(communicator)
        await communicator.disconnect()

        assert stdout(events) == "a\nb\n"
        assert events[-1]["reason"] == "ok"

    async def test_a_second_socket_runs_at_the_same_time(self):
        await make_snippet(COUNTER, "one")
        await make_snippet("print('two')", "two")
        one, two = await connect("one"), await connect("two")
        await one.send_json_to({"action": "run"})
        await two.send_json_to({"action": "run"})
        events_one, events_two = await asyncio.gather(events_until_end(one), events_until_end(two))
        await one.disconnect()
        await two.disconnect()

        assert stdout(events_one) == EXPECTED
        assert stdout(events_two) == "two\n"

    async def test_a_worker_holds_each_client_to_its_share(self, settings, monkeypatch):
        settings.SNIPPET_RUNS_PER_CLIENT = 1
        settings.SNIPPET_QUEUED_PER_CLIENT = 0
        monkeypatch.setattr(runner.slots, "_default_slots", None)
        await make_snippet(SLEEPER)
        first, second = await connect(), await connect()
        await first.send_json_to({"action": "run"})
        assert (await first.receive_json_from(timeout=5))["type"] == "start"

        await second.send_json_to({"action": "run"})
        reply = await second.receive_json_from(timeout=5)
        await first.disconnect()
        await second.disconnect()

        assert reply["type"] == "error"
        assert "your share" in reply["message"]

    async def test_malformed_sql_records_arrive_as_text_and_the_run_ends(self):
        await make_snippet(printing_malformed_records(), runtime="django")
        communicator = await connect()
        await communicator.send_json_to({"action": "run"})
        events = []
        while not events or events[-1]["type"] not in ("exit", "error"):
            events.append(strict_json(await communicator.receive_from(timeout=15)))
        await communicator.disconnect()

        assert events[-1]["type"] == "exit"
        assert events[-1]["reason"] == "ok", events[-1]
        assert stdout(events) == "".join(MALFORMED.values()) + "after\n"


@pytest.fixture
def one_slot(settings, monkeypatch):
    settings.SNIPPET_RUN_SLOTS = 1
    monkeypatch.setattr(runner.slots, "_default_slots", None)


@pytest.mark.usefixtures("one_slot", "worker")
class TestWhileEveryWorkerIsBusy:
    pytestmark = consumer_test

    async def test_a_run_waits_its_turn_told_its_place_then_runs(self):
        await make_snippet(SLEEPER, "busy")
        await make_snippet("print('next')", "next")
        busy, waiting = await connect("busy"), await connect("next")
        await busy.send_json_to({"action": "run"})
        assert (await busy.receive_json_from(timeout=5))["type"] == "start"

        await waiting.send_json_to({"action": "run"})
        queued = await waiting.receive_json_from(timeout=protocol.QUEUE_POLL_SECONDS + 2)
        await busy.disconnect()
        events = await events_until_end(waiting)
        await waiting.disconnect()

        assert queued == {"type": "queued", "position": 1}
        assert events[0]["type"] == "start"
        assert stdout(events) == "next\n"

    async def test_a_run_its_reader_left_while_it_waited_never_runs(self, caplog):
        caplog.set_level("INFO", logger="glossary.workers.worker")
        await make_snippet(SLEEPER, "busy")
        await make_snippet("print('left')", "left")
        busy, leaving = await connect("busy"), await connect("left")
        await busy.send_json_to({"action": "run"})
        assert (await busy.receive_json_from(timeout=5))["type"] == "start"
        await leaving.send_json_to({"action": "run"})
        assert (await leaving.receive_json_from(timeout=5))["type"] == "queued"
        await leaving.disconnect()

        await busy.disconnect()
        # The worker is free: it takes the withdrawn request off the queue and drops it.
        layer = get_channel_layer()
        connection = layer.connection(layer.consistent_hash(protocol.RUNS_CHANNEL))
        async with asyncio.timeout(5):
            while await connection.zcard(layer.prefix + protocol.RUNS_CHANNEL):
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)

        # Only the busy run was ever taken.
        assert caplog.text.count("Took run") == 1


@pytest.mark.usefixtures("redis_layer")
class TestWhenRunsCannotBeHandedOver:
    pytestmark = consumer_test

    async def test_without_a_worker_the_reader_is_told_so(self):
        await make_snippet("print(1)")
        communicator = await connect()
        started = time.monotonic()
        await communicator.send_json_to({"action": "run"})
        reply = await communicator.receive_json_from(timeout=protocol.PICKUP_SECONDS + 3)
        waited = time.monotonic() - started
        await communicator.disconnect()

        assert reply == {"type": "error", "message": protocol.NO_WORKER}
        assert waited < protocol.PICKUP_SECONDS + 1

    async def test_a_full_run_queue_is_an_error(self, settings, redis_layer):
        use_redis_layer(settings, redis_layer, channel_capacity={protocol.RUNS_CHANNEL: 0})
        await make_snippet("print(1)")
        communicator = await connect()
        await communicator.send_json_to({"action": "run"})
        reply = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()

        assert reply == {"type": "error", "message": protocol.QUEUE_FULL}

    async def test_an_unreachable_redis_is_an_error_and_the_socket_stays_usable(
        self, settings, redis_layer
    ):
        use_redis_layer(settings, redis_layer, hosts=[f"redis://127.0.0.1:{free_port()}/0"])
        await make_snippet("print(1)")
        communicator = await connect()
        await communicator.send_json_to({"action": "run"})
        reply = await communicator.receive_json_from(timeout=5)
        await communicator.send_json_to({"action": "cancel"})
        second = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()

        assert reply == {"type": "error", "message": protocol.UNREACHABLE}
        assert second == {"type": "error", "message": "Nothing is running."}


@pytest.mark.asyncio
async def test_a_reader_slow_to_read_is_not_told_a_finished_run_was_lost(redis_layer):
    layer = get_channel_layer()
    run_id, channel = uuid.uuid4().hex, await layer.new_channel()
    connection, key = protocol.claim_of(layer, run_id)
    await connection.set(key, protocol.FINISHED, ex=protocol.CLAIM_SECONDS)
    replies = Replies(layer, channel)
    waiting = asyncio.create_task(next_batch(replies, run_id))

    await asyncio.sleep(protocol.SILENCE_SECONDS + 0.5)
    still_waiting = not waiting.done()
    batch = {"type": "run.events", "run": run_id, "worker": "w", "seq": 0, "events": []}
    await layer.send(channel, batch)

    assert still_waiting
    assert await asyncio.wait_for(waiting, 5) == batch
    replies.close()


# Daphne and worker processes over real WebSockets --------------------------------------

SITE_SNIPPETS = """\
from glossary.models import Snippet, Topic
topic = Topic.objects.create(name="Workers", slug="workers")
for slug, code in {snippets!r}.items():
    Snippet.objects.create(topic=topic, slug=slug, title=slug, runtime="python", code=code)
"""


class Site:
    """Daphne and run workers sharing one Redis, each a process of its own."""

    def __init__(self, directory):
        self.directory = directory
        self.prefix = unique_prefix()
        self.markers = {
            name: f"worker-site-{name}-{uuid.uuid4().hex}" for name in ("cancel", "kill", "long")
        }
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.development",
            "DATABASE_URL": f"sqlite:///{directory / 'site.sqlite3'}",
            "DEBUG": "false",
            "RUNNER_MODE": "workers",
            "REDIS_URL": REDIS_URL,
            "CHANNELS_PREFIX": self.prefix,
            # Its pages are its own: another site's (another run's) are never served.
            "CACHE_KEY_PREFIX": self.prefix,
            "SNIPPET_RUNS_PER_MINUTE": "100000",
            # Every run here comes from one address.
            "SNIPPET_RUNS_PER_CLIENT": "100",
            "SNIPPET_QUEUED_PER_CLIENT": "100",
            # One run at a time per worker: a busy worker is one with a run going.
            "SNIPPET_RUN_SLOTS": "1",
        }
        self.workers = []
        self.daphne = None
        self.port = free_port()

    def start(self):
        snippets = {
            "counter": COUNTER,
            "short": "print('short')",
            **{name: exec_with_marker(marker, SLEEPER) for name, marker in self.markers.items()},
        }
        manage = [sys.executable, "manage.py"]
        for command in (
            ["migrate", "-v0"],
            ["shell", "-c", SITE_SNIPPETS.format(snippets=snippets)],
        ):
            subprocess.run(
                manage + command, cwd=ROOT, env=self.env, check=True, capture_output=True
            )
        daphne = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port)]
        self.daphne = self.spawn([*daphne, "config.asgi:application"], "daphne.log")
        self.start_workers(2)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=1):
                    break
            except OSError:
                assert self.daphne.poll() is None, self.daphne.log.read_text()
                assert time.monotonic() < deadline, "Daphne did not answer"
                time.sleep(0.1)

    def spawn(self, argv, log_name):
        """A process of the site, its stderr (Django's log) in a file of the directory."""
        log = self.directory / log_name
        with log.open("w") as stream:
            process = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=stream
            )
        process.log = log
        return process

    def start_workers(self, count):
        started = []
        for _ in range(count):
            argv = [sys.executable, "manage.py", "runworker", protocol.RUNS_CHANNEL]
            process = self.spawn(argv, f"worker-{len(self.workers)}.log")
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

    def stop(self):
        self.stop_workers()
        if self.daphne:
            self.daphne.terminate()
            self.daphne.wait(timeout=10)
        delete_keys(self.prefix)

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
    site = Site(tmp_path_factory.mktemp("workers-site"))
    try:
        site.start()
        yield site
    finally:
        site.stop()


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


# Redis going away mid-run ----------------------------------------------------------------


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of this test's own, which it may stop."""
    require(shutil.which("redis-server"), "redis-server is not installed")
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            if redis.Redis.from_url(url, socket_timeout=1).ping():
                break
        except redis.RedisError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    yield SimpleNamespace(url=url, process=server)
    server.kill()
    server.wait()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_redis_going_away_mid_run_ends_the_run_with_an_error(
    private_redis, settings, real_parts
):
    settings.SNIPPET_RUN_BACKEND = "glossary.workers.client.WorkerRuns"
    settings.SNIPPET_RUNS_PER_MINUTE = 1000
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": private_redis.url, "socket_timeout": 15}]},
        }
    }
    marker = f"worker-redis-gone-{uuid.uuid4().hex}"
    await make_snippet(exec_with_marker(marker, SLEEPER))
    server = RunWorker(application, [protocol.RUNS_CHANNEL], get_channel_layer())
    listening = asyncio.create_task(server.listener(protocol.RUNS_CHANNEL))
    communicator = await connect()
    try:
        await communicator.send_json_to({"action": "run"})
        assert (await communicator.receive_json_from(timeout=5))["type"] == "start"
        assert "ready" in (await communicator.receive_json_from(timeout=5))["text"]

        private_redis.process.kill()
        stopped = time.monotonic()
        event = await communicator.receive_json_from(timeout=15)
        waited = time.monotonic() - stopped
        await communicator.disconnect()
        # The worker (in this event loop) cannot reach its reader either: it kills the run.
        while processes_with(marker) and time.monotonic() < stopped + 10:
            await asyncio.sleep(0.05)
        left = processes_with(marker)
    finally:
        instances = [details["future"] for details in server.application_instances.values()]
        for task in [listening, *instances]:
            task.cancel()
        await asyncio.gather(listening, *instances, return_exceptions=True)

    # The run had started, so it ends with an exit (reason "lost") rather than an error.
    assert (event["type"], event["reason"]) == ("exit", "lost"), event
    assert event["message"] == protocol.UNREACHABLE
    assert waited < protocol.SILENCE_SECONDS + 2
    assert left == []
