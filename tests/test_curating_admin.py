"""Guardrails for curators in the admin, and a walkthrough in a real browser."""

import re
import time

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from glossary import runner
from glossary.models import Link, Snippet, Topic
from tests.conftest import require
from tests.live_server import daphne, seeded_database, shell, site_env


def checkbox_checked(page, name):
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', page).group(0)
    return "checked" in tag


@pytest.mark.parametrize("model", ["topic", "link", "snippet"])
def test_new_objects_start_as_drafts_in_the_admin(staff_client, db, model):
    page = staff_client.get(reverse(f"admin:glossary_{model}_add")).text

    assert not checkbox_checked(page, "is_published")


def test_a_topics_new_inline_link_starts_as_a_draft(staff_client, db):
    page = staff_client.get(reverse("admin:glossary_topic_add")).text

    assert not checkbox_checked(page, "links-0-is_published")


def test_existing_published_objects_stay_checked(staff_client, link):
    page = staff_client.get(reverse("admin:glossary_link_change", args=[link.pk])).text

    assert checkbox_checked(page, "is_published")


def snippet_form(snippet, **changes):
    data = {
        "topic": snippet.topic_id,
        "title": snippet.title,
        "slug": snippet.slug,
        "description": snippet.description,
        "language": snippet.language,
        "runtime": snippet.runtime,
        "display_only_reason": snippet.display_only_reason,
        "code": snippet.code,
        "position": snippet.position,
        "is_published": "on",
    }
    return data | changes


def test_code_no_runtime_runs_is_refused(staff_client, snippet):
    url = reverse("admin:glossary_snippet_change", args=[snippet.pk])

    response = staff_client.post(url, snippet_form(snippet, language="shell", code="ls -l"))

    assert response.status_code == 200
    assert "Snippets run python or sql code, not shell: make it display-only." in response.text
    snippet.refresh_from_db()
    assert snippet.language == "python"


def test_a_mismatched_inline_snippet_is_refused_too(staff_client, topic):
    data = {
        "name": topic.name,
        "slug": topic.slug,
        "links-TOTAL_FORMS": 0,
        "links-INITIAL_FORMS": 0,
        "snippets-TOTAL_FORMS": 1,
        "snippets-INITIAL_FORMS": 0,
        "snippets-0-title": "Count",
        "snippets-0-slug": "count",
        "snippets-0-language": "javascript",
        "snippets-0-runtime": "postgresql",
        "snippets-0-code": "console.log(1)",
        "snippets-0-position": 0,
    }
    response = staff_client.post(reverse("admin:glossary_topic_change", args=[topic.pk]), data)

    assert "Snippets run python or sql code, not javascript" in response.text
    assert not Snippet.objects.exists()


def test_a_runtime_this_server_cannot_run_gets_a_warning(staff_client, snippet, settings, tmp_path):
    settings.BASE_DIR = tmp_path  # no sandbox environment for the server runtimes there
    url = reverse("admin:glossary_snippet_change", args=[snippet.pk])
    form = snippet_form(snippet, language="sql", runtime="postgresql", code="SELECT 1;")

    response = staff_client.post(url, form, follow=True)

    assert "The sandbox&#x27;s Python environment is missing on this server" in response.text
    snippet.refresh_from_db()
    assert snippet.runtime == "postgresql"  # a warning, not a refusal


def test_code_is_edited_in_a_monospace_editor(staff_client, snippet):
    page = staff_client.get(reverse("admin:glossary_snippet_change", args=[snippet.pk])).text

    assert re.search(r'<textarea name="code"[^>]*class="code-editor"', page)
    assert "css/admin.css" in page


def wait_for_verification(snippet, within=60):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        snippet.refresh_from_db()
        if snippet.verification != "unverified":
            return snippet.verification
        time.sleep(0.2)
    return snippet.verification


@pytest.fixture
def sandbox():
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")


@pytest.mark.django_db(transaction=True)
def test_saving_changed_code_verifies_it_in_the_background(staff_client, snippet, sandbox):
    url = reverse("admin:glossary_snippet_change", args=[snippet.pk])

    response = staff_client.post(
        url, snippet_form(snippet, code="raise SystemExit(3)"), follow=True
    )

    assert "Verifying Hello in the background" in response.text
    assert wait_for_verification(snippet) == "failing"
    changelist = staff_client.get(reverse("admin:glossary_snippet_changelist")).text
    assert "Failing" in changelist


