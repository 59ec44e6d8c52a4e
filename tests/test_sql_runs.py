"""SQL snippets: run statement by statement against the run's database, each result set a
table event, an error naming its statement."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from glossary import runner
from glossary.runner.child import split_statements
from glossary.runner.servers import SERVERS
from tests.conftest import require

SCRIPT = """-- a shop; with a semicolon in a comment
CREATE TABLE item (id int, name text);
INSERT INTO item VALUES (1, 'bolt;nut'), (2, 'it''s');
SELECT id, name FROM item ORDER BY id;
SELECT count(*) AS n, NULL AS missing FROM item;
"""


def sandbox():
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")


async def run_sql(code, runtime="python"):
    return [event async for event in runner.run(code, runtime, language="sql")]


def tables(events):
    return [event for event in events if event["type"] == "table"]


def test_semicolons_in_quotes_comments_and_dollar_quotes_end_no_statement():
    body = "$body$ BEGIN RETURN 1; END; $body$"
    script = (
        "SELECT ';' AS a;  -- one; two\n"
        '/* three; */ SELECT "x;y" FROM t;\n'
        f"CREATE FUNCTION f() RETURNS int AS {body} LANGUAGE plpgsql;\n"
        "-- only a comment;\n"
    )

    assert split_statements(script) == [
        (1, "SELECT ';' AS a"),
        (2, 'SELECT "x;y" FROM t'),
        (3, f"CREATE FUNCTION f() RETURNS int AS {body} LANGUAGE plpgsql"),
    ]


@pytest.mark.asyncio
async def test_each_result_set_streams_as_a_table():
    sandbox()

    events = await run_sql(SCRIPT)

    assert tables(events) == [
        {
            "type": "table",
            "columns": ["id", "name"],
            "rows": [[1, "bolt;nut"], [2, "it's"]],
            "truncated": False,
        },
        {"type": "table", "columns": ["n", "missing"], "rows": [[2, None]], "truncated": False},
    ]
    assert events[-1]["reason"] == "ok"


@pytest.mark.asyncio
async def test_an_error_names_the_statement_and_its_line_and_stops_the_script():
    sandbox()

    events = await run_sql("SELECT 1;\n\nSELECT *\n  FROM missing;\nSELECT 2;")

    stderr = "".join(event["text"] for event in events if event["type"] == "stderr")
    assert stderr.startswith("Statement 2 (line 3) failed: SELECT * ...\n")
    assert "no such table: missing" in stderr
    assert len(tables(events)) == 1
    assert events[-1]["reason"] == "error"


@pytest.mark.asyncio
async def test_a_long_result_set_is_cut_and_says_so():
    sandbox()
    code = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 1000) SELECT i FROM n"
    )

    (table,) = tables(await run_sql(code))

    assert table["truncated"] is True
    assert table["rows"][:2] == [[1], [2]] and len(table["rows"]) < 1000


@pytest.mark.asyncio
async def test_django_sql_snippets_query_the_seed_database_copy():
    sandbox()

    events = await run_sql("SELECT count(*) > 0 FROM glossary_topic", "django")

    assert tables(events)[0]["rows"] == [[1]]


@pytest.mark.asyncio
@pytest.mark.parametrize("runtime", ["postgresql", "mysql"])
async def test_sql_runs_against_the_runs_own_server(runtime):
    sandbox()
    require(SERVERS[runtime].available(), SERVERS[runtime].missing() or "")

    events = await run_sql(SCRIPT.replace("text", "varchar(20)"), runtime)

    assert [table["rows"] for table in tables(events)] == [
        [[1, "bolt;nut"], [2, "it's"]],
        [[2, None]],
    ]


@pytest.mark.asyncio
async def test_an_unknown_language_is_refused_before_anything_runs():
    events = [event async for event in runner.run("puts 1", "python", language="ruby")]

    assert events == [
        {"type": "error", "message": "Unknown language 'ruby'; expected one of python, sql."}
    ]


def test_runsnippet_runs_a_sql_file_as_sql(tmp_path):
    sandbox()
    script = tmp_path / "shop.sql"
    script.write_text(SCRIPT)
    out = io.StringIO()

    call_command("runsnippet", "--code-file", str(script), stdout=out)

    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [event["type"] for event in events if event["type"] == "table"] == ["table", "table"]


def test_runsnippet_refuses_a_language_it_does_not_run(tmp_path):
    script = tmp_path / "x.rb"
    script.write_text("puts 1")

    with pytest.raises(CommandError, match="invalid choice: 'ruby'"):
        call_command("runsnippet", "--code-file", str(script), "--language", "ruby")


def test_a_table_record_that_is_not_a_table_passes_through_as_text():
    ragged = '\x1e{"type": "table", "columns": ["a"], "rows": [[1, 2]], "truncated": false}\n'
    nested = '\x1e{"type": "table", "columns": ["a"], "rows": [[[1]]], "truncated": false}\n'
    fine = '\x1e{"type": "table", "columns": ["a"], "rows": [[1]], "truncated": true}\n'

    events = runner.SqlRecords().feed(ragged + nested + fine, final=True)

    assert events == [
        {"type": "stdout", "text": ragged + nested},
        {"type": "table", "columns": ["a"], "rows": [[1]], "truncated": True},
    ]
