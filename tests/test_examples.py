"""The ORM examples: each runs on its own throwaway database and shows what it teaches,
every query is reported, and the site's copies match the files."""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

import examples
from glossary.models import Snippet

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = DATABASE_URL.startswith(("postgres://", "postgresql://"))
RECORD_START = "\x1e"


def output_lines(stdout):
    # Not splitlines(): it also splits at "\x1e", the record separator that starts records.
    return stdout.removesuffix("\n").split("\n")


def sql_records(stdout):
    return [json.loads(line[1:]) for line in output_lines(stdout) if line[:1] == RECORD_START]


def run_example(module, *, events=False, pythonpath=None):
    """Run `python -m module` from the project root with a clean environment."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    if ON_POSTGRES:
        env["DATABASE_URL"] = DATABASE_URL
    if events:
        env["SNIPPET_SQL_EVENTS"] = "1"
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def number(pattern, text):
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"{pattern!r} not in the output:\n{text}"
    return int(match.group(1))


def own_output(stdout):
    """The example's own prints: the command-line SQL report blocks left out."""
    report = re.compile(r"^(  \[sql |      plan: |            )")
    return [line for line in output_lines(stdout) if not report.match(line)]


def teaches_crud(out):
    assert "created Bloom filter" in out
    assert "raised Topic.DoesNotExist" in out
    assert "still there? False" in out


def teaches_lookups_q_f(out):
    before = number(r"position before: (\d+)", out)
    assert number(r"after update\(position=F\('position'\) \+ 1\): (\d+)", out) == before + 1


def teaches_n_plus_one(out):
    topics = number(r"-> \d+ queries for (\d+) topics \(N\+1\)", out)
    assert number(r"-> (\d+) queries for \d+ topics \(N\+1\)", out) == topics + 1
    assert number(r"-> (\d+) queries for \d+ topics \(prefetch_related\)", out) == 2
    assert number(r"-> (\d+) queries without select_related", out) == topics + 1
    assert number(r"-> (\d+) query with select_related", out) == 1


def teaches_aggregation(out):
    assert "GROUP BY" in out
    assert re.search(r"^\d+ topics have no links, \d+ have five or more$", out, re.M)


def teaches_subqueries_windows(out):
    assert "is ranked first" in out
    assert "RANK() OVER" in out
    assert re.search(r"^sync\s+1 of \d+", out, re.M)


def teaches_raw_sql(out):
    assert "as a parameter matches 0 topics" in out
    assert number(r"formatted into the SQL matches (\d+) topics", out) > 0


def teaches_bulk(out):
    rows = number(r"== (\d+) rows saved one by one", out)
    assert number(r"-> (\d+) queries with save\(\) in a loop", out) == rows
    assert f"rows: BEGIN, INSERT x{rows // 10}, COMMIT" in out


def teaches_get_or_create(out):
    assert "first call: sql, created=True" in out
    assert "second call: sql, created=False" in out
    assert "IntegrityError:" in out
    assert "(another connection just inserted 'postgres')" in out
    assert "tags named postgres: 1" in out


def teaches_transactions(out):
    afters = re.findall(r"^after: (alice [\d.]+, bob [\d.]+)", out, re.M)
    assert afters[0] == "alice 70.00, bob 30.00"
    assert afters[1] == afters[0]  # the overdraft was rolled back, credit included
    assert "IntegrityError from the database" in out
    assert "ROLLBACK TO SAVEPOINT" in out
    assert "carol 15.00" in out


def teaches_select_for_update(out):
    if ON_POSTGRES:
        assert "FOR UPDATE NOWAIT" in out
        assert "the other connection was refused: could not obtain lock" in out
    else:
        assert "the other connection got the row: nothing was locked" in out
        assert "SQLite has no row locks" in out
    assert "committed: the lock is released; alice: 70.00" in out