@pytest.mark.django_db(transaction=True)
def test_verify_now_runs_the_selected_snippets(staff_client, snippet, sandbox):
    failing = Snippet.objects.create(
        topic=snippet.topic, title="Broken", slug="broken", code="1/0", runtime="python"
    )
    display_only = Snippet.objects.create(
        topic=snippet.topic, title="Shown", slug="shown", code="x", display_only_reason="Mongo"
    )
    selected = [snippet.pk, failing.pk, display_only.pk]

    response = staff_client.post(
        reverse("admin:glossary_snippet_changelist"),
        {"action": "verify_now", "_selected_action": selected},
        follow=True,
    )

    assert "Verifying Hello in the background" in response.text
    assert "Skipped display-only snippets: 1." in response.text
    assert wait_for_verification(snippet) == "passing" and "hello" in snippet.verified_output
    assert wait_for_verification(failing) == "failing"


def test_the_markdown_preview_renders_what_readers_will_see(staff_client, db):
    url = reverse("admin:glossary_markdown_preview")

    response = staff_client.post(url, {"text": "**bold** <script>alert(1)</script>"})

    assert response.status_code == 200
    assert "<strong>bold</strong>" in response.text and "<script" not in response.text


def test_the_markdown_preview_is_for_staff_and_posts_only(staff_client, db):
    url = reverse("admin:glossary_markdown_preview")

    assert Client().post(url, {"text": "hi"}).status_code == 302  # to the login page
    assert staff_client.get(url).status_code == 405
    too_long = staff_client.post(url, {"text": "x" * 50_001})
    assert too_long.status_code == 400 and "at most 50000 characters" in too_long.text


def test_markdown_fields_offer_a_preview(staff_client, topic):
    page = staff_client.get(reverse("admin:glossary_topic_change", args=[topic.pk])).text

    assert re.search(r'<textarea name="summary"[^>]*class="markdown-input"', page)
    assert "js/markdown_preview.js" in page


def test_bulk_publish_reports_what_changed_and_is_logged(staff_client, topic):
    links = [
        Link.objects.create(
            topic=topic, url=f"https://example.com/{n}", title=f"L{n}", is_published=n >= 3
        )
        for n in range(5)
    ]

    response = staff_client.post(
        reverse("admin:glossary_link_changelist"),
        {"action": "publish", "_selected_action": [link.pk for link in links]},
        follow=True,
    )

    assert "Published 3 links; 2 were already published." in response.text
    assert Link.objects.filter(is_published=True).count() == 5
    entries = LogEntry.objects.filter(change_message="Published with a bulk action.")
    assert sorted(entry.object_repr for entry in entries) == ["L0", "L1", "L2"]
    history = reverse("admin:glossary_link_history", args=[links[0].pk])
    assert "Published with a bulk action." in staff_client.get(history).text


def test_bulk_unpublish_reports_what_changed(staff_client, topic, link):
    response = staff_client.post(
        reverse("admin:glossary_topic_changelist"),
        {"action": "unpublish", "_selected_action": [topic.pk]},
        follow=True,
    )

    assert "Unpublished 1 topic." in response.text


def test_the_same_url_under_two_topics_gets_a_warning_with_a_link(staff_client, link):
    other = Topic.objects.create(name="Databases", slug="databases")
    data = {
        "topic": other.pk,
        "title": "Docs",
        "url": "https://www.postgresql.org/docs",
        "group": "docs",
        "position": 0,
    }

    response = staff_client.post(reverse("admin:glossary_link_add"), data, follow=True)

    change_url = reverse("admin:glossary_link_change", args=[link.pk])
    assert f'is also linked from the topic <a href="{change_url}">PostgreSQL</a>' in response.text
    assert Link.objects.filter(topic=other).exists()  # a warning, not a refusal


# A walkthrough in a real browser against a real Daphne ------------------------------------


SETUP = """\
from django.contrib.auth.models import User
from glossary.models import Link, LinkCheck, ReaderReport, Topic
User.objects.create_superuser("curator", "curator@example.com", "a long test password")
ReaderReport.objects.create(kind="problem", topic=Topic.objects.get(slug="postgresql"),
    message="The link to the JSONB chapter of the documentation answers 404 since last week.")
ReaderReport.objects.create(kind="link", url="https://www.postgresql.org/docs/current/" + "x" * 60)
link = Link.objects.filter(topic__slug="postgresql").first()
LinkCheck.objects.create(link=link, ok=True, status=200,
    suggested_url="https://www.postgresql.org/docs/current/a-rather-long-new-address.html",
    redirect_chain=[[301, link.url], [200, "https://www.postgresql.org/docs/current/"]])
"""


