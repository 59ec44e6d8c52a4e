"""The WebSocket endpoint that streams a snippet run, through the full ASGI stack."""

import asyncio
import json
import time
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from glossary import consumers, runner
from glossary.models import Snippet, Topic
from tests.conftest import require
from tests.processes import exec_with_marker, processes_with, until_gone

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]
ORIGIN = (b"origin", b"http://127.0.0.1:8000")


@pytest.fixture(autouse=True)
def sandbox(settings):
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    settings.SNIPPET_RUNS_PER_MINUTE = 1000


# Through database_sync_to_async, which closes its connection: each asyncio.to_thread
# thread would keep a pooled PostgreSQL connection, and the pool would run dry.
@database_sync_to_async
def make_snippet(code, slug="demo", **fields):
    topic, _ = Topic.objects.get_or_create(name="Demo", slug="demo-topic")
    fields = {"runtime": "python", "title": slug, **fields}
    return Snippet.objects.create(topic=topic, slug=slug, code=code, **fields)


async def connect(slug="demo", origin=ORIGIN):
    communicator = WebsocketCommunicator(application, f"/ws/snippets/{slug}/", headers=[origin])
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def events_until_exit(communicator, timeout=15):
    """Every event up to the run's end, each stamped with its arrival time."""
    started = time.monotonic()
    events = []
    while not events or events[-1]["type"] not in ("exit", "error"):
        event = await communicator.receive_json_from(timeout=timeout)
        events.append({**event, "at": time.monotonic() - started})
    return events


def stdout(events):
    return "".join(e["text"] for e in events if e["type"] == "stdout")


async def test_it_streams_output_as_the_program_prints_it():
    code = "import time\nprint('first')\ntime.sleep(1.5)\nprint('second')\n"
    await make_snippet(code)
    communicator = await connect()
    await communicator.send_json_to({"action": "run"})
    events = await events_until_exit(communicator)
    await communicator.disconnect()

    assert events[0]["type"] == "start"
    assert events[0]["limits"]["wall_seconds"] == 10
    assert stdout(events) == "first\nsecond\n"
    first = next(e["at"] for e in events if "first" in e.get("text", ""))
    second = next(e["at"] for e in events if "second" in e.get("text", ""))
    assert second - first >= 1.2
    assert events[-1]["reason"] == "ok"


async def test_stderr_is_a_separate_stream():
    await make_snippet("import sys\nprint('out')\nsys.exit('boom')\n")
    communicator = await connect()
    await communicator.send_json_to({"action": "run"})
    events = await events_until_exit(communicator)
    await communicator.disconnect()

    assert stdout(events) == "out\n"
    assert "boom" in "".join(e["text"] for e in events if e["type"] == "stderr")
    assert events[-1]["reason"] == "error"
    assert events[-1]["code"] == 1


async def test_cancel_kills_the_run_and_reports_cancelled():
    marker = f"consumer-cancel-{uuid.uuid4().hex}"
    # One write: print() under -u writes "ready" and "\n" apart, maybe as two events.
    sleeper = "import sys, time\nsys.stdout.write('ready\\n')\ntime.sleep(60)\n"
    await make_snippet(exec_with_marker(marker, sleeper))
    communicator = await connect()
    await communicator.send_json_to({"action": "run"})
    assert (await communicator.receive_json_from(timeout=5))["type"] == "start"
    assert "ready" in (await communicator.receive_json_from(timeout=5))["text"]
    assert processes_with(marker)

    await communicator.send_json_to({"action": "cancel"})
    exit_event = await communicator.receive_json_from(timeout=2)
    await communicator.disconnect()

    assert exit_event["type"] == "exit"
    assert exit_event["reason"] == "cancelled"
    assert until_gone(marker, within=0.5) == []


