"""Query records on a Django run's stdout become sql events; everything else stays text."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from glossary import runner
from glossary.models import Snippet, Topic
from tests.conftest import require

RECORD = {
    "type": "sql",
    "sql": 'SELECT COUNT(*) FROM "glossary_topic"',
    "params": [],
    "ms": 0.42,
    "line": 3,
    "plan": None,
}


def record(**changes):
    return "\x1e" + json.dumps({**RECORD, **changes}) + "\n"


def feed(*pieces):
    """Events for stdout read in these pieces, adjacent text merged."""
    records = runner.SqlRecords()
    events = [event for piece in pieces for event in records.feed(piece)]
    return merged(events + records.feed("", final=True))


def merged(events):
    out = []
    for event in events:
        if event["type"] == "stdout" and out and out[-1]["type"] == "stdout":
            out[-1] = {"type": "stdout", "text": out[-1]["text"] + event["text"]}
        else:
            out.append(event)
    return out


def test_a_record_between_lines_of_text_becomes_an_event_in_order():
    events = feed("before\n" + record() + "after\n")

    assert events == [
        {"type": "stdout", "text": "before\n"},
        RECORD,
        {"type": "stdout", "text": "after\n"},
    ]


def test_a_record_split_across_reads_is_put_back_together():
    whole = "a" + record(line=1) + record(line=2) + "b"

    for size in (1, 2, 7, 50):
        pieces = [whole[i : i + size] for i in range(0, len(whole), size)]
        assert feed(*pieces) == [
            {"type": "stdout", "text": "a"},
            {**RECORD, "line": 1},
            {**RECORD, "line": 2},
            {"type": "stdout", "text": "b"},
        ]


@pytest.mark.parametrize(
    "raw",
    [
        "\x1enot json\n",
        "\x1e" + json.dumps({"type": "exit", "reason": "ok"}) + "\n",
        "\x1e" + json.dumps(["sql"]) + "\n",
        "\x1e" + json.dumps({"sql": "SELECT 1"}) + "\n",
    ],
)
def test_anything_but_an_sql_object_passes_through_as_text(raw):
    assert feed("x", raw, "y") == [{"type": "stdout", "text": "x" + raw + "y"}]


def test_a_record_without_its_newline_by_the_end_is_text():
    raw = record()[:-1]

    assert feed(raw) == [{"type": "stdout", "text": raw}]


def test_an_oversized_record_is_text():
    raw = record(sql="x" * runner.SQL_RECORD_CHARS)

    assert feed(raw, "after\n") == [{"type": "stdout", "text": raw + "after\n"}]


# Through a real Django run -------------------------------------------------------------


@pytest.fixture
def sandbox():
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")


def limits(**changes):
    return dataclasses.replace(runner.Limits.from_settings(), wall_seconds=10, **changes)


async def events_of(code, runtime="django", **limit_changes):
    return [event async for event in runner.run(code, runtime, limits(**limit_changes))]


def reporter(*statements):
    """A snippet that reports a query the way the examples' reporter does."""
    return (
        "import json, os, sys, time\n"
        "from glossary.models import Topic\n"
        "def report(count):\n"
        "    sys.stdout.write('\\x1e' + json.dumps({'type': 'sql', 'sql': 'SELECT COUNT(*)',\n"
        "        'params': [count], 'ms': 0.1, 'line': 9, 'plan': None}) + '\\n')\n"
        + "".join(f"{statement}\n" for statement in statements)
    )


@pytest.mark.asyncio
async def test_a_django_run_turns_records_into_sql_events(sandbox):
    code = reporter(
        "print('sql events', os.environ.get('SNIPPET_SQL_EVENTS'))",
        "report(3)",
        "print('done')",
    )

    events = merged([e for e in await events_of(code) if e["type"] not in ("start", "exit")])

    assert [event["type"] for event in events] == ["stdout", "sql", "stdout"], events
    assert events[0]["text"] == "sql events 1\n"
    assert events[1]["sql"] == "SELECT COUNT(*)"
    assert events[1]["params"] == [3]
    assert events[2]["text"] == "done\n"


@pytest.mark.asyncio
async def test_a_record_written_in_two_pieces_is_one_event(sandbox):
    code = reporter(
        "import io",
        "buffer = io.StringIO()",
        "real, sys.stdout = sys.stdout, buffer",
        "report(1)",
        "sys.stdout = real",
        "half = len(buffer.getvalue()) // 2",
        "sys.stdout.write(buffer.getvalue()[:half])",
        "time.sleep(0.3)",
        "sys.stdout.write(buffer.getvalue()[half:])",
    )

    events = [e for e in await events_of(code) if e["type"] not in ("start", "exit")]

    assert [event["type"] for event in events] == ["sql"], events


@pytest.mark.asyncio
async def test_records_count_towards_the_output_limit(sandbox):
    code = reporter("while True:", "    report(0)")

    events = await events_of(code, output_kb=4)

    assert events[-1]["reason"] == "output_limit"
    # Each record is about 90 bytes.
    assert 0 < sum(event["type"] == "sql" for event in events) < 4 * 1024 / 80


