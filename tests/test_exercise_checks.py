"""Checking answers: every check kind passes and fails on real runs, hidden data sets
catch a hard-coded answer, and a failure shows a small sample of the difference."""

import asyncio
import dataclasses
import re

import pytest

from glossary import runner
from glossary.checking import plans
from glossary.checking.checks import shape, table_difference
from glossary.checking.spec import DataSet
from glossary.runner import LocalRuns, shutdown_pool
from glossary.runner.servers import SERVERS
from tests.conftest import require
from tests.exercises import (
    ORDERS,
    ORDERS_SOLUTION,
    ORDERS_VARIANTS,
    events_of,
    make_exercise,
    results,
    run_checks,
    spec_of,
)


def sandbox():
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")


def server(kind):
    sandbox()
    require(SERVERS[kind].available(), SERVERS[kind].missing() or "")


def table(rows, columns=("a", "b")):
    return {"type": "table", "columns": list(columns), "rows": rows, "truncated": False}


# Comparing rows


def test_unordered_rows_are_a_multiset_so_duplicates_count():
    expected = table([["ann", 1], ["ann", 1], ["bob", 2]])

    assert table_difference(expected, table([["bob", 2], ["ann", 1], ["ann", 1]])) is None
    assert table_difference(expected, table([["ann", 1], ["bob", 2]])) == (
        "Expected 3 rows, got 2. Missing: ('ann', 1)."
    )


def test_null_is_neither_a_missing_row_nor_an_empty_string():
    expected = table([["ann", None]])

    assert table_difference(expected, table([["ann", ""]])) == (
        "Missing: ('ann', NULL). Not expected: ('ann', '')."
    )
    assert (
        table_difference(expected, table([])) == "Expected 1 rows, got 0. Missing: ('ann', NULL)."
    )
    assert table_difference(table([]), table([])) is None


def test_order_matters_only_when_the_check_says_so():
    expected = table([["ann", 1], ["bob", 2]])
    swapped = table([["bob", 2], ["ann", 1]])

    assert table_difference(expected, swapped) is None
    assert table_difference(expected, swapped, ordered=True) == (
        "The rows are right but their order is not: row 1 should be ('ann', 1), not ('bob', 2)."
    )


def test_column_names_count_only_when_asked_but_the_number_of_columns_always_does():
    expected = table([[1, 2]])

    assert table_difference(expected, table([[1, 2]], ("x", "y"))) is None
    assert table_difference(expected, table([[1, 2]], ("x", "y")), names=True) == (
        "Expected the columns a, b, got x, y."
    )
    assert (
        table_difference(expected, table([[1]], ("a",))) == "Expected 2 columns (a, b), got 1 (a)."
    )


def test_floats_of_equal_computations_compare_equal():
    assert table_difference(table([[0.3, 1]]), table([[0.1 + 0.2, 1.0]])) is None


def test_a_sample_of_a_difference_is_short():
    expected = table([[n, n] for n in range(10)])

    detail = table_difference(expected, table([]), sample_rows=1)

    assert detail == "Expected 10 rows, got 0. Missing: (0, 0) (and 9 more)."


def test_queries_of_the_same_shape_differ_only_in_their_values():
    assert shape('SELECT * FROM "t" WHERE "id" = %s') == shape('select * from "t" where "id" = 7')
    assert shape("SELECT * FROM t WHERE id IN (1, 2, 3)") == shape(
        "SELECT * FROM t WHERE id IN (4)"
    )
    assert shape("SELECT * FROM t WHERE id = 1") != shape("SELECT * FROM u WHERE id = 1")


# Reading plans


def test_postgresql_plans_show_index_and_sequential_scans():
    plan = [
        {
            "Plan": {
                "Node Type": "Nested Loop",
                "Plans": [
                    {"Node Type": "Seq Scan", "Relation Name": "orders"},
                    {
                        "Node Type": "Bitmap Heap Scan",
                        "Relation Name": "customers",
                        "Plans": [
                            {
                                "Node Type": "Bitmap Index Scan",
                                "Index Name": "cust_idx",
                                "Index Cond": "(id = 1)",
                            }
                        ],
                    },
                ],
            }
        }
    ]

    accesses = plans.postgresql_accesses(plan)

    assert [(a.table, a.index, a.full_scan) for a in accesses] == [
        ("orders", None, True),
        ("customers", "cust_idx", False),
    ]


