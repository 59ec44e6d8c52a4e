"""Pages as a reader sees them in Chromium: nothing scrolls sideways on a phone, the Copy
button leaves the code readable, the A–Z index fits a desktop screen, code has one colour
theme in light and dark mode, and the front page's snippet runs."""

import pytest

from tests import test_end_to_end

pytestmark = pytest.mark.browser

# The site of the end-to-end suite: Daphne on a seeded database.
live_site = test_end_to_end.live_site

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
PAGE_TYPES = {
    "home": "/",
    "A–Z index": "/topics/",
    "letter": "/letters/A/",
    "topic with a table": "/topics/orm/",
    "topic with snippets": "/topics/django-orm/",
    "snippet": "/snippets/orm-n-plus-one/",
    "links": "/links/",
    "search": "/search/?q=postgres",
    "about": "/about/",
    "playground": "/play/",
    "exercises": "/exercises/",
    "exercise": "/exercises/order-counts-with-left-join/",
    "paths": "/paths/",
    "path": "/paths/sql-from-zero/",
    "path step": "/paths/sql-from-zero/7/",
    "not found": "/no-such-page/",
}


@pytest.fixture(params=["light", "dark"])
def color_scheme(request):
    return request.param


def open_page(new_page, url, viewport, color_scheme="light"):
    page = new_page(viewport=viewport, color_scheme=color_scheme)
    page.goto(url)
    return page


@pytest.mark.parametrize("path", PAGE_TYPES.values(), ids=PAGE_TYPES.keys())
def test_no_page_scrolls_sideways_on_a_phone(live_site, new_page, path):
    page = open_page(new_page, live_site + path, PHONE)
    wider = page.evaluate(
        """() => [...document.querySelectorAll("body *")]
            .filter(element => element.getBoundingClientRect().right > innerWidth + 0.5)
            .filter(element => !element.closest("pre, .highlight"))
            .map(element => element.tagName.toLowerCase() + "." + element.className)
            .slice(0, 5)"""
    )

    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], wider


def test_the_orm_topics_table_fits_a_phone_without_scrolling(live_site, new_page):
    page = open_page(new_page, live_site + "/topics/orm/", PHONE)
    table = page.locator(".topic__summary table")

    assert table.evaluate("table => table.scrollWidth <= table.clientWidth")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_copy_button_does_not_cover_the_code(live_site, new_page, viewport):
    page = open_page(new_page, live_site + "/snippets/orm-n-plus-one/", viewport)
    button = page.get_by_role("button", name="Copy")
    button.wait_for()
    box = button.bounding_box()
    code = page.locator(".code-block .cm-editor").bounding_box()  # the code, editable

    assert box["y"] + box["height"] <= code["y"]


def test_the_a_to_z_index_fits_one_desktop_screen(live_site, new_page):
    page = open_page(new_page, live_site + "/topics/", DESKTOP)
    last_topic = page.locator(".az-index li").last
    box = last_topic.bounding_box()

    assert page.locator(".az-index li").count() > 80
    assert box["y"] + box["height"] <= DESKTOP["height"]


GITHUB_KEYWORD = {"light": "rgb(207, 34, 46)", "dark": "rgb(255, 123, 114)"}
GITHUB_STRING = {"light": "rgb(10, 48, 105)", "dark": "rgb(165, 214, 255)"}


def test_code_has_github_colours_in_either_mode(live_site, new_page, color_scheme):
    page = open_page(new_page, live_site + "/snippets/orm-crud/", DESKTOP, color_scheme)
    code = page.locator(".code-block")

    def colour(selector):
        return code.locator(selector).first.evaluate("e => getComputedStyle(e).color")

    assert colour(".kn") == GITHUB_KEYWORD[color_scheme]  # from ... import
    assert colour(".s2") == GITHUB_STRING[color_scheme]


def test_a_reader_runs_the_front_page_snippet(live_site, new_page):
    from playwright.sync_api import expect

    page = open_page(new_page, live_site + "/", DESKTOP)
    panel = page.locator("#try-title ~ .snippet .run-panel")
    panel.get_by_role("button", name="Run").click()

    expect(panel.locator(".run-status")).to_contain_text("Finished in", timeout=15_000)
    assert panel.locator(".run-output").inner_text().strip()
