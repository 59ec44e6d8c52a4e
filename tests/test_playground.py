"""Readers' own code: edited snippet runs, the playground page and its socket."""

import asyncio
import json
import logging

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from config.asgi import application
from glossary import playground, runner
from glossary.models import Runtime, Snippet, Topic
from glossary.workers import worker
from tests.conftest import require

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
READER = "203.0.113.7"
websocket = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sandbox(settings):
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    settings.SNIPPET_RUNS_PER_MINUTE = 1000


@database_sync_to_async
def make_snippet(code="print('curated')", slug="demo", runtime="python"):
    topic, _ = Topic.objects.get_or_create(name="Demo", slug="demo-topic")
    return Snippet.objects.create(topic=topic, slug=slug, title=slug, code=code, runtime=runtime)


async def run_on(path, message):
    """Every event answering one message on a fresh socket, up to the run's end."""
    communicator = WebsocketCommunicator(application, path, headers=[ORIGIN])
    communicator.scope["client"] = [READER, 50000]
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_to(text_data=json.dumps(message))
    events = []
    while not events or events[-1]["type"] not in ("exit", "error"):
        events.append(await communicator.receive_json_from(timeout=30))
    await communicator.disconnect()
    return events


def stdout(events):
    return "".join(event["text"] for event in events if event["type"] == "stdout")


# The snippet socket with the reader's code ------------------------------------------


@websocket
@pytest.mark.asyncio
async def test_a_run_message_with_code_runs_that_code_in_the_snippets_runtime(sandbox):
    await make_snippet()

    events = await run_on("/ws/snippets/demo/", {"action": "run", "code": "print('edited')"})

    assert stdout(events) == "edited\n"


@websocket
@pytest.mark.asyncio
async def test_edited_code_runs_under_the_reader_limits(sandbox, settings):
    settings.SNIPPET_READER_LIMITS = {**settings.SNIPPET_LIMITS, "wall_seconds": 2}
    await make_snippet()

    edited = await run_on("/ws/snippets/demo/", {"action": "run", "code": "print(2)"})
    curated = await run_on("/ws/snippets/demo/", {"action": "run"})

    assert edited[0]["limits"]["wall_seconds"] == 2
    assert curated[0]["limits"]["wall_seconds"] == settings.SNIPPET_LIMITS["wall_seconds"]
    assert stdout(curated) == "curated\n"


@websocket
@pytest.mark.asyncio
async def test_the_operator_switch_refuses_edited_runs_but_not_curated_ones(sandbox, settings):
    settings.SNIPPET_READER_CODE = False
    await make_snippet()

    edited = await run_on("/ws/snippets/demo/", {"action": "run", "code": "print(2)"})
    curated = await run_on("/ws/snippets/demo/", {"action": "run"})

    assert edited == [
        {"type": "error", "message": "Running your own code is turned off on this server."}
    ]
    assert stdout(curated) == "curated\n"


@websocket
@pytest.mark.asyncio
async def test_each_edited_run_is_logged_with_its_code_hash_runtime_client_and_outcome(
    sandbox, caplog
):
    await make_snippet()
    caplog.set_level(logging.INFO, logger="glossary.consumers")

    await run_on("/ws/snippets/demo/", {"action": "run", "code": "print('edited')"})
    await run_on("/ws/snippets/demo/", {"action": "run"})

    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Reader code")]
    assert len(lines) == 1
    assert "runtime python" in lines[0] and "outcome ok" in lines[0]
    assert f"client {READER}" in lines[0]
    assert f"code {playground.code_digest("print('edited')")}" in lines[0]
    assert "print('edited')" not in lines[0]


@websocket
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("", "The code must be non-empty text."),
        (["print(1)"], "The code must be non-empty text."),
        ("#" * (64 * 1024 + 1), "The code is too long: at most 64 KiB."),
    ],
)
async def test_code_that_cannot_run_gets_a_clear_error(sandbox, code, message):
    await make_snippet()

    events = await run_on("/ws/snippets/demo/", {"action": "run", "code": code})

    assert events == [{"type": "error", "message": message}]


@websocket
@pytest.mark.asyncio
async def test_control_messages_stay_small_while_run_messages_may_carry_code(sandbox):
    await make_snippet()

    padded_cancel = await run_on("/ws/snippets/demo/", {"action": "cancel", "pad": "x" * 2000})
    large_code = "x = 1\n" * 5000 + "print(x)\n"
    large_run = await run_on("/ws/snippets/demo/", {"action": "run", "code": large_code})

    assert padded_cancel[0]["type"] == "error"
    assert "at most 1024 bytes" in padded_cancel[0]["message"]
    assert stdout(large_run) == "1\n"


# The playground socket ---------------------------------------------------------------


@websocket
@pytest.mark.asyncio
async def test_the_playground_socket_runs_code_in_the_runtime_it_names(sandbox):
    code = "from glossary.models import Topic\nprint(Topic.objects.count() >= 0)"

    events = await run_on("/ws/play/django/", {"action": "run", "code": code})

    assert stdout(events) == "True\n"
    assert any(event["type"] == "sql" for event in events)


def tables(events):
    return [(event["columns"], event["rows"]) for event in events if event["type"] == "table"]


@websocket
@pytest.mark.asyncio
async def test_sql_on_sqlite_runs_the_readers_statements_and_answers_with_a_table(sandbox):
    code = "CREATE TABLE t (n INTEGER);\nINSERT INTO t VALUES (1), (2);\nSELECT n * 10 AS x FROM t;"

    events = await run_on("/ws/play/python-sql/", {"action": "run", "code": code})

    assert tables(events) == [(["x"], [[10], [20]])]
    assert events[-1]["type"] == "exit" and events[-1]["code"] == 0