def test_mariadb_plans_show_full_scans_and_keys():
    plan = {
        "query_block": {
            "nested_loop": [
                {"table": {"table_name": "orders", "access_type": "ALL"}},
                {"table": {"table_name": "customers", "access_type": "eq_ref", "key": "PRIMARY"}},
            ]
        }
    }

    accesses = plans.mysql_accesses(plan)

    assert [(a.table, a.index, a.full_scan) for a in accesses] == [
        ("orders", None, True),
        ("customers", "PRIMARY", False),
    ]


def test_sqlite_plans_do_not_count_an_automatic_index():
    accesses = plans.sqlite_accesses(
        [
            "SCAN w",
            "SEARCH t USING AUTOMATIC COVERING INDEX (b=?)",
            "SEARCH u USING INTEGER PRIMARY KEY (rowid=?)",
            "SCAN v USING COVERING INDEX v_idx",
        ]
    )

    assert [(a.table, a.index, a.full_scan) for a in accesses] == [
        ("w", None, True),
        ("t", None, False),
        ("u", "INTEGER PRIMARY KEY", False),
        ("v", "v_idx", False),
    ]


# SQL on SQLite

HARD_CODED = "SELECT 'ann', 2 UNION ALL SELECT 'bob', 1 UNION ALL SELECT 'cy', 1;"
BACKWARDS = ORDERS_SOLUTION.replace("ORDER BY customer", "ORDER BY customer DESC")
FAILS = "SELECT 1;\nSELECT count(*)\n  FROM missing;"


@pytest.fixture
def orders(db):
    sandbox()
    exercise = make_exercise(
        "orders-per-customer",
        runtime="python",
        language="sql",
        setup=ORDERS,
        solution=ORDERS_SOLUTION,
        variants=ORDERS_VARIANTS,
        checks=[
            {"kind": "rows"},
            {"kind": "rows", "ordered": True, "compare_column_names": True},
            {"kind": "max_queries", "number": 1},
            {"kind": "no_similar"},
            {"kind": "forbids", "target": r"(?i)\bunion\b"},
            {"kind": "time_limit", "number": 2000},
        ],
    )
    return spec_of(exercise)


def test_sql_answers_on_sqlite(orders):
    reference, hard_coded, backwards, fails = run_checks(
        orders, ORDERS_SOLUTION, HARD_CODED, BACKWARDS, FAILS
    )

    checks, verdict = results(reference)
    assert verdict == {"type": "verdict", "passed": True}
    assert all(passed for passed, _ in checks.values())
    kinds = [event["type"] for event in reference]
    assert kinds == ["start", "table", "exit", *["check"] * 6, "verdict"]
    # The setup's own output ("4 rows affected") is not the reader's.
    assert reference[1]["rows"] == [["ann", 2], ["bob", 1], ["cy", 1]]

    # Right on the visible data, wrong on a hidden data set, which is only sampled.
    hard_coded_rows = [e for e in hard_coded if e["type"] == "table"]
    assert hard_coded_rows[0]["rows"] == [["ann", 2], ["bob", 1], ["cy", 1]]
    checks, verdict = results(hard_coded)
    assert verdict["passed"] is False
    passed, detail = checks["Rows equal the reference's"]
    assert not passed
    assert detail.startswith("On the hidden data set “NULLs and ties”: Missing: ")
    assert "(and 2 more)" in detail
    assert checks["Avoids what the exercise rules out"] == (
        False,
        "Line 1 uses 'UNION', which this exercise rules out.",
    )
    assert checks["At most 1 query"] == (True, "")

    # Two rows checks: unordered passes, ordered fails.
    checks, _ = results(backwards)
    assert checks["Rows equal the reference's"] == (True, "")
    passed, detail = checks["Rows equal the reference's, in order"]
    assert not passed and detail.startswith("The rows are right but their order is not")

    stderr = "".join(e["text"] for e in fails if e["type"] == "stderr")
    assert stderr.startswith("Statement 2 (line 2) failed: SELECT count(*) ...")
    checks, verdict = results(fails)
    assert checks["Rows equal the reference's"] == (
        False,
        "Your code ended with an error on the visible data.",
    )
    assert checks["Avoids what the exercise rules out"] == (True, "")
    assert checks["At most 1 query"] == (
        False,
        "Your code ended with an error on the visible data.",
    )


