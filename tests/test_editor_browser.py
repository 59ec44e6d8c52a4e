"""The code editor and the playground as a reader uses them: Chromium against real Daphne.

Also the editor bundle itself: built from its committed inputs, and small.
"""

import gzip
import hashlib
import re

import pytest

from glossary import runner
from tests.conftest import require
from tests.live_server import ROOT, daphne, manage, seeded_database, shell, site_env
from tests.test_run_panel_browser import axe_violations

BUNDLE = ROOT / "static" / "editor" / "editor.js"
BUNDLE_BUDGET = 150 * 1024  # compressed bytes the editor may add to a snippet page
browser_test = pytest.mark.browser


def test_the_committed_bundle_was_built_from_the_committed_inputs():
    recorded = (ROOT / "static" / "editor" / "inputs.sha256").read_text().splitlines()

    for line in recorded:
        digest, name = line.split(maxsplit=1)
        assert hashlib.sha256((ROOT / name).read_bytes()).hexdigest() == digest, (
            f"{name} changed since the bundle was built: run `make editor` and commit"
        )
    assert {line.split(maxsplit=1)[1] for line in recorded} >= {
        "package.json",
        "package-lock.json",
        "static/editor/src/editor.js",
    }


def test_the_editor_adds_at_most_150_kb_compressed_to_a_page():
    added = [BUNDLE, ROOT / "static" / "css" / "editor.css"]

    size = sum(len(gzip.compress(path.read_bytes(), 9)) for path in added)

    assert size <= BUNDLE_BUDGET, f"{size} bytes gzipped"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    directory = tmp_path_factory.mktemp("editor")
    env = site_env(
        DATABASE_URL=seeded_database(directory), REDIS_URL=None, SNIPPET_RUNS_PER_MINUTE="1000"
    )
    shell(
        "from glossary.models import Snippet, Topic\n"
        "Snippet.objects.create(topic=Topic.objects.get(slug='transactions'), slug='hello',"
        " title='Hello', runtime='python', code=\"print('hello')\\n\")\n",
        env,
    )
    # Its last verified output is what a reader without JavaScript sees.
    verified = manage("verifysnippets", "sqlite3-basics", env=env)
    assert verified.returncode == 0, verified.stderr
    with daphne(env, directory / "daphne.log") as server:
        yield server.base_url


def type_at_end(page, text):
    page.locator(".cm-content").first.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(text)


def output_of(page):
    return page.locator(".run-output").first


@browser_test
def test_a_reader_edits_runs_and_resets_a_snippet(site, new_page):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(f"{site}/snippets/hello/")
    edited = page.locator("[data-edited]")
    reset = page.get_by_role("button", name=re.compile("^Reset"))
    expect(page.locator(".cm-editor")).to_be_visible()
    expect(page.locator(".code-block .highlight")).to_be_hidden()
    expect(edited).to_be_hidden()

    type_at_end(page, "\nprint('mine')")
    expect(edited).to_have_text("Edited")
    page.get_by_role("button", name=re.compile("^Run")).click()
    expect(output_of(page)).to_have_text("hello\nmine\n")

    reset.click()
    expect(edited).to_be_hidden()
    expect(page.locator(".cm-content")).to_have_text("print('hello')")
    page.get_by_role("button", name=re.compile("^Run")).click()
    expect(page.locator(".run-status")).to_contain_text("Finished in")
    expect(output_of(page)).to_have_text("hello\n")
    assert axe_violations(page, ".snippet") == []
    assert page.console_errors == []


@browser_test
def test_ctrl_enter_in_the_editor_runs_its_code(site, new_page):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(f"{site}/snippets/hello/")
    type_at_end(page, "\nprint(6 * 7)")

    page.keyboard.press("Control+Enter")

    expect(output_of(page)).to_have_text("hello\n42\n")
    expect(page.locator(".cm-content")).to_have_text(re.compile(r"print\(6 \* 7\)$"))