async def test_closing_the_socket_mid_run_kills_the_process_at_once():
    marker = f"consumer-close-{uuid.uuid4().hex}"
    sleeper = "import time\nprint('ready', flush=True)\ntime.sleep(60)\n"
    await make_snippet(exec_with_marker(marker, sleeper))
    communicator = await connect()
    await communicator.send_json_to({"action": "run"})
    await communicator.receive_json_from(timeout=5)
    await communicator.receive_json_from(timeout=5)

    await communicator.disconnect()

    assert until_gone(marker, within=0.5) == []


async def test_a_second_run_while_one_is_going_is_refused():
    await make_snippet("import time\nprint('x', flush=True)\ntime.sleep(5)\n")
    communicator = await connect()
    await communicator.send_json_to({"action": "run"})
    await communicator.receive_json_from(timeout=5)
    await communicator.send_json_to({"action": "run"})
    events = [await communicator.receive_json_from(timeout=5) for _ in range(2)]
    await communicator.disconnect()

    errors = [e for e in events if e["type"] == "error"]
    assert errors and "already running" in errors[0]["message"]


@pytest.mark.parametrize(
    ("message", "answer"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "Send a JSON object"),
        ('"run"', "Send a JSON object"),
        ('{"action": "explode"}', "Unknown action"),
        ("{}", "Unknown action"),
        ('{"action": "cancel"}', "Nothing is running"),
        (json.dumps({"action": "run", "pad": "x" * 5000}), "at most 1024 bytes"),
    ],
)
async def test_bad_messages_are_answered_and_the_socket_stays_usable(message, answer):
    await make_snippet("print('still here')")
    communicator = await connect()
    await communicator.send_to(text_data=message)
    reply = await communicator.receive_json_from(timeout=5)
    assert reply["type"] == "error"
    assert answer in reply["message"]

    await communicator.send_json_to({"action": "run"})
    events = await events_until_exit(communicator)
    await communicator.disconnect()
    assert stdout(events) == "still here\n"


async def test_binary_frames_are_refused():
    await make_snippet("print(1)")
    communicator = await connect()
    await communicator.send_to(bytes_data=b"\x00\x01")
    reply = await communicator.receive_json_from(timeout=5)
    await communicator.disconnect()
    assert reply["type"] == "error"


@pytest.mark.parametrize(
    ("fields", "answer"),
    [
        ({"slug": "other"}, "no snippet called 'demo'"),
        ({"is_published": False}, "no snippet called 'demo'"),
        ({"runtime": "", "display_only_reason": "Needs MongoDB."}, "display-only: Needs MongoDB."),
    ],
)
async def test_snippets_that_cannot_run_are_refused(fields, answer):
    await make_snippet("print(1)", **fields)
    communicator = await connect()
    await communicator.send_json_to({"action": "run"})
    reply = await communicator.receive_json_from(timeout=5)
    await communicator.disconnect()
    assert reply == {"type": "error", "message": reply["message"]}
    assert answer in reply["message"]


async def test_a_foreign_origin_is_rejected():
    communicator = WebsocketCommunicator(
        application, "/ws/snippets/demo/", headers=[(b"origin", b"https://evil.example")]
    )
    connected, _ = await communicator.connect()
    assert not connected


async def test_the_rate_limit_tells_the_reader_to_wait(settings):
    settings.SNIPPET_RUNS_PER_MINUTE = 0
    await make_snippet("print(1)")
    communicator = await connect()
    await communicator.send_json_to({"action": "run"})
    reply = await communicator.receive_json_from(timeout=5)
    await communicator.disconnect()
    assert "Too many runs" in reply["message"]


