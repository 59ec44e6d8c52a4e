"""Curating exercises in the admin: their checks, hidden data sets, hints and wrong answers
inline, and the "check the reference" action."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from glossary import runner
from glossary.models import Exercise
from tests.conftest import require
from tests.exercises import ORDERS, ORDERS_SOLUTION, ORDERS_VARIANTS, make_exercise


@pytest.fixture
def exercises(db):
    orders = make_exercise(
        "orders-per-customer",
        runtime="python",
        language="sql",
        setup=ORDERS,
        solution=ORDERS_SOLUTION,
        variants=ORDERS_VARIANTS,
        checks=[{"kind": "rows"}],
        hints=["Group the orders."],
        wrong=[("SELECT customer, count(amount) FROM orders GROUP BY 1;", "skips NULLs")],
    )
    lenient = make_exercise(
        "lenient",
        runtime="python",
        language="python",
        solution="print(3)",
        checks=[{"kind": "output"}],
        wrong=[("print(1 + 2)", "the same output")],
    )
    return orders, lenient


def test_the_changelist_searches_and_filters_by_runtime_and_topic(staff_client, exercises):
    url = reverse("admin:glossary_exercise_changelist")

    found = staff_client.get(url, {"q": "orders"}).text
    python_sql = staff_client.get(url, {"runtime__exact": "python", "language__exact": "sql"}).text
    by_topic = staff_client.get(url, {"topic__id__exact": exercises[0].topic_id}).text

    assert "Orders per customer" in found and "Lenient" not in found
    assert "Orders per customer" in python_sql and "Lenient" not in python_sql
    assert "Orders per customer" in by_topic and "Lenient" in by_topic


def test_add_and_change_pages_show_the_parts_inline(staff_client, exercises):
    add = staff_client.get(reverse("admin:glossary_exercise_add"))
    change = staff_client.get(reverse("admin:glossary_exercise_change", args=[exercises[0].pk]))

    assert add.status_code == 200
    assert change.status_code == 200
    for part in ("Checks", "Hidden data sets", "Hints", "Wrong answers"):
        assert part in change.text
    assert "Group the orders." in change.text
    assert 'class="code-editor"' in change.text and 'class="markdown-input"' in change.text


def form_data(exercise, **changes):
    """The change form's fields as the admin posts them, with one check."""
    data = {
        "topic": exercise.topic_id,
        "title": exercise.title,
        "slug": exercise.slug,
        "prompt": exercise.prompt,
        "order": 0,
        "is_published": "on",
        "runtime": exercise.runtime,
        "language": exercise.language,
        "setup": exercise.setup,
        "starter_code": "",
        "solution": exercise.solution,
        "explanation": "",
    }
    for prefix in ("checks", "variants", "hints", "wrong_answers"):
        data |= {f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0}
    data |= {"checks-TOTAL_FORMS": 1, "checks-0-order": 1, "checks-0-kind": "rows"}
    return data | changes


def test_a_check_that_cannot_work_in_its_exercise_is_refused(staff_client, exercises):
    lenient = exercises[1]
    url = reverse("admin:glossary_exercise_change", args=[lenient.pk])

    response = staff_client.post(url, form_data(lenient))

    assert response.status_code == 200
    assert "A rows check of a Python exercise needs a target" in response.text
    assert list(lenient.checks.values_list("kind", flat=True)) == ["output"]


def test_checking_the_reference_reports_each_exercise(staff_client, exercises):
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    url = reverse("admin:glossary_exercise_changelist")
    selected = [exercise.pk for exercise in Exercise.objects.all()]

    response = staff_client.post(url, {"action": "check_reference", "_selected_action": selected})

    assert response.status_code == 302
    reported = sorted(str(message) for message in get_messages(response.wsgi_request))
    assert reported == [
        "lenient: wrong 1: the same output: passes every check",
        "orders-per-customer: the reference passes every check; its wrong answer fails.",
    ]
