"""`loadseed --force` reloads the seed without forgetting which snippets pass."""

from django.core.management import call_command
from django.utils import timezone

from glossary.models import Snippet, Verification


def verify(snippet):
    snippet.verification = Verification.PASSING
    snippet.verified_output = "it ran"
    snippet.verified_at = timezone.now()
    snippet.verified_wall_ms = 42
    Snippet.objects.bulk_update(
        [snippet], ["verification", "verified_output", "verified_at", "verified_wall_ms"]
    )


def test_reloading_keeps_the_verification_of_unchanged_snippets(db):
    call_command("loadseed", verbosity=0)
    snippet = Snippet.objects.runnable().first()
    verify(snippet)

    call_command("loadseed", "--force", verbosity=0)

    reloaded = Snippet.objects.get(pk=snippet.pk)
    assert reloaded.verification == Verification.PASSING
    assert reloaded.verified_output == "it ran"
    assert reloaded.verified_wall_ms == 42


def test_reloading_unverifies_a_snippet_whose_code_the_seed_changes(db):
    call_command("loadseed", verbosity=0)
    snippet = Snippet.objects.runnable().first()
    snippet.code = "print('edited here, not in the seed')"
    snippet.save()
    verify(snippet)

    call_command("loadseed", "--force", verbosity=0)

    reloaded = Snippet.objects.get(pk=snippet.pk)
    assert reloaded.verification == Verification.UNVERIFIED
    assert reloaded.verified_output == ""


def test_without_force_existing_content_is_left_alone(db, capsys):
    call_command("loadseed", verbosity=0)

    call_command("loadseed")

    assert "already has content" in capsys.readouterr().out
