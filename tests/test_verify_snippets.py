import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from glossary import runner
from glossary.models import Snippet, Verification
from tests.conftest import require


@pytest.fixture(autouse=True)
def sandbox():
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")


def test_it_records_passing_and_failing_snippets(topic, snippet):
    broken = Snippet.objects.create(
        topic=topic,
        title="Broken",
        slug="broken",
        code="raise SystemExit('nope')",
        runtime="python",
    )

    with pytest.raises(CommandError, match="1 snippet\\(s\\) failing: broken"):
        call_command("verifysnippets")

    snippet.refresh_from_db()
    broken.refresh_from_db()
    assert snippet.verification == Verification.PASSING
    assert snippet.verified_output == "hello\n"
    assert snippet.verified_at is not None
    assert snippet.verified_wall_ms > 0
    assert "Python 3." in snippet.verified_versions
    assert broken.verification == Verification.FAILING
    assert "nope" in broken.verified_output


def test_readers_see_the_verified_date_and_output(client, snippet):
    call_command("verifysnippets")

    html = client.get(reverse("glossary:snippet-detail", args=[snippet.slug])).text

    assert "Verified on" in html
    assert "Output from the last verified run" in html


def test_unknown_slugs_are_a_clear_error(snippet):
    with pytest.raises(CommandError, match="No runnable snippet called: missing"):
        call_command("verifysnippets", "hello", "missing")


# A sandbox per published snippet, well over a hundred of them, several with servers.
@pytest.mark.timeout(600)
def test_every_runnable_seed_snippet_passes_in_the_sandbox(db):
    call_command("loaddata", "glossary", "examples", verbosity=0)

    call_command("verifysnippets")

    published = Snippet.objects.published()
    runnable = published.runnable()
    assert runnable.count() >= 0.9 * published.count()
    assert set(runnable.values_list("verification", flat=True)) == {Verification.PASSING}


def test_unverified_only_skips_snippets_already_verified(topic, snippet):
    call_command("verifysnippets")
    Snippet.objects.filter(pk=snippet.pk).update(code="raise SystemExit(1)")
    fresh = Snippet.objects.create(
        topic=topic, title="Fresh", slug="fresh", code="print('new')", runtime="python"
    )

    call_command("verifysnippets", "--unverified")

    fresh.refresh_from_db()
    snippet.refresh_from_db()
    assert fresh.verification == Verification.PASSING
    assert snippet.verification == Verification.PASSING


def test_a_snippet_whose_server_software_is_missing_is_skipped_with_the_reason(
    topic, snippet, settings, tmp_path
):
    settings.BASE_DIR = tmp_path  # no sandbox environment for the server runtimes there
    needs_redis = Snippet.objects.create(
        topic=topic, title="Cache", slug="cache", code="print(1)", runtime="redis"
    )
    out = io.StringIO()

    call_command("verifysnippets", stdout=out)

    needs_redis.refresh_from_db()
    assert "skip cache (The sandbox's Python environment is missing" in out.getvalue()
    assert "All 1 runnable snippets pass; 1 skipped." in out.getvalue()
    assert needs_redis.verification == Verification.UNVERIFIED