@browser_test
def test_the_sql_panel_links_lines_into_the_edited_code(site, new_page):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(f"{site}/snippets/orm-n-plus-one/")
    page.locator(".cm-content").first.click()
    page.keyboard.press("Control+Home")
    page.keyboard.type("# a reader's note\n# and another\n")
    page.keyboard.press("Control+Enter")
    expect(page.locator(".run-status")).to_contain_text("Finished in", timeout=30_000)
    sql_panel = page.locator(".sql-panel")
    sql_panel.locator("summary").first.click()

    line_button = sql_panel.locator(".sql-line").first
    number = int(line_button.inner_text().removeprefix("line "))
    line_button.click()

    expect(page.locator(".cm-activeLineGutter")).to_have_text(str(number))
    assert "objects" in page.locator(".cm-activeLine").inner_text()


@browser_test
def test_the_page_works_before_the_editor_arrives(site, new_page):
    from playwright.sync_api import expect

    page = new_page()
    page.route("**/editor/editor.js", lambda route: route.abort())
    page.goto(f"{site}/snippets/hello/")

    page.get_by_role("button", name=re.compile("^Run")).click()

    expect(output_of(page)).to_have_text("hello\n")
    expect(page.locator(".code-block .highlight")).to_be_visible()
    assert page.locator(".cm-editor").count() == 0


@browser_test
def test_a_reader_shares_code_then_opens_the_permalink_and_runs_it(site, new_page):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(f"{site}/play/")
    page.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.type("print('shared <b>code</b>')")
    page.get_by_role("button", name="Share").click()
    link = page.locator(".share-link")
    expect(link).to_have_text(re.compile(rf"^{re.escape(site)}/play/[\w-]{{12}}/$"))

    other = new_page()
    other.goto(link.inner_text())
    expect(other.locator(".cm-content")).to_have_text("print('shared <b>code</b>')")
    other.get_by_role("button", name="Run").click()
    expect(output_of(other)).to_have_text("shared <b>code</b>\n")
    assert other.locator("b").count() == 0  # text, never markup
    assert page.console_errors == [] and other.console_errors == []


@browser_test
def test_the_playground_runs_each_runtimes_starter(site, new_page):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(f"{site}/play/")
    picker = page.get_by_label("Runtime")
    runtimes = picker.locator("option").evaluate_all("options => options.map(o => o.value)")
    assert {"python", "django"} <= set(runtimes)

    for runtime in runtimes:
        picker.select_option(runtime)
        expect(page.locator(".cm-content")).not_to_have_text("")
        page.get_by_role("button", name="Run").click()
        expect(page.locator(".run-status")).to_contain_text("Finished in", timeout=30_000)
        assert output_of(page).inner_text().strip(), runtime
    assert axe_violations(page, ".playground") == []
    assert page.console_errors == []


@browser_test
def test_a_reader_picks_sql_on_sqlite_runs_a_select_and_sees_a_table(site, new_page):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(f"{site}/play/")
    page.get_by_label("Runtime").select_option(label="SQL on SQLite")
    expect(page.locator(".cm-content")).to_contain_text("CREATE TABLE fruit")
    page.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.type("SELECT 6 * 7 AS answer, 'forty-two' AS said;")
    page.keyboard.press("Control+Enter")

    table = output_of(page).locator("table.run-table")
    expect(table).to_be_visible(timeout=30_000)
    expect(table.locator("th")).to_have_text(["answer", "said"])
    expect(table.locator("td")).to_have_text(["42", "forty-two"])
    assert page.console_errors == []


@browser_test
def test_a_changed_runtime_keeps_the_readers_own_code(site, new_page):
    from playwright.sync_api import expect

    page = new_page()
    page.goto(f"{site}/play/")
    page.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.type("print('kept')")

    page.get_by_label("Runtime").select_option("django")

    expect(page.locator(".cm-content")).to_have_text("print('kept')")


@browser_test
def test_without_javascript_pages_show_code_output_and_share_by_form(site, new_page):
    from playwright.sync_api import expect

    page = new_page(java_script_enabled=False)
    page.goto(f"{site}/snippets/sqlite3-basics/")
    expect(page.locator(".code-block pre")).to_contain_text("import sqlite3")
    expect(page.locator(".run-panel")).to_be_hidden()
    page.get_by_text("Output from the last verified run").click()
    expect(page.locator(".verified-output pre")).to_be_visible()

    page.goto(f"{site}/play/")
    page.get_by_label("Your code").fill("print('no script')")
    page.get_by_role("button", name="Share").click()

    expect(page).to_have_url(re.compile(r"/play/[\w-]{12}/$"))
    expect(page.get_by_label("Your code")).to_have_value("print('no script')")