# Python, on files the setup writes

SCORES_SETUP = 'print("writing the scores")\nopen("scores.txt", "w").write("ann 3\\nbob 5\\n")\n'
SCORES_SOLUTION = (
    'total = sum(int(line.split()[1]) for line in open("scores.txt"))\n'
    'open("total.txt", "w").write(str(total))\n'
    "print(total)\n"
)


@pytest.fixture
def scores(db):
    sandbox()
    exercise = make_exercise(
        "sum-the-scores",
        runtime="python",
        language="python",
        setup=SCORES_SETUP,
        solution=SCORES_SOLUTION,
        variants=[
            ("one line", 'open("scores.txt", "w").write("cy 7\\n")'),
            ("no lines", 'open("scores.txt", "w").write("")'),
        ],
        checks=[
            {"kind": "output"},
            {"kind": "rows", "target": 'int(open("total.txt").read())'},
            {"kind": "time_limit", "number": 1000},
        ],
    )
    return spec_of(exercise)


def test_python_answers_with_output_probes_and_time(scores):
    reference, exits, hard_coded, slow, crashes = run_checks(
        scores,
        SCORES_SOLUTION,
        SCORES_SOLUTION + "raise SystemExit\n",
        "print(8)\n",
        "import time\n\ntime.sleep(1.1)\n" + SCORES_SOLUTION,
        "x = 1\nraise ValueError('no scores')\n",
    )

    assert results(reference)[1]["passed"] is True
    stdout = "".join(e["text"] for e in reference if e["type"] == "stdout")
    assert stdout == "8\n"  # not the setup's "writing the scores"
    assert results(exits)[1]["passed"] is True  # the checks run after a sys.exit() too

    checks, _ = results(hard_coded)
    assert checks["Output equals the reference's"] == (
        False,
        "On the hidden data set “one line”: Line 1 of the output should be '7', not '8'.",
    )
    passed, detail = checks["The data afterwards equals the reference's"]
    assert not passed
    assert detail.startswith("After your code, the check query failed: FileNotFoundError")

    checks, _ = results(slow)
    passed, detail = checks["Finishes within 1000 ms"]
    took = re.fullmatch(r"Your code took (\d+) ms; the limit is 1000 ms\.", detail)
    assert not passed and took and int(took[1]) >= 1100
    assert checks["Output equals the reference's"] == (True, "")

    stderr = "".join(e["text"] for e in crashes if e["type"] == "stderr")
    assert 'File "snippet.py", line 2, in <module>' in stderr
    assert "setup" not in stderr and "<check>" not in stderr
    checks, verdict = results(crashes)
    assert verdict["passed"] is False
    assert checks["Output equals the reference's"] == (
        False,
        "Your code ended with an error on the visible data.",
    )


def test_a_data_set_that_cannot_be_set_up_is_the_exercises_fault(db):
    sandbox()
    exercise = make_exercise(
        "broken-setup",
        runtime="python",
        language="python",
        solution="print(1)",
        variants=[("broken", "import no_such_module")],
        checks=[{"kind": "output"}],
    )

    (events,) = run_checks(spec_of(exercise), "print(1)")

    assert events[-1] == {
        "type": "verdict",
        "passed": False,
        "message": "This exercise is broken: the hidden data set “broken” could not be set up "
        "(ModuleNotFoundError: No module named 'no_such_module').",
    }
    assert not [e for e in events if e["type"] == "check"]


# PostgreSQL