@pytest.mark.asyncio
async def test_a_python_run_shows_records_as_text(sandbox):
    code = 'import os, sys\nsys.stdout.write(\'\\x1e{"type": "sql"}\\n\')\n'
    code += "print(os.environ.get('SNIPPET_SQL_EVENTS'))\n"

    events = merged([e for e in await events_of(code, "python") if e["type"] == "stdout"])

    assert events == [{"type": "stdout", "text": '\x1e{"type": "sql"}\nNone\n'}]


# Malformed records: the snippet writes them, so they are input like any other ----------


def raw(fields_json):
    return "\x1e" + fields_json + "\n"


def raw_with(**json_values):
    """A record whose fields are written as given JSON text (NaN and such included)."""
    fields = {name: json.dumps(value) for name, value in RECORD.items()}
    fields.update(json_values)
    return raw("{" + ", ".join(f'"{name}": {value}' for name, value in fields.items()) + "}")


MALFORMED = {
    "deeply nested": raw_with(params="[" * 20_000 + "]" * 20_000),
    "NaN": raw_with(ms="NaN"),
    "Infinity": raw_with(params="[Infinity]"),
    "-Infinity": raw_with(ms="-Infinity"),
    "an overflowing float": raw_with(ms="1e999"),
    "a 30-digit integer": raw_with(params="[123456789012345678901234567890]"),
    "a 30-digit line": raw_with(line="123456789012345678901234567890"),
    "sql not text": raw_with(sql="1"),
    "params not a list": raw_with(params='"x"'),
    "ms not a number": raw_with(ms='"1"'),
    "a fractional line": raw_with(line="1.5"),
    "plan not text": raw_with(plan="3"),
    "a missing field": raw(json.dumps({k: v for k, v in RECORD.items() if k != "plan"})),
    "parameters nested too deep": raw_with(params="[" * 10 + "]" * 10),
}


@pytest.mark.parametrize("raw_record", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_record_passes_through_as_text(raw_record):
    assert feed("x", raw_record, "y") == [{"type": "stdout", "text": "x" + raw_record + "y"}]


def test_a_record_keeps_only_the_fields_of_an_sql_event():
    assert feed(record(secret="x" * 10, type="sql")) == [RECORD]


def test_list_and_named_parameters_are_accepted():
    for params in ([1, "a", None, 2.5, True, [1, 2]], {"name": "a", "ids": [1, 2]}, None):
        assert feed(record(params=params)) == [{**RECORD, "params": params}]


def strict_json(text):
    """Parse text as a browser's JSON.parse would: NaN and Infinity are errors."""
    return json.loads(text, parse_constant=lambda constant: pytest.fail(f"{constant} sent"))


def printing_malformed_records():
    return (
        "import sys\n"
        f"for record in {list(MALFORMED.values())!r}:\n"
        "    sys.stdout.write(record)\n"
        "print('after')\n"
    )


@pytest.mark.asyncio
async def test_a_django_run_printing_malformed_records_ends_normally_with_them_as_text(sandbox):
    events = await events_of(printing_malformed_records())

    assert events[-1]["type"] == "exit"
    assert events[-1]["reason"] == "ok", events[-1]
    assert not [event for event in events if event["type"] == "sql"]
    text = "".join(event["text"] for event in events if event["type"] == "stdout")
    assert text == "".join(MALFORMED.values()) + "after\n"
    for event in events:
        assert strict_json(runner.encode(event)) == event


def test_events_are_never_encoded_as_invalid_json():
    with pytest.raises(ValueError):
        runner.encode({"type": "sql", "ms": float("nan")})


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_socket_sends_malformed_records_as_strict_json_text(sandbox, settings):
    settings.SNIPPET_RUNS_PER_MINUTE = 1000
    await database_sync_to_async(make_django_snippet)(printing_malformed_records())
    communicator = WebsocketCommunicator(
        application, "/ws/snippets/records/", headers=[(b"origin", b"http://127.0.0.1:8000")]
    )
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"action": "run"})
    events = []
    while not events or events[-1]["type"] not in ("exit", "error"):
        events.append(strict_json(await communicator.receive_from(timeout=15)))
    await communicator.disconnect()

    assert events[-1].get("reason") == "ok", events[-1]
    text = "".join(event["text"] for event in events if event["type"] == "stdout")
    assert text == "".join(MALFORMED.values()) + "after\n"


def make_django_snippet(code):
    topic = Topic.objects.create(name="Records", slug="records")
    return Snippet.objects.create(
        topic=topic, slug="records", title="Records", code=code, runtime="django"
    )


def test_runsnippet_prints_malformed_records_as_strict_json_lines(sandbox, settings, tmp_path):
    code_file = tmp_path / "records.py"
    code_file.write_text(printing_malformed_records())
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    argv = ["manage.py", "runsnippet", "--code-file", str(code_file), "--runtime", "django"]

    result = subprocess.run(
        [sys.executable, *argv], cwd=settings.BASE_DIR, env=env, capture_output=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    events = [strict_json(line) for line in result.stdout.decode().splitlines()]
    assert events[-1]["reason"] == "ok"
    assert "".join(e["text"] for e in events if e["type"] == "stdout").endswith("after\n")
