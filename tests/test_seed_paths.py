"""The seed's learning paths (glossary/fixtures/paths.json), loaded by loadseed."""

import pytest
from django.core.management import call_command

from glossary.models import Path, PathStep, StepKind

pytestmark = pytest.mark.django_db
PROMISED = [
    "SQL from zero",
    "The Django ORM without N+1",
    "PostgreSQL in production",
    "Transactions and concurrency",
]


@pytest.fixture
def seeded(db):
    call_command("loadseed", verbosity=0)


def test_the_seed_has_the_promised_paths_each_mixing_reading_running_and_solving(seeded):
    paths = list(Path.objects.published().prefetch_related("steps"))

    assert [path.title for path in paths] == PROMISED
    for path in paths:
        kinds = kinds_of(path)
        assert len(kinds) >= 10, path
        assert {StepKind.TOPIC, StepKind.SNIPPET, StepKind.EXERCISE} <= set(kinds), path
        assert path.summary_html, path
    assert kinds_of(paths[0]).count(StepKind.EXERCISE) >= 8


def kinds_of(path):
    return [step.kind for step in path.steps.all()]


def test_every_step_shows_published_content_with_a_note(seeded):
    for step in PathStep.objects.select_related("topic", "snippet__topic", "exercise__topic"):
        item = step.item
        assert item.is_published and (step.topic or item.topic).is_published, step
        assert step.note, step


def test_loading_the_seed_twice_leaves_the_same_steps(seeded):
    before = list(PathStep.objects.values_list("path__slug", "order", "note"))

    call_command("loadseed", "--force", verbosity=0)

    assert list(PathStep.objects.values_list("path__slug", "order", "note")) == before