USERS = """
CREATE TABLE users (email text PRIMARY KEY, name text NOT NULL, visits int NOT NULL);
INSERT INTO users VALUES ('ann@example.com', 'Ann', 1), ('bob@example.com', 'Bob', 4);
"""
LOOKUP = "SELECT name FROM users WHERE lower(name) = 'ann'"
UPSERT = (
    "INSERT INTO users VALUES ('ann@example.com', 'Ann', 1), ('cy@example.com', 'Cy', 1)\n"
    "ON CONFLICT (email) DO UPDATE SET visits = users.visits + 1;"
)


def test_plan_and_state_checks_on_postgresql(db):
    server("postgresql")
    exercise = make_exercise(
        "find-by-name",
        runtime="postgresql",
        language="sql",
        setup=USERS,
        solution="CREATE INDEX users_lower_name ON users (lower(name));\n" + UPSERT,
        checks=[
            {"kind": "uses_index", "target": LOOKUP, "table": "users"},
            {"kind": "no_seq_scan", "target": LOOKUP, "table": "users"},
            {"kind": "rows", "target": "SELECT * FROM users", "ordered": False},
        ],
    )

    reference, plain_index = run_checks(
        spec_of(exercise),
        exercise.solution,
        "CREATE INDEX users_name ON users (name);\n" + UPSERT.replace("DO UPDATE", "DO NOTHING --"),
    )

    checks, verdict = results(reference)
    assert verdict["passed"] is True, checks
    checks, verdict = results(plain_index)
    # Told to avoid table scans, PostgreSQL reads a whole index instead: no use of it.
    passed, detail = checks["The plan uses an index of users"]
    assert not passed
    assert detail.startswith("The plan uses no index of users: ") and "(all of it)" in detail
    passed, detail = checks["No sequential scan of users"]
    assert not passed
    assert detail.startswith("The plan reads all of users: ") and "(all of it)" in detail
    assert checks["The data afterwards equals the reference's"] == (
        False,
        "Missing: ('ann@example.com', 'Ann', 2). Not expected: ('ann@example.com', 'Ann', 1).",
    )


# The Django ORM

N_PLUS_ONE = (
    "from glossary.models import Topic\n\n"
    "for topic in Topic.objects.filter(slug__startswith='exercise-').order_by('slug'):\n"
    "    print(topic.slug, topic.parent.slug if topic.parent else '-')\n"
)
JOINED = N_PLUS_ONE.replace(".filter(", ".select_related('parent').filter(")
DJANGO_SETUP = (
    "from glossary.models import Topic\n\n"
    "root = Topic.objects.create(name='Exercise root', slug='exercise-root')\n"
    "for n in range(3):\n"
    "    Topic.objects.create(name=f'Exercise {n}', slug=f'exercise-{n}', parent=root)\n"
)


def test_query_budget_n_plus_one_and_plans_of_django_queries(db):
    sandbox()
    exercise = make_exercise(
        "topics-with-parents",
        runtime="django",
        language="python",
        setup=DJANGO_SETUP,
        solution=JOINED,
        checks=[
            {"kind": "output"},
            {"kind": "max_queries", "number": 1},
            {"kind": "no_similar"},
            {"kind": "uses_index", "target": "glossary_topic", "table": "glossary_topic"},
            {"kind": "forbids", "target": r"\.raw\(|cursor\("},
        ],
    )

    reference, n_plus_one = run_checks(spec_of(exercise), JOINED, N_PLUS_ONE)

    checks, verdict = results(reference)
    assert verdict["passed"] is True, checks
    # The setup's queries are neither shown nor counted.
    assert len([e for e in reference if e["type"] == "sql"]) == 1
    checks, verdict = results(n_plus_one)
    assert checks["Output equals the reference's"] == (True, "")
    assert checks["At most 1 query"] == (
        False,
        "Your code sent 4 queries; at most 1 are allowed.",
    )
    passed, detail = checks["No two similar queries"]
    assert not passed and detail.startswith("This query ran 3 times, once per row: select ")
    assert checks["The plan uses an index of glossary_topic"] == (True, "")


# Redis, checked with a Python probe

REDIS_PROBE = (
    "import os\nimport redis\n\n"
    "r = redis.Redis.from_url(os.environ['REDIS_URL'], decode_responses=True)\n"
    "[(r.get('hits'), 0 < r.ttl('hits') <= 60)]"
)
COUNT_A_HIT = (
    "import os\nimport redis\n\n"
    "r = redis.Redis.from_url(os.environ['REDIS_URL'])\n"
    "r.incr('hits')\nr.expire('hits', 60)\n"
)


