"""The seeded exercises check out: each reference passes, each wrong answer fails."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from glossary import runner
from glossary.models import Exercise
from tests.conftest import require


def test_every_seeded_exercise_checks_out(db):
    call_command("loadseed", verbosity=0)
    for runtime in set(Exercise.objects.values_list("runtime", flat=True)):
        require(not runner.unavailable(runtime), f"the {runtime} runtime is not available")
    out = io.StringIO()

    try:
        call_command("checkexercises", "--jobs", "2", stdout=out)
    except CommandError as error:
        pytest.fail(f"{error}\n{out.getvalue()}")

    assert "exercises check out" in out.getvalue()
