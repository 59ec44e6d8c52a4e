"""Query records on a Django run's stdout become sql events; everything else stays text."""

import dataclasses
import json

import pytest

from glossary import runner
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
        "        'params': [], 'ms': 0.1, 'line': 9, 'plan': None, 'count': count}) + '\\n')\n"
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
    assert events[1]["count"] == 3
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
    assert 0 < sum(event["type"] == "sql" for event in events) < 4 * 1024 / 100


@pytest.mark.asyncio
async def test_a_python_run_shows_records_as_text(sandbox):
    code = 'import os, sys\nsys.stdout.write(\'\\x1e{"type": "sql"}\\n\')\n'
    code += "print(os.environ.get('SNIPPET_SQL_EVENTS'))\n"

    events = merged([e for e in await events_of(code, "python") if e["type"] == "stdout"])

    assert events == [{"type": "stdout", "text": '\x1e{"type": "sql"}\nNone\n'}]