@pytest.fixture(scope="module")
def live_admin(tmp_path_factory):
    """Daphne serving the seed content and a superuser, on a free port."""
    directory = tmp_path_factory.mktemp("admin")
    env = site_env(DATABASE_URL=seeded_database(directory))
    shell(SETUP, env)
    with daphne(env, directory / "daphne.log") as server:
        yield server.base_url


@pytest.fixture
def curator(new_page, live_admin):
    """A logged-in curator's page at 1280 × 900, collecting console errors (CSP too)."""
    page = new_page()
    page.goto(f"{live_admin}/admin/login/")
    page.fill("#id_username", "curator")
    page.fill("#id_password", "a long test password")
    page.click("input[type=submit]")
    page.base = live_admin
    return page


def right_edges(page, selector):
    return page.eval_on_selector_all(
        selector, "els => els.map(e => e.getBoundingClientRect().right)"
    )


@pytest.mark.browser
@pytest.mark.parametrize("model", ["topic", "link", "snippet", "readerreport"])
def test_changelists_fit_a_1280_px_screen(curator, model):
    curator.goto(f"{curator.base}/admin/glossary/{model}/")

    results = curator.locator(".results")
    width, visible = results.evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert width <= visible  # no column hidden behind a horizontal scroll
    assert max(right_edges(curator, "#result_list th")) <= 1280


@pytest.mark.browser
def test_a_topics_link_rows_show_position_published_and_delete(curator):
    curator.goto(f"{curator.base}/admin/glossary/topic/")
    curator.locator("#result_list").get_by_role("link", name="PostgreSQL", exact=True).click()
    curator.wait_for_url("**/change/")

    rows = "#links-group tr.has_original"
    edges = right_edges(
        curator, f"{rows} td.field-position input, {rows} td.field-is_published input"
    )
    edges += right_edges(curator, f"{rows} td.delete input")
    table = curator.locator("#links-group .tabular")
    assert edges and max(edges) <= table.evaluate("e => e.getBoundingClientRect().right")
    assert table.evaluate("e => e.scrollWidth <= e.clientWidth")


@pytest.mark.browser
def test_a_curator_previews_markdown_without_breaking_the_csp(curator):
    curator.goto(f"{curator.base}/admin/glossary/topic/add/")
    curator.fill("#id_summary", "A **bold** claim with a [link](https://example.com/).")

    curator.get_by_role("button", name="Preview").first.click()

    preview = curator.locator(".markdown-preview").first
    preview.locator("strong").wait_for()
    assert preview.locator("strong").inner_text() == "bold"
    assert preview.locator("a").get_attribute("href") == "https://example.com/"
    assert curator.console_errors == []


@pytest.mark.browser
def test_a_curator_accepts_a_moved_links_new_url_from_the_list(curator):
    curator.goto(f"{curator.base}/admin/glossary/link/?health=redirected")

    curator.get_by_role("button", name="Use it").click()

    curator.get_by_text("now links to https://www.postgresql.org/docs/current/a-rather").wait_for()
    assert "/admin/glossary/link/" in curator.url
    assert curator.get_by_role("button", name="Use it").count() == 0


@pytest.mark.browser
def test_a_readers_suggestion_becomes_a_draft_link_in_the_queue(new_page, live_admin, curator):
    reader = new_page()
    reader.goto(f"{live_admin}/topics/postgresql/")
    reader.get_by_role("link", name="Suggest a link").click()
    reader.get_by_label("Link (for a suggestion)").fill("https://pgpedia.info/")
    reader.get_by_label("Its title").fill("pgPedia")
    reader.get_by_label("Message").fill("An encyclopedia of PostgreSQL.")
    reader.get_by_role("button", name="Send").click()
    reader.get_by_text("A curator will read your report.").wait_for()
    reader.close()

    curator.goto(f"{curator.base}/admin/glossary/readerreport/?status__exact=new")
    row = curator.locator("#result_list tr", has_text="https://pgpedia.info/")
    row.locator("input.action-select").check()
    curator.select_option("select[name=action]", "accept")
    curator.get_by_role("button", name="Run").click()
    curator.get_by_text("Accepted 1 reader report.").wait_for()

    curator.goto(f"{curator.base}/admin/glossary/link/?q=pgpedia")
    row = curator.locator("#result_list tbody tr")
    assert row.count() == 1 and "pgPedia" in row.inner_text()
    assert row.locator("td.field-is_published img").get_attribute("alt") == "False"