def teaches_indexes_and_plans(out):
    blocks = dict(re.findall(r"^(Plan [^:]+): (.*)$", out, re.M))
    assert blocks["Plan without the index"] == "reads every row"
    assert blocks["Plan with the index"] == "uses pageview_referrer_idx"
    assert blocks["Plan after dropping it"] == "reads every row"
    scan, index = ("Seq Scan", "Index") if ON_POSTGRES else ("SCAN", "USING INDEX")
    before, after = out.split("created the index")
    assert scan in before.split("Plan without the index")[1]
    assert index in after.split("Plan with the index")[1].split("dropped")[0]


def teaches_full_text_search(out):
    assert re.search(r"^\d+ topics contain 'indexes' literally", out, re.M)
    if ON_POSTGRES:
        stemmed = number(r"^(\d+) topics match the stem of 'indexes'", out)
        assert stemmed > number(r"^(\d+) topics contain 'indexes' literally", out)
        assert "to_tsvector" in out
    else:
        assert "On PostgreSQL" in out


def teaches_async_orm(out):
    assert "aget(): Async database access" in out
    assert "raised SynchronousOnlyOperation" in out
    assert re.search(r"^\d+ topics, \d+ links$", out, re.M)


@pytest.mark.parametrize("name", examples.names())
def test_example_runs_and_shows_what_it_teaches(name):
    result = run_example(f"examples.{name}")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "  [sql " in result.stdout, "every example reports its queries"
    teaches = globals().get(f"teaches_{name}")
    assert teaches is not None, f"add teaches_{name}() saying what examples/{name}.py shows"
    teaches(result.stdout)


def test_a_failing_example_fails_the_run(tmp_path):
    (tmp_path / "broken_example.py").write_text(
        "from examples import orm\n\norm.setup()\nraise RuntimeError('this example is broken')\n"
    )

    result = run_example("broken_example", pythonpath=tmp_path)

    assert result.returncode != 0
    assert "RuntimeError: this example is broken" in result.stderr


