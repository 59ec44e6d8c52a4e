"""Exercises and learning paths as a reader uses them: Chromium against a real Daphne.

Solve one, fail one, take a hint, see progress survive a reload and move to another
browser, walk a path's steps, and read an exercise without JavaScript.
"""

import json
import re

import pytest

from glossary import runner
from tests.conftest import require
from tests.live_server import daphne, seeded_database, shell, site_env
from tests.test_run_panel_browser import axe_violations

pytestmark = pytest.mark.browser
SOLUTION = "SELECT name FROM product WHERE price < 10 ORDER BY name;"
# An exercise on SQLite (the python runtime): quick to check, nothing else needed.
MAKE_CONTENT = f"""\
from glossary.models import Check, DataVariant, Exercise, Hint, Path, PathStep, Snippet, Topic
joins = Topic.objects.get(slug="joins")
exercise = Exercise.objects.create(
    topic=joins, slug="cheap-products", title="Cheap products", runtime="python",
    language="sql", prompt="List the names of the products under 10, A to Z.",
    setup="CREATE TABLE product (name TEXT, price REAL);"
    " INSERT INTO product VALUES ('saw', 25.0), ('nut', 0.1), ('bolt', 0.25);",
    starter_code="SELECT name FROM product;", solution={SOLUTION!r},
    explanation="Keep the cheap rows with WHERE, then sort them.",
)
for order, text in enumerate(["Keep some rows: WHERE.", "Compare with <.", "Sort: ORDER BY."]):
    Hint.objects.create(exercise=exercise, order=order, text=text)
Check.objects.create(exercise=exercise, order=0, kind="rows", ordered=True)
DataVariant.objects.create(
    exercise=exercise, order=0, name="A price of exactly 10 and a NULL",
    setup="CREATE TABLE product (name TEXT, price REAL);"
    " INSERT INTO product VALUES ('ten', 10), ('free', NULL), ('pin', 0.5), ('axe', 9.99);",
)
slow = Exercise.objects.create(
    topic=joins, slug="slow-hello", title="Slow hello", runtime="python", prompt="Print hello.",
    starter_code="import time\\ntime.sleep(30)\\nprint('hello')\\n", solution="print('hello')",
)
Check.objects.create(exercise=slow, order=0, kind="output")
path = Path.objects.create(slug="test-path", title="A test path", summary="Three steps.")
PathStep.objects.create(path=path, order=1, topic=joins, note="Read this first.")
PathStep.objects.create(path=path, order=2, snippet=Snippet.objects.get(slug="sql-joins"))
PathStep.objects.create(path=path, order=3, exercise=exercise)
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    directory = tmp_path_factory.mktemp("exercises")
    env = site_env(
        DATABASE_URL=seeded_database(directory), REDIS_URL=None, SNIPPET_RUNS_PER_MINUTE="1000"
    )
    shell(MAKE_CONTENT, env)
    with daphne(env, directory / "daphne.log") as server:
        yield server.base_url


def write_answer(page, code):
    page.locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.type(code)


def check_items(page):
    return page.locator("[data-check-item]")


def test_a_reader_solves_an_exercise_and_it_stays_solved(site, new_page):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(f"{site}/exercises/cheap-products/")
    solution = page.locator("details.solution")
    expect(page.locator(".cm-editor")).to_be_visible()
    expect(solution).not_to_have_attribute("open", "")

    write_answer(page, SOLUTION)
    page.get_by_role("button", name="Check").click()

    expect(page.locator("[data-verdict]")).to_have_text("Solved: every check passed.")
    expect(check_items(page)).to_have_count(1)
    expect(check_items(page).first).to_have_attribute("data-state", "pass")
    expect(solution).to_have_attribute("open", "")
    expect(page.locator(".progress-mark")).to_have_text("Solved")
    expect(page.locator(".run-output table")).to_be_visible()  # the answer's rows

    page.reload()
    expect(page.locator(".progress-mark")).to_have_text("Solved")
    expect(solution).to_have_attribute("open", "")
    page.goto(f"{site}/paths/test-path/")
    expect(page.locator('[data-progress-item="exercise:cheap-products"]')).to_have_attribute(
        "data-done", "true"
    )
    expect(page.locator("[data-progress-count]")).to_have_text("1 of 3 done")
    page.goto(f"{site}/exercises/")
    expect(page.locator('[data-progress-item="exercise:cheap-products"]')).to_contain_text("Solved")
    page.goto(f"{site}/topics/joins/")
    expect(page.locator('[data-progress-item="exercise:cheap-products"]')).to_contain_text("Solved")
    assert page.console_errors == []


def test_a_wrong_answer_shows_which_check_failed_and_why(site, new_page):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(f"{site}/exercises/cheap-products/")
    expect(page.locator(".cm-editor")).to_be_visible()

    page.get_by_role("button", name="Check").click()  # the starter code: every product

    expect(page.locator("[data-verdict]")).to_have_text("Not yet: 1 of 1 check failed.")
    failed = check_items(page).first
    expect(failed).to_have_attribute("data-state", "fail")
    expect(failed.locator("[data-check-mark]")).to_have_text("Fail")
    expect(failed.locator("[data-check-detail]")).to_be_visible()
    expect(failed.locator("[data-check-detail]")).to_contain_text("saw")
    expect(page.locator(".progress-mark")).to_be_hidden()
    expect(page.locator("details.solution")).not_to_have_attribute("open", "")
    assert axe_violations(page, ".exercise") == []


def test_run_shows_what_the_answer_does_without_checking_it(site, new_page):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(f"{site}/exercises/cheap-products/")
    expect(page.locator(".cm-editor")).to_be_visible()

    page.get_by_role("button", name="Run", exact=True).click()

    expect(page.locator(".run-status")).to_contain_text("Finished in")
    expect(page.locator(".run-output table td")).to_have_text(["saw", "nut", "bolt"])
    expect(page.locator("[data-verdict]")).to_have_text("")


def test_stopping_a_check_says_the_answer_was_not_checked(site, new_page):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(f"{site}/exercises/slow-hello/")
    expect(page.locator(".cm-editor")).to_be_visible()
    page.get_by_role("button", name="Check").click()
    expect(page.locator(".run-status")).to_have_text("Running…")

    page.get_by_role("button", name="Stop").click()

    expect(page.locator("[data-verdict]")).to_have_text("Not checked: Stopped.")
    expect(check_items(page).first).to_have_attribute("data-state", "pending")
    expect(page.get_by_role("button", name="Check")).to_have_attribute("aria-disabled", "false")


def test_an_answer_in_progress_survives_a_reload_until_reset(site, new_page):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(f"{site}/exercises/cheap-products/")
    write_answer(page, "SELECT name FROM product WHERE price < 1;")
    expect(page.locator("[data-edited]")).to_be_visible()

    page.reload()
    expect(page.locator(".cm-content")).to_have_text("SELECT name FROM product WHERE price < 1;")
    expect(page.locator("[data-edited]")).to_be_visible()
    page.get_by_role("button", name=re.compile("^Reset")).click()
    page.reload()

    expect(page.locator(".cm-content")).to_have_text("SELECT name FROM product;")
    expect(page.locator("[data-edited]")).to_be_hidden()


def test_hints_come_one_at_a_time(site, new_page):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(f"{site}/exercises/cheap-products/")
    hints = page.locator("[data-hint]")
    button = page.get_by_role("button", name=re.compile("^Show a hint"))
    expect(button).to_have_text("Show a hint (1 of 3)")
    expect(hints.first).to_be_hidden()

    button.click()
    expect(hints.nth(0)).to_have_text("Keep some rows: WHERE.")
    expect(hints.nth(1)).to_be_hidden()
    expect(button).to_have_text("Show a hint (2 of 3)")
    button.click()
    button.click()

    expect(hints.nth(2)).to_be_visible()
    expect(button).to_be_hidden()
    expect(hints.nth(2)).to_be_focused()


def test_progress_moves_to_another_browser_as_a_file(site, new_page, tmp_path):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(f"{site}/paths/test-path/1/")
    page.get_by_role("link", name=re.compile("^Next")).click()
    expect(page).to_have_url(f"{site}/paths/test-path/2/")
    page.goto(f"{site}/paths/test-path/")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export progress").click()
    exported = tmp_path / "progress.json"
    download.value.save_as(exported)
    assert set(json.loads(exported.read_text())["read"]) == {
        "topic:joins",
        "snippet:sql-joins",
    }

    fresh = new_page()
    fresh.goto(f"{site}/paths/test-path/")
    expect(fresh.locator("[data-progress-count]")).to_have_text("0 of 3 done")
    fresh.get_by_label("Import progress").set_input_files(exported)

    expect(fresh.locator("[data-progress-message]")).to_have_text(
        "Imported 0 solved exercises and 2 read steps."
    )
    expect(fresh.locator("[data-progress-count]")).to_have_text("2 of 3 done")
    expect(fresh.locator('[data-progress-item="topic:joins"]')).to_have_attribute(
        "data-done", "true"
    )
    fresh.reload()
    expect(fresh.locator("[data-progress-count]")).to_have_text("2 of 3 done")


def test_a_bad_progress_file_is_refused_and_nothing_is_lost(site, new_page, tmp_path):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(f"{site}/paths/test-path/1/")
    page.goto(f"{site}/paths/test-path/")
    expect(page.locator("[data-progress-count]")).to_have_text("1 of 3 done")
    message = page.locator("[data-progress-message]")
    not_json = tmp_path / "notes.json"
    not_json.write_text("my notes, not progress")
    other_json = tmp_path / "other.json"
    other_json.write_text(json.dumps({"solved": ["x"]}))

    page.get_by_label("Import progress").set_input_files(not_json)
    expect(message).to_have_text(
        "This file is not a progress file: it is not JSON. Your progress here is unchanged."
    )
    page.get_by_label("Import progress").set_input_files(other_json)
    expect(message).to_have_text(
        "This file is not a DB Glossary progress file. Your progress here is unchanged."
    )

    page.reload()
    expect(page.locator("[data-progress-count]")).to_have_text("1 of 3 done")


def test_a_reader_walks_a_path_step_by_step(site, new_page):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(f"{site}/paths/test-path/")
    page.get_by_role("link", name="Start with step 1").click()
    expect(page.locator(".step-position")).to_contain_text("step 1 of 3")
    expect(page.locator("h1")).to_have_text("Joins")

    page.get_by_role("link", name=re.compile("^Next")).click()
    expect(page).to_have_url(f"{site}/paths/test-path/2/")
    expect(page.locator(".step-nav__position")).to_have_text("2 of 3")
    page.get_by_role("link", name=re.compile("^Next")).click()
    expect(page.locator("h1")).to_have_text("Cheap products")
    expect(page.locator(".cm-editor")).to_be_visible()
    page.get_by_role("link", name=re.compile("^Previous")).click()
    expect(page).to_have_url(f"{site}/paths/test-path/2/")

    page.goto(f"{site}/paths/test-path/")
    expect(page.locator('[data-progress-item="topic:joins"] [data-progress-label]')).to_have_text(
        "Read"
    )
    page.get_by_role("link", name="Continue with step 3: Cheap products").click()
    expect(page).to_have_url(f"{site}/paths/test-path/3/")


def test_without_javascript_the_prompt_and_starter_code_are_there(site, new_page):
    from playwright.sync_api import expect

    page = new_page(java_script_enabled=False)
    page.goto(f"{site}/exercises/cheap-products/")

    expect(page.get_by_text("List the names of the products under 10, A to Z.")).to_be_visible()
    expect(page.locator("[data-answer] .highlight")).to_have_text(
        re.compile(r"SELECT name FROM product;")
    )
    expect(page.locator(".run-panel")).to_be_hidden()
    expect(page.locator("details.hints summary")).to_have_text("Hints (3)")
    expect(page.locator("details.solution summary")).to_have_text("Show solution")