def open_snippet(curator, slug):
    curator.goto(f"{curator.base}/admin/glossary/snippet/?q={slug}")
    curator.locator("#result_list tbody th a").first.click()
    curator.wait_for_url(re.compile(r"/change/"))


def replace_code(editor, text):
    editor.locator(".cm-content").click()
    editor.page.keyboard.press("Control+a")
    editor.page.keyboard.type(text)


@pytest.mark.browser
def test_a_curator_edits_code_in_the_editor_and_saves_what_they_typed(curator):
    open_snippet(curator, "sqlite3-basics")
    editor = curator.locator(".admin-code-editor")
    assert editor.locator(".cm-lineNumbers").is_visible()
    assert curator.locator("#id_code").is_hidden()

    original = curator.locator("#id_code").input_value()
    replace_code(editor, "oops")
    curator.keyboard.press("Control+z")
    assert curator.locator("#id_code").input_value() == original  # undone
    replace_code(editor, "total = 41\nif total:\nprint(total + 1)")
    with curator.expect_navigation():
        curator.locator("input[name=_continue]").click()

    # Enter indents the line after "if total:" by four spaces.
    saved = "total = 41\nif total:\n    print(total + 1)"
    assert curator.locator("#id_code").input_value() == saved
    assert curator.locator(".admin-code-editor .cm-line").all_inner_texts()[:3] == [
        "total = 41",
        "if total:",
        "    print(total + 1)",
    ]
    assert curator.console_errors == []


@pytest.mark.browser
def test_switching_the_language_to_sql_highlights_sql(curator):
    open_snippet(curator, "sqlite3-basics")
    editor = curator.locator(".admin-code-editor")
    replace_code(editor, "SELECT name FROM topic WHERE id = 1")
    keywords = editor.locator(".tok-keyword")
    assert "SELECT" not in keywords.all_inner_texts()  # a Python name

    curator.select_option("#id_language", "sql")

    keywords.first.wait_for()
    assert {"SELECT", "FROM", "WHERE"} <= set(keywords.all_inner_texts())
    assert curator.locator("#id_code").input_value() == "SELECT name FROM topic WHERE id = 1"
    assert curator.console_errors == []


@pytest.mark.browser
def test_inline_snippets_on_a_topic_page_get_the_editor_too(curator):
    curator.goto(f"{curator.base}/admin/glossary/topic/")
    curator.locator("#result_list").get_by_role("link", name="PostgreSQL", exact=True).click()
    curator.wait_for_url(re.compile(r"/change/"))
    existing = curator.locator("#snippets-group .inline-related.has_original")
    assert existing.count() > 0
    assert existing.locator(".admin-code-editor .cm-editor").count() == existing.count()

    curator.locator("#snippets-group .add-row a").click()

    added = curator.locator("#snippets-group .inline-related.last-related:not(.empty-form)")
    added.last.locator(".admin-code-editor .cm-editor").wait_for()
    replace_code(added.last.locator(".admin-code-editor"), "x = 1")
    row = existing.count()
    assert curator.locator(f"#id_snippets-{row}-code").input_value() == "x = 1"
    assert curator.locator("#snippets-empty .cm-editor").count() == 0  # the template row
    assert curator.console_errors == []


@pytest.mark.browser
def test_without_javascript_the_code_is_a_plain_textarea(new_page, live_admin):
    page = new_page(java_script_enabled=False)
    page.goto(f"{live_admin}/admin/login/")
    page.fill("#id_username", "curator")
    page.fill("#id_password", "a long test password")
    page.click("input[type=submit]")
    page.goto(f"{live_admin}/admin/glossary/snippet/?q=sqlite3-file-database")
    page.locator("#result_list tbody th a").first.click()

    assert page.locator("textarea#id_code.code-editor").is_visible()
    assert "sqlite3.connect" in page.locator("#id_code").input_value()
    assert page.locator(".cm-editor").count() == 0