def call_line(tree, attribute, receiver):
    """Line of the first call `receiver.objects.attribute(...)` in a parsed module."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == attribute
            and ast.unparse(node.func.value) == f"{receiver}.objects"
        ):
            return node.lineno
    raise AssertionError(f"no {receiver}.objects.{attribute}() call")


def test_sql_events_are_records_in_order_with_lines_and_plans():
    tree = ast.parse(examples.path("crud").read_text())

    result = run_example("examples.crud", events=True)

    assert result.returncode == 0, result.stderr
    lines = output_lines(result.stdout)
    records = sql_records(result.stdout)
    assert records and all(record["type"] == "sql" for record in records)
    assert {tuple(record) for record in records} == {
        ("type", "sql", "params", "ms", "line", "plan", "formatted", "short")
    }
    topic_insert = records[0]
    assert topic_insert["sql"].startswith('INSERT INTO "glossary_topic"')
    assert "Bloom filter" in topic_insert["params"]
    assert topic_insert["line"] == call_line(tree, "create", "Topic")
    link_insert = next(r for r in records if r["sql"].startswith('INSERT INTO "glossary_link"'))
    assert link_insert["line"] == call_line(tree, "create", "Link")
    # Each record comes out just after its query, between the example's own prints.
    insert_at = next(i for i, line in enumerate(lines) if line.startswith(RECORD_START))
    assert lines[insert_at - 1] == "== Create =="
    printed_next = next(line for line in lines[insert_at:] if line[:1] != RECORD_START)
    assert printed_next.startswith("created Bloom filter")
    for record in records:
        is_select = record["sql"].lstrip().upper().startswith("SELECT")
        assert bool(record["plan"]) == is_select, record
        assert record["ms"] >= 0 and isinstance(record["line"], int)


def test_sql_events_carry_the_query_laid_out_with_its_parameters_written_in():
    result = run_example("examples.crud", events=True)

    records = sql_records(result.stdout)
    topic_insert = records[0]
    assert "'Bloom filter'" in topic_insert["formatted"]
    select = next(r for r in records if r["sql"].startswith("SELECT") and r["short"])
    # One clause a line; the long column list is collapsed in short, whole in formatted.
    assert "\nFROM " in select["formatted"]
    assert "columns)\nFROM " in select["short"]
    assert select["short"].startswith("SELECT ") and "… (+" in select["short"]
    assert len(select["short"]) < len(select["formatted"])


def test_an_examples_sql_is_its_own_not_the_sites_bookkeeping():
    records = sql_records(run_example("examples.crud", events=True).stdout)

    writes = [record["sql"] for record in records if not record["sql"].startswith("SELECT")]
    assert any("glossary_topic" in sql for sql in writes)
    assert not [sql for sql in writes if "glossary_mention" in sql or "contentrevision" in sql]


def test_sql_events_leave_the_printed_output_as_it_is():
    with_events = run_example("examples.crud", events=True)
    for_a_terminal = run_example("examples.crud")

    assert with_events.returncode == for_a_terminal.returncode == 0
    printed = [line for line in output_lines(with_events.stdout) if line[:1] != RECORD_START]
    assert printed == own_output(for_a_terminal.stdout)


def test_async_queries_are_traced_to_the_awaiting_line():
    tree = ast.parse(examples.path("async_orm").read_text())

    result = run_example("examples.async_orm", events=True)

    records = sql_records(result.stdout)
    assert records[0]["line"] == call_line(tree, "aget", "Topic")


def test_the_fixture_copies_match_the_example_files():
    call_command("syncexamples", check=True)


def test_the_check_names_an_example_whose_copy_differs(tmp_path):
    entries = json.loads((examples.DIRECTORY / "fixtures" / "examples.json").read_text())
    crud = next(entry for entry in entries if entry["fields"]["slug"] == "orm-crud")
    crud["fields"]["code"] += "# edited on the site\n"
    copy = tmp_path / "examples.json"
    copy.write_text(json.dumps(entries))

    with pytest.raises(CommandError, match=r"differs from the file for: crud\."):
        call_command("syncexamples", check=True, fixture=copy)


@pytest.mark.django_db
def test_the_seed_load_puts_every_example_on_the_site():
    call_command("loadseed", verbosity=0)

    snippets = Snippet.objects.filter(slug__startswith="orm-").select_related("topic")
    assert len(snippets) == len(examples.names())
    for snippet in snippets:
        name = snippet.slug.removeprefix("orm-").replace("-", "_")
        assert snippet.code == examples.code(name)
        assert snippet.runtime == "django" and snippet.language == "python"
        assert snippet.topic.slug == examples.TOPICS.get(name, examples.DEFAULT_TOPIC)
        assert snippet.description_html  # derived on the raw load


@pytest.mark.parametrize("name", examples.names())
def test_the_site_shows_each_example_as_plain_django_code(name):
    source = examples.path(name).read_text(encoding="utf-8")
    description = ast.get_docstring(ast.parse(source)).partition("\n")[2].strip()

    code = examples.code(name)

    assert not code.startswith(('"""', "\n"))
    assert description.splitlines()[0] not in code
    for scaffolding in ("from examples import orm", "orm.setup()", "# noqa"):
        assert scaffolding not in code
    assert source.endswith(code)


@pytest.mark.asyncio
async def test_the_site_copy_runs_in_the_sandbox_and_reports_its_queries():
    from glossary import runner
    from tests.conftest import require

    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    code = examples.code("crud")
    limits = runner.Limits.from_settings()

    events = [event async for event in runner.run(code, "django", limits)]

    assert events[-1]["reason"] == "ok", events
    printed = "".join(event["text"] for event in events if event["type"] == "stdout")
    teaches_crud(printed)
    topic_insert = next(event for event in events if event["type"] == "sql")
    assert topic_insert["sql"].startswith('INSERT INTO "glossary_topic"')
    assert topic_insert["line"] == call_line(ast.parse(code), "create", "Topic")
