"""`manage.py checkexercises`: every reference passes its checks, every wrong answer fails."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from glossary import runner
from tests.conftest import require
from tests.exercises import ORDERS, ORDERS_SOLUTION, ORDERS_VARIANTS, make_exercise

COUNT_ROWS = [{"kind": "rows"}]


@pytest.fixture
def sqlite_exercises(db):
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    sound = make_exercise(
        "orders-per-customer",
        runtime="python",
        language="sql",
        setup=ORDERS,
        solution=ORDERS_SOLUTION,
        variants=ORDERS_VARIANTS,
        checks=COUNT_ROWS,
        wrong=[
            ("SELECT customer, count(amount) FROM orders GROUP BY customer;", "skips NULLs"),
            ("SELECT 'ann', 2 UNION ALL SELECT 'bob', 1 UNION ALL SELECT 'cy', 1;", "hard-coded"),
        ],
    )
    lenient = make_exercise(
        "lenient",
        runtime="python",
        language="sql",
        setup=ORDERS,
        solution=ORDERS_SOLUTION,
        checks=COUNT_ROWS,
        wrong=[("SELECT 'ann', 2 UNION ALL SELECT 'bob', 1 UNION ALL SELECT 'cy', 1;", "lucky")],
    )
    broken = make_exercise(
        "broken-reference",
        runtime="python",
        language="sql",
        setup=ORDERS,
        solution="SELECT customer FROM orders WHERE amount > 6;",
        variants=[("no table", "SELECT 1;")],
        checks=[{"kind": "rows"}],
    )
    return sound, lenient, broken


def check_exercises(*slugs):
    out = io.StringIO()
    try:
        call_command("checkexercises", *slugs, stdout=out)
    except CommandError as error:
        return out.getvalue(), str(error)
    return out.getvalue(), None


def test_a_sound_exercise_checks_out(sqlite_exercises):
    out, error = check_exercises("orders-per-customer")

    assert error is None
    assert "ok   orders-per-customer  reference" in out
    assert "wrong 1: skips NULLs" in out and "wrong 2: hard-coded" in out
    assert "the hidden data set “NULLs and ties”" in out  # where the wrong answers fail
    assert "All 1 exercises check out (3 answers)." in out


def test_it_reports_a_wrong_answer_that_passes_and_a_reference_that_fails(sqlite_exercises):
    out, error = check_exercises()

    assert error == "2 problem(s) in 2 exercise(s): broken-reference, lenient"
    assert "FAIL lenient" in out and "passes every check" in out
    assert "FAIL broken-reference" in out
    assert "the reference solution ended with an error on the hidden data set “no table”" in out
    assert "ok   orders-per-customer  reference" in out


def test_an_unknown_slug_is_an_error(db):
    with pytest.raises(CommandError, match="No exercise called: nope"):
        call_command("checkexercises", "nope", stdout=io.StringIO())


def test_a_check_that_cannot_work_in_its_exercise_is_a_problem(db):
    make_exercise(
        "python-rows",
        runtime="python",
        language="python",
        solution="print(1)",
        checks=[{"kind": "rows"}],
    )

    out, error = check_exercises("python-rows")

    assert error.startswith("1 problem(s)")
    assert "needs a target: its answer has no result set" in out