def test_state_of_redis_after_the_answer(db):
    server("redis")
    exercise = make_exercise(
        "count-a-hit",
        runtime="redis",
        language="python",
        setup="",
        solution=COUNT_A_HIT,
        checks=[{"kind": "rows", "target": REDIS_PROBE}],
    )

    reference, forever = run_checks(
        spec_of(exercise), COUNT_A_HIT, COUNT_A_HIT.replace("r.expire('hits', 60)\n", "")
    )

    assert results(reference)[1]["passed"] is True
    checks, _ = results(forever)
    assert checks["The data afterwards equals the reference's"] == (
        False,
        "Missing: ('1', true). Not expected: ('1', false).",
    )


# MariaDB


def test_plans_on_mariadb(db):
    server("mysql")
    exercise = make_exercise(
        "mariadb-plans",
        runtime="mysql",
        language="sql",
        setup="CREATE TABLE item (id int PRIMARY KEY, name text);\n"
        "INSERT INTO item VALUES (1, 'bolt'), (2, 'nut');",
        solution="SELECT 1;",
        checks=[
            {"kind": "uses_index", "target": "SELECT * FROM item WHERE id = 1"},
            {
                "kind": "no_seq_scan",
                "target": "SELECT * FROM item WHERE name = 'nut'",
                "table": "item",
            },
        ],
    )

    (events,) = run_checks(spec_of(exercise), "SELECT 1;")

    checks, _ = results(events)
    assert checks["The plan uses an index"] == (True, "")
    assert checks["No sequential scan of item"] == (
        False,
        "The plan reads all of item: item: ALL.",
    )


def test_plans_on_sqlite_read_the_answers_own_in_memory_database(db):
    sandbox()
    exercise = make_exercise(
        "index-the-customer",
        runtime="python",
        language="sql",
        setup=ORDERS,
        solution="CREATE INDEX orders_customer ON orders (customer);",
        checks=[
            {"kind": "uses_index", "target": "SELECT * FROM orders WHERE customer = 'ann'"},
            {
                "kind": "no_seq_scan",
                "target": "SELECT * FROM orders WHERE customer = 'ann'",
                "table": "orders",
            },
        ],
    )

    reference, wrong_column = run_checks(
        spec_of(exercise),
        exercise.solution,
        "CREATE INDEX orders_amount ON orders (amount);",
    )

    assert results(reference)[1]["passed"] is True
    checks, _ = results(wrong_column)
    assert checks["The plan uses an index"] == (False, "The plan uses no index: SCAN orders.")
    assert checks["No sequential scan of orders"] == (
        False,
        "The plan reads all of orders: SCAN orders.",
    )


class CountingRuns(LocalRuns):
    """Local runs that remember the code of each."""

    def __init__(self):
        self.codes = []

    def run(self, code, *args, **kwargs):
        self.codes.append(code)
        return super().run(code, *args, **kwargs)


def test_the_reference_runs_once_per_data_set_then_comes_from_the_cache(orders):
    runs = CountingRuns()

    async def twice():
        try:
            return [await events_of(orders, HARD_CODED, runs) for _ in range(2)]
        finally:
            await shutdown_pool()

    first, second = asyncio.run(twice())

    assert runs.codes.count(ORDERS_SOLUTION) == len(orders.data_sets) == 3
    assert runs.codes.count(HARD_CODED) == 6
    assert first[-4:] == second[-4:]


def test_the_cached_reference_is_keyed_by_what_it_depends_on(orders):
    changed_variant = dataclasses.replace(
        orders, data_sets=(*orders.data_sets[:2], DataSet("no orders", "SELECT 1;", True))
    )
    # Checks that run no query after the answer do not change what the reference gives.
    fewer_checks = dataclasses.replace(orders, checks=orders.checks[:1])

    assert changed_variant.reference_key() != orders.reference_key()
    assert fewer_checks.reference_key() == orders.reference_key()
