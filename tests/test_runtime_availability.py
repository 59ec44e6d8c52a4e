"""What the snippet page says about running a snippet, by runtime."""

from django.urls import reverse

from glossary import runner
from glossary.models import Snippet
from tests.conftest import require


def snippet_page(client, snippet):
    return client.get(reverse("glossary:snippet-detail", args=[snippet.slug])).text


def test_a_snippet_whose_server_software_is_missing_says_so_instead_of_a_run_button(
    client, topic, settings, tmp_path
):
    settings.BASE_DIR = tmp_path  # no sandbox environment for the server runtimes there
    snippet = Snippet.objects.create(
        topic=topic, title="Cache", slug="cache", code="print(1)", runtime="redis"
    )

    html = snippet_page(client, snippet)

    assert "This snippet cannot run here: The sandbox&#x27;s Python environment is missing" in html
    assert "data-run>" not in html and 'data-runnable="false"' in html


def test_a_server_snippet_shows_its_own_limits_next_to_the_run_button(client, topic, settings):
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    require(not runner.unavailable("postgresql"), runner.unavailable("postgresql") or "")
    settings.SNIPPET_RUNTIME_LIMITS = {"postgresql": {"memory_mb": 640}}
    snippet = Snippet.objects.create(
        topic=topic, title="Shop", slug="shop", code="print(1)", runtime="postgresql"
    )

    html = snippet_page(client, snippet)

    assert "data-run>" in html
    assert "640 MB memory" in html
