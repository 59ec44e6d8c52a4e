"""The seeded exercises are complete: each can be checked, taught and shown to fail."""

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models import Count

from glossary.models import (
    Check,
    CheckKind,
    DataVariant,
    Exercise,
    ExerciseLanguage,
    Hint,
    Topic,
    WrongAnswer,
)


@pytest.fixture(scope="module")
def seed(django_db_setup, django_db_blocker):
    """The seed, loaded once for the module and rolled back after it (loading takes a while)."""
    with django_db_blocker.unblock(), transaction.atomic():
        call_command("loadseed", verbosity=0)
        yield
        transaction.set_rollback(True)


@pytest.fixture
def seeded(seed, db):
    return Exercise.objects.published()


def test_the_seed_has_at_least_thirty_published_exercises(seeded):
    assert seeded.count() >= 30


def test_every_exercise_has_checks_hidden_data_wrong_answers_hints_and_an_explanation(seeded):
    counted = seeded.annotate(
        checks_n=Count("checks", distinct=True),
        variants_n=Count("variants", distinct=True),
        wrong_n=Count("wrong_answers", distinct=True),
        hints_n=Count("hints", distinct=True),
    )
    incomplete = {
        exercise.slug: (exercise.checks_n, exercise.variants_n, exercise.wrong_n, exercise.hints_n)
        for exercise in counted
        if 0 in (exercise.checks_n, exercise.variants_n, exercise.wrong_n, exercise.hints_n)
        or not exercise.explanation_html
        or not exercise.prompt_html
    }
    assert incomplete == {}


def test_exercises_belong_to_published_topics(seeded):
    topics = Topic.objects.filter(exercises__in=seeded).distinct()
    assert topics.exists()
    assert not topics.filter(is_published=False).exists()


def test_no_check_is_impossible_in_its_exercise(seeded):
    problems = [
        f"{check.exercise.slug}: {problem}"
        for check in Check.objects.select_related("exercise")
        if (problem := check.problem(check.exercise.runtime, check.exercise.language))
    ]
    assert problems == []


def test_the_seed_uses_every_check_kind_and_every_kind_of_runtime(seeded):
    used_kinds = set(Check.objects.values_list("kind", flat=True))
    assert used_kinds == set(CheckKind.values)
    runtimes = set(seeded.values_list("runtime", "language"))
    assert {
        ("python", ExerciseLanguage.SQL),
        ("postgresql", ExerciseLanguage.SQL),
        ("postgresql", ExerciseLanguage.PYTHON),
        ("django", ExerciseLanguage.PYTHON),
        ("redis", ExerciseLanguage.PYTHON),
    } <= runtimes


def test_hidden_data_and_wrong_answers_differ_from_what_the_reader_sees(seeded):
    same_data = [
        variant.exercise.slug
        for variant in DataVariant.objects.select_related("exercise")
        if variant.setup.strip() == variant.exercise.setup.strip()
    ]
    same_code = [
        wrong.exercise.slug
        for wrong in WrongAnswer.objects.select_related("exercise")
        if wrong.code.strip() == wrong.exercise.solution.strip()
    ]
    assert same_data == []
    assert same_code == []


def test_reloading_the_seed_updates_exercises_in_place(seeded):
    counts = [model.objects.count() for model in (Exercise, Hint, DataVariant, Check, WrongAnswer)]
    exercise = seeded.first()
    exercise.title = "Edited by a curator"
    exercise.save()

    call_command("loadseed", "--force", verbosity=0)

    assert [
        model.objects.count() for model in (Exercise, Hint, DataVariant, Check, WrongAnswer)
    ] == counts
    assert Exercise.objects.get(pk=exercise.pk).title != "Edited by a curator"