async def test_a_refused_run_is_one_error_and_the_socket_runs_again_once_allowed(settings):
    settings.SNIPPET_RUNS_PER_MINUTE = 0
    await make_snippet("print('ran')")
    communicator = await connect()
    await communicator.send_json_to({"action": "run"})
    refused = await communicator.receive_json_from(timeout=5)
    # An error before start: nothing ran, nothing else comes.
    assert await communicator.receive_nothing(timeout=0.3)

    settings.SNIPPET_RUNS_PER_MINUTE = 1000
    await communicator.send_json_to({"action": "run"})
    events = await events_until_exit(communicator)
    await communicator.disconnect()

    assert refused["type"] == "error" and "Too many runs" in refused["message"]
    assert [e["type"] for e in events if e["type"] != "stdout"] == ["start", "exit"]
    assert stdout(events) == "ran\n"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("print('fine')", "ok"),
        ("raise SystemExit(3)", "error"),
        ("import sys\nwhile True:\n    sys.stdout.write('x' * 4096)", "output_limit"),
    ],
)
async def test_a_run_that_started_ends_with_exactly_one_exit(code, reason):
    await make_snippet(code)
    communicator = await connect()
    await communicator.send_json_to({"action": "run"})
    events = await events_until_exit(communicator)
    nothing_after = await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()

    assert events[0]["type"] == "start"
    assert [e["type"] for e in events].count("exit") == 1
    assert "error" not in [e["type"] for e in events]
    assert events[-1]["reason"] == reason
    assert nothing_after


@pytest.mark.parametrize("fails_after_start", [False, True])
async def test_a_run_that_breaks_on_the_server_still_ends_by_the_rule(
    monkeypatch, fails_after_start
):
    async def breaks(self, code, runtime, client=None, language="python", limits=None):
        if fails_after_start:
            yield {"type": "start", "run": "x", "sandbox": "bubblewrap", "limits": {}}
        raise RuntimeError("the runner broke")

    monkeypatch.setattr(runner.LocalRuns, "run", breaks)
    await make_snippet("print(1)")
    communicator = await connect()
    await communicator.send_json_to({"action": "run"})
    events = await events_until_exit(communicator)
    await communicator.disconnect()

    if fails_after_start:
        assert [e["type"] for e in events] == ["start", "exit"]
        assert events[-1]["reason"] == "lost" and events[-1]["message"]
    else:
        assert [e["type"] for e in events] == ["error"]


async def test_staff_may_run_a_draft(django_user_model):
    await make_snippet("print('draft ok')", is_published=False)
    curator = await database_sync_to_async(django_user_model.objects.create_user)(
        "curator", password="pw", is_staff=True
    )
    session = await database_sync_to_async(login_session)(curator)
    communicator = WebsocketCommunicator(
        application,
        "/ws/snippets/demo/",
        headers=[ORIGIN, (b"cookie", f"sessionid={session}".encode())],
    )
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"action": "run"})
    events = await events_until_exit(communicator)
    await communicator.disconnect()

    assert stdout(events) == "draft ok\n"


def login_session(user):
    """A session key for user, as the admin login would leave in the browser."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@database_sync_to_async
def change_snippet(slug, **fields):
    Snippet.objects.filter(slug=slug).update(**fields)


async def test_a_socket_looks_its_snippet_up_ahead_so_a_run_waits_for_no_query():
    await make_snippet("print('as looked up')")
    communicator = await connect()
    await asyncio.sleep(0.5)  # the lookup, made as the socket opened, is done
    # Changed behind the model's back since: a run within LOOKAHEAD_SECONDS uses that
    # lookup.
    await change_snippet("demo", code="print('changed since')")
    await communicator.send_json_to({"action": "run"})
    events = await events_until_exit(communicator)
    await communicator.disconnect()

    assert stdout(events) == "as looked up\n"


async def test_a_stale_lookahead_is_not_used(monkeypatch):
    monkeypatch.setattr(consumers, "LOOKAHEAD_SECONDS", 0)
    await make_snippet("print('as looked up')")
    communicator = await connect()
    await change_snippet("demo", code="print('changed since')")
    await communicator.send_json_to({"action": "run"})
    changed = await events_until_exit(communicator)
    await change_snippet("demo", is_published=False)
    await communicator.send_json_to({"action": "run"})
    unpublished = await events_until_exit(communicator)
    await communicator.disconnect()

    assert stdout(changed) == "changed since\n"
    assert unpublished[-1]["type"] == "error"
    assert "no snippet called 'demo'" in unpublished[-1]["message"]