@websocket
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("runtime", "version"), [("postgresql", "PostgreSQL"), ("mysql", "MariaDB")]
)
async def test_sql_runs_on_the_runs_own_database_server(sandbox, runtime, version):
    require(not runner.unavailable(runtime), runner.unavailable(runtime) or "")
    code = "CREATE TABLE t (n INTEGER);\nINSERT INTO t VALUES (7);\nSELECT n FROM t;\n"
    code += "SELECT VERSION();"

    events = await run_on(f"/ws/play/{runtime}-sql/", {"action": "run", "code": code})

    (first, rows), (_, [[found]]) = tables(events)
    assert rows == [[7]]
    assert version in found
    assert events[-1]["type"] == "exit" and events[-1]["code"] == 0


@websocket
@pytest.mark.asyncio
async def test_the_playground_refuses_unknown_runtimes_and_runs_without_code(
    sandbox, settings, tmp_path
):
    settings.BASE_DIR = tmp_path  # no sandbox environment for the server runtimes there

    cobol = await run_on("/ws/play/cobol/", {"action": "run", "code": "print(1)"})
    postgres = await run_on("/ws/play/postgresql/", {"action": "run", "code": "print(1)"})
    no_code = await run_on("/ws/play/python/", {"action": "run"})

    assert cobol[0]["message"].startswith("There is no runtime 'cobol' here; use one of python")
    assert postgres[0]["message"].startswith("There is no runtime 'postgresql' here")
    assert no_code[0]["message"].startswith("Send the code to run")


@websocket
@pytest.mark.asyncio
async def test_the_playground_says_when_reader_code_is_off(sandbox, settings):
    settings.SNIPPET_READER_CODE = False

    events = await run_on("/ws/play/python/", {"action": "run", "code": "print(1)"})

    assert events[0]["message"] == "Running your own code is turned off on this server."


# Pages ------------------------------------------------------------------------------


def test_the_playground_offers_each_available_runtime_with_its_starter(
    client, db, settings, tmp_path
):
    settings.BASE_DIR = tmp_path  # no sandbox environment for the server runtimes there

    page = client.get(reverse("glossary:playground")).content.decode()

    assert '<option value="python" selected>Python (standard library)</option>' in page
    assert 'value="postgresql"' not in page
    assert "sqlite3.connect" in page  # the python starter, in the text box


def test_sql_on_sqlite_is_offered_with_its_starter(client, db):
    page = client.get(reverse("glossary:playground")).content.decode()
    chosen = client.get(reverse("glossary:playground") + "?runtime=python-sql").content.decode()

    assert '<optgroup label="SQL">' in page
    assert '<option value="python-sql">SQL on SQLite</option>' in page
    assert '<option value="python-sql" selected>SQL on SQLite</option>' in chosen
    assert "CREATE TABLE fruit (name TEXT, price REAL);" in chosen


def test_each_choice_has_its_own_key_and_a_starter_in_its_language():
    keys = [choice.key for choice in playground.CHOICES]

    assert len(set(keys)) == len(keys)
    for choice in playground.CHOICES:
        assert choice.starter.strip()
        assert choice.language in runner.LANGUAGES
        if choice.language == "sql":
            assert choice.starter.rstrip().endswith(";")


def test_postgresql_is_offered_where_its_server_software_is_installed(client, db):
    require(not runner.unavailable("postgresql"), runner.unavailable("postgresql") or "")

    page = client.get(reverse("glossary:playground") + "?runtime=postgresql").content.decode()

    assert '<option value="postgresql" selected>PostgreSQL</option>' in page
    assert "psycopg.connect()" in page


def test_every_runtime_of_the_runner_is_offered(client, db):
    for runtime in runner.RUNTIMES:
        require(not runner.unavailable(runtime), runner.unavailable(runtime) or "")

    page = client.get(reverse("glossary:playground")).content.decode()

    for runtime in runner.RUNTIMES:
        assert f'value="{runtime}"' in page
        assert Runtime(runtime).label in page


def test_with_reader_code_off_the_pages_say_so(client, snippet, settings):
    settings.SNIPPET_READER_CODE = False

    playground = client.get(reverse("glossary:playground")).content.decode()
    snippet_page = client.get(snippet.get_absolute_url()).content.decode()

    assert "Running your own code is turned off on this server." in playground
    assert "<textarea" not in playground
    assert "Running your own code is turned off on this server." in snippet_page
    assert "data-editor=" not in snippet_page


def test_a_snippet_page_offers_the_editor_and_names_the_reader_limits(client, snippet):
    page = client.get(snippet.get_absolute_url()).content.decode()

    assert 'data-editor="/static/editor/editor.js"' in page
    assert "Edit the code and press Run (Ctrl+Enter)" in page
    assert "it runs under the same limits." in page


def test_stricter_reader_limits_are_shown_next_to_run(client, snippet, settings):
    settings.SNIPPET_READER_LIMITS = {**settings.SNIPPET_LIMITS, "wall_seconds": 3}

    page = client.get(snippet.get_absolute_url()).content.decode()

    assert "it runs under these limits: 3 s wall time" in page


@pytest.mark.asyncio
async def test_a_run_worker_runs_under_the_limits_the_request_carries(sandbox, settings):
    events = asyncio.Queue()
    limits = {**settings.SNIPPET_LIMITS, "wall_seconds": 2}

    await worker.produce("print('on a worker')", "python", "python", events, "127.0.0.1", limits)

    start = await events.get()
    assert start["type"] == "start" and start["limits"]["wall_seconds"] == 2
