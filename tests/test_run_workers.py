"""Runs handed to Channels workers over a real Redis (RUNNER_MODE=workers).

These tests drive the consumer through the full ASGI stack with a worker running in this
process; tests/test_worker_processes.py starts Daphne and `manage.py runworker snippet-runs`
processes instead. Both use a Redis database and key prefix of their own, whatever
REDIS_URL says, and delete their keys afterwards.
"""

import asyncio
import shutil
import subprocess
import time
import uuid
from types import SimpleNamespace

import pytest
import pytest_asyncio
import redis
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from config.asgi import application
from glossary import runner
from glossary.models import Snippet, Topic
from glossary.workers import protocol
from glossary.workers.client import Replies, next_batch
from glossary.workers.worker import RunWorker
from tests.conftest import require
from tests.live_server import free_port
from tests.processes import exec_with_marker, processes_with, until_gone
from tests.test_runner_sql_events import MALFORMED, printing_malformed_records, strict_json

REDIS_URL = "redis://127.0.0.1:6379/5"
ORIGIN = (b"origin", b"http://127.0.0.1:8000")
LINES = 200
COUNTER = f"for i in range({LINES}):\n    print(f'line {{i:03}}')\n"
EXPECTED = "".join(f"line {i:03}\n" for i in range(LINES))
SLEEPER = "import time\nprint('ready', flush=True)\ntime.sleep(60)\n"


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
