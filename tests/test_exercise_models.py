"""Exercise models: fixtures name them by natural keys, the database refuses what cannot
work, and Markdown is rendered on save and on fixture loads."""

import json

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from glossary.models import Check, Exercise, Hint, Topic
from tests.exercises import make_exercise

FIXTURE = [
    {
        "model": "glossary.exercise",
        "fields": {
            "topic": ["sql"],
            "slug": "count-rows",
            "title": "Count the rows",
            "prompt": "How many *rows*?",
            "runtime": "python",
            "language": "sql",
            "setup": "CREATE TABLE t (a int);",
            "solution": "SELECT count(*) FROM t;",
            "explanation": "`count(*)` counts rows.",
        },
    },
    {"model": "glossary.check", "fields": {"exercise": ["count-rows"], "order": 1, "kind": "rows"}},
    {
        "model": "glossary.hint",
        "fields": {"exercise": ["count-rows"], "order": 1, "text": "Use `count`."},
    },
    {
        "model": "glossary.datavariant",
        "fields": {"exercise": ["count-rows"], "order": 1, "name": "empty", "setup": "SELECT 1;"},
    },
    {
        "model": "glossary.wronganswer",
        "fields": {"exercise": ["count-rows"], "order": 1, "code": "SELECT 1;", "why": "a guess"},
    },
]


@pytest.fixture
def sql_topic(db):
    return Topic.objects.create(name="SQL", slug="sql")


def test_a_fixture_names_exercises_and_their_parts_by_natural_keys(sql_topic, tmp_path):
    path = tmp_path / "exercises.json"
    path.write_text(json.dumps(FIXTURE))

    call_command("loaddata", path, verbosity=0)
    Hint.objects.update(text="Edited in the admin.")
    call_command("loaddata", path, verbosity=0)

    exercise = Exercise.objects.get(slug="count-rows")
    assert exercise.topic == sql_topic
    assert exercise.prompt_html == "<p>How many <em>rows</em>?</p>"
    assert exercise.explanation_html == "<p><code>count(*)</code> counts rows.</p>"
    hint = exercise.hints.get()  # loaded twice: updated, not duplicated
    assert (hint.text, hint.text_html) == ("Use `count`.", "<p>Use <code>count</code>.</p>")
    assert [v.name for v in exercise.variants.all()] == ["empty"]
    assert exercise.checks.get().natural_key() == ("count-rows", 1)


@pytest.mark.parametrize(
    "fields",
    [
        {"runtime": "redis", "language": "sql"},
        {"runtime": "django", "language": "sql"},
        {"runtime": "", "language": "python"},
        {"solution": ""},
    ],
)
def test_the_database_refuses_an_exercise_that_cannot_run(sql_topic, fields):
    fields = {"runtime": "python", "language": "python", "solution": "print(1)", **fields}
    with pytest.raises(IntegrityError), transaction.atomic():
        Exercise.objects.create(topic=sql_topic, slug="x", title="X", prompt="?", **fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "max_queries"},
        {"kind": "time_limit"},
        {"kind": "uses_index"},
        {"kind": "forbids"},
        {"kind": "no_seq_scan", "target": "SELECT 1"},
    ],
)
def test_the_database_refuses_a_check_without_what_its_kind_needs(db, fields):
    exercise = make_exercise(
        "x", runtime="python", language="sql", solution="SELECT 1;", checks=[{"kind": "rows"}]
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Check.objects.create(exercise=exercise, order=2, **fields)


def test_two_parts_of_one_exercise_cannot_share_an_order(db):
    exercise = make_exercise(
        "x", runtime="python", language="sql", solution="SELECT 1;", checks=[{"kind": "rows"}]
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Check.objects.create(exercise=exercise, order=1, kind="output")


def test_drafts_and_exercises_of_draft_topics_are_for_staff_only(db, django_user_model):
    draft_topic = Topic.objects.create(name="Draft", slug="draft", is_published=False)
    shown = make_exercise("shown", runtime="python", solution="print(1)", checks=[])
    make_exercise("draft", runtime="python", solution="print(1)", checks=[], is_published=False)
    make_exercise(
        "hidden-topic", runtime="python", solution="print(1)", checks=[], topic=draft_topic
    )
    reader = django_user_model(is_staff=False)
    curator = django_user_model(is_staff=True)

    assert list(Exercise.objects.visible_to(reader)) == [shown]
    assert Exercise.objects.visible_to(curator).count() == 3


def test_loadseed_loads_the_exercises_unless_told_to_leave_them_out(db, settings, tmp_path):
    # The Django runtime's database leaves them out: its runs must not read hidden data.
    (tmp_path / "exercises.json").write_text(json.dumps(FIXTURE))
    settings.FIXTURE_DIRS = [tmp_path]

    call_command("loadseed", "--without-exercises", verbosity=0)
    left_out = Exercise.objects.count()
    call_command("loadseed", "--force", verbosity=0)

    assert Topic.objects.filter(slug="sql").exists()
    assert left_out == 0
    assert Exercise.objects.filter(slug="count-rows").exists()
