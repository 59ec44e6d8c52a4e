"""Previews of linked terms in a real Chromium, served by a real Daphne."""

import pytest

from tests.live_server import daphne, migrated_database, shell, site_env

pytestmark = pytest.mark.browser
CONTENT = """\
from glossary.models import Topic
database = Topic.objects.create(name="Relational database", slug="relational-database")
Topic.objects.create(
    name="PostgreSQL", slug="postgresql", aliases="Postgres", parent=database,
    summary="PostgreSQL is a relational database. It uses MVCC. It has many extensions.",
)
Topic.objects.create(name="Secret store", slug="secret-store", is_published=False)
Topic.objects.create(
    name="MVCC", slug="mvcc",
    summary="Readers in Postgres never block writers.\\n\\n" + "Filler text. " * 300
    + "\\n\\nKeys may sit in a secret store.",
)
"""


@pytest.fixture(scope="module")
def live_site(tmp_path_factory):
    """Daphne serving a small database of its own, on a free port."""
    directory = tmp_path_factory.mktemp("previews")
    env = site_env(DATABASE_URL=migrated_database(directory))
    shell(CONTENT, env)
    with daphne(env, directory / "daphne.log") as server:
        yield server.base_url


def open_page(new_page, url, **options):
    page = new_page(**options)
    page.goto(url)
    return page


@pytest.fixture
def mvcc_page(new_page, live_site):
    page = open_page(new_page, f"{live_site}/topics/mvcc/")
    yield page
    assert page.console_errors == []


def test_hovering_a_term_shows_its_preview_without_moving_the_page(mvcc_page):
    from playwright.sync_api import expect

    page = mvcc_page
    term = page.locator("a.term-link", has_text="Postgres")
    before = page.locator(".topic__summary").bounding_box()

    term.hover()

    card = page.get_by_role("tooltip")
    expect(card).to_be_visible()
    expect(card.locator(".term-preview__title")).to_have_text("PostgreSQL")
    expect(card.locator(".term-preview__kind")).to_have_text("Part of Relational database")
    expect(card.locator(".term-preview__lead")).to_have_text(
        "PostgreSQL is a relational database. It uses MVCC."
    )
    assert page.locator(".topic__summary").bounding_box() == before
    assert card.bounding_box()["y"] >= term.bounding_box()["y"] + term.bounding_box()["height"]

    page.mouse.move(0, 0)

    expect(card).to_be_hidden()


def test_focus_shows_the_preview_and_escape_closes_it(mvcc_page):
    from playwright.sync_api import expect

    page = mvcc_page
    term = page.locator("a.term-link", has_text="Postgres")

    term.focus()

    card = page.get_by_role("tooltip")
    expect(card).to_be_visible()
    expect(term).to_have_attribute("aria-describedby", "term-preview")

    page.keyboard.press("Escape")

    expect(card).to_be_hidden()
    expect(term).to_be_focused()
    expect(term).not_to_have_attribute("aria-describedby", "term-preview")


def test_a_tap_shows_the_preview_and_a_second_tap_follows_the_link(new_page, live_site):
    from playwright.sync_api import expect

    page = open_page(
        new_page,
        f"{live_site}/topics/mvcc/",
        has_touch=True,
        is_mobile=True,
        viewport={"width": 390, "height": 844},
    )
    term = page.locator("a.term-link", has_text="Postgres")

    term.tap()

    expect(page.get_by_role("tooltip")).to_be_visible()
    assert page.url.endswith("/topics/mvcc/")

    term.tap()

    expect(page).to_have_url(f"{live_site}/topics/postgresql/")
    assert page.console_errors == []


def test_drafts_are_neither_linked_nor_previewed(mvcc_page, live_site):
    page = mvcc_page

    assert "secret store" in page.locator(".topic__summary").inner_text()
    assert page.locator("a.term-link", has_text="secret store").count() == 0
    assert page.request.get(f"{live_site}/topics/secret-store/preview/").status == 404


def test_without_javascript_a_term_is_a_plain_link(new_page, live_site):
    page = open_page(new_page, f"{live_site}/topics/mvcc/", java_script_enabled=False)
    term = page.locator("a.term-link", has_text="Postgres")

    term.hover()
    page.wait_for_timeout(500)

    assert page.locator(".term-preview").count() == 0
    term.click()
    assert page.url == f"{live_site}/topics/postgresql/"
