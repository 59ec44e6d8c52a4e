"""The run panel and the SQL panel as a reader sees them: Chromium against real Daphnes."""

import re

import pytest

from glossary import runner
from tests.conftest import require
from tests.live_server import daphne, seeded_database, shell, site_env

pytestmark = pytest.mark.browser
SNIPPETS = {
    "hello": "print('hello')\n",
    "slow-counter": (
        "import time\nfor i in range(100):\n    print(f'tick {i}')\n    time.sleep(0.3)\n"
    ),
    "cpu-loop": "while True:\n    pass\n",
    "colours": "print('\\x1b[1;31mred\\x1b[0m and plain')\n",
    "endless": "while True:\n    print('x' * 99)\n",
    "long-ticker": (
        "import time\nprint('\\n'.join(f'line {i}' for i in range(80)))\n"
        "for i in range(100):\n    print(f'tick {i}')\n    time.sleep(0.2)\n"
    ),
}
MAKE_SNIPPETS = f"""\
from glossary.models import Snippet, Topic
topic = Topic.objects.get(slug="transactions")
for slug, code in {SNIPPETS!r}.items():
    Snippet.objects.create(topic=topic, slug=slug, title=slug, runtime="python", code=code)
Snippet.objects.create(
    topic=topic, slug="shop-sql", title="shop-sql", runtime="python", language="sql",
    code="SELECT 'bolt' AS name, 0.25 AS price, NULL AS note UNION ALL SELECT 'nut', 0.1, 'x';",
)
"""


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """The directory and environment of a seeded database with this module's snippets."""
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    directory = tmp_path_factory.mktemp("panel")
    # No REDIS_URL: a cache shared with other sites' processes could serve their pages.
    env = site_env(DATABASE_URL=seeded_database(directory), REDIS_URL=None)
    shell(MAKE_SNIPPETS, env)
    return directory, env


@pytest.fixture(scope="module")
def site(seeded):
    """One run at a time and one waiting, a CPU limit of 1 s: queues and limits show.

    The wall-clock limit is far off, so that even on a busy machine the CPU limit comes first.
    """
    directory, env = seeded
    env = {
        **env,
        "SNIPPET_RUN_SLOTS": "1",
        "SNIPPET_QUEUE_SIZE": "1",
        "SNIPPET_CPU_SECONDS": "1",
        "SNIPPET_WALL_SECONDS": "30",
        "SNIPPET_RUNS_PER_MINUTE": "1000",
    }
    with daphne(env, directory / "daphne.log") as server:
        yield server.base_url


@pytest.fixture(scope="module")
def strict_site(seeded):
    """One run a minute per reader."""
    directory, env = seeded
    with daphne({**env, "SNIPPET_RUNS_PER_MINUTE": "1"}, directory / "strict.log") as server:
        yield server.base_url


def axe_violations(page, selector):
    """What axe-core finds wrong with the run panel's markup: focus, names, ARIA."""
    from axe_playwright_python.sync_playwright import Axe

    rules = [
        "scrollable-region-focusable",
        "aria-allowed-attr",
        "aria-prohibited-attr",
        "aria-allowed-role",
        "landmark-unique",
        "button-name",
        "nested-interactive",
    ]
    results = Axe().run(page, context=selector, options={"runOnly": rules})
    return [(v["id"], [n["html"] for n in v["nodes"]]) for v in results.response["violations"]]


def open_panel(page, url):
    page.goto(url)
    panel = page.locator(".run-panel")
    return panel, panel.locator("[data-run]"), panel.locator("[data-stop]")


def expect_ready(run, stop):
    from playwright.sync_api import expect

    expect(run).to_have_attribute("aria-disabled", "false")
    expect(stop).to_have_attribute("aria-disabled", "true")


def test_after_the_rate_limit_the_panel_is_ready_and_run_asks_again(strict_site, page):
    from playwright.sync_api import expect

    sockets = []
    page.on("websocket", lambda socket: sockets.append(socket))
    panel, run, stop = open_panel(page, f"{strict_site}/snippets/hello/")
    status = panel.locator(".run-status")
    run.click()
    expect(status).to_contain_text("Finished in")

    run.click()
    expect(status).to_contain_text("Too many runs from your address")
    expect_ready(run, stop)

    run.click()
    expect(status).to_contain_text("Too many runs from your address")
    assert len(sockets) == 3
    expect_ready(run, stop)
    assert page.console_errors == []


def test_a_reader_waits_in_the_queue_is_refused_when_it_is_full_then_runs(site, new_page):
    from playwright.sync_api import expect

    first, second, third = new_page(), new_page(), new_page()
    first_panel, first_run, first_stop = open_panel(first, f"{site}/snippets/slow-counter/")
    first_run.click()
    expect(first_panel.locator(".run-output")).to_contain_text("tick 1")

    second_panel, second_run, second_stop = open_panel(second, f"{site}/snippets/slow-counter/")
    second_run.click()
    # The empty box says what is happening.
    expect(second_panel.locator(".run-output")).to_have_text(
        "Waiting for a free slot: number 1 in the queue."
    )

    third_panel, third_run, third_stop = open_panel(third, f"{site}/snippets/hello/")
    third_run.click()
    expect(third_panel.locator(".run-status")).to_contain_text("The server is busy")
    expect_ready(third_run, third_stop)

    first_stop.click()
    expect(second_panel.locator(".run-output")).to_contain_text("tick 1")
    assert "Waiting" not in second_panel.locator(".run-output").inner_text()
    second_stop.click()
    expect(second_panel.locator(".run-status")).to_contain_text("Stopped in")

    third_run.click()
    expect(third_panel.locator(".run-status")).to_contain_text("Finished in")
    expect(third_panel.locator(".run-output")).to_have_text("hello\n")


def test_keyboard_focus_stays_on_run_and_on_stop(site, page):
    from playwright.sync_api import expect

    panel, run, stop = open_panel(page, f"{site}/snippets/slow-counter/")
    run.focus()
    page.keyboard.press("Enter")
    expect(panel.locator(".run-output")).to_contain_text("tick 1")
    assert page.evaluate("document.activeElement.matches('[data-run]')")

    stop.focus()
    page.keyboard.press("Enter")
    expect(panel.locator(".run-status")).to_contain_text("Stopped in")
    assert page.evaluate("document.activeElement.matches('[data-stop]')")
    expect_ready(run, stop)


def test_the_cpu_limit_is_told_apart_from_the_time_limit(site, page):
    from playwright.sync_api import expect

    panel, run, stop = open_panel(page, f"{site}/snippets/cpu-loop/")
    run.click()

    status = panel.locator(".run-status")
    expect(status).to_have_text("Stopped: CPU time limit, 1 s", timeout=30_000)


def test_ansi_colours_are_shown_as_colours_not_codes(site, page):
    from playwright.sync_api import expect

    panel, run, stop = open_panel(page, f"{site}/snippets/colours/")
    run.click()

    output = panel.locator(".run-output")
    expect(output).to_have_text("red and plain\n")
    red = output.get_by_text("red", exact=True)
    expect(red).to_have_class(re.compile(r"\bansi-colour-1\b"))
    expect(red).to_have_css("font-weight", "700")


def test_an_sql_snippets_result_set_shows_as_a_table(site, page):
    from playwright.sync_api import expect

    panel, run, stop = open_panel(page, f"{site}/snippets/shop-sql/")
    run.click()

    table = panel.locator(".run-output table")
    expect(table.locator("th")).to_have_text(["name", "price", "note"])
    expect(table.locator("tbody tr").first.locator("td")).to_have_text(["bolt", "0.25", "NULL"])
    expect(table.locator(".run-table__null")).to_have_count(1)
    assert page.console_errors == []


def test_at_the_output_limit_a_line_says_where_the_output_was_cut(site, page):
    from playwright.sync_api import expect

    panel, run, stop = open_panel(page, f"{site}/snippets/endless/")
    run.click()

    expect(panel.locator(".run-status")).to_have_text("Stopped: output limit, 64 KiB")
    cut = panel.locator(".run-output > :last-child")
    expect(cut).to_have_text("Output cut here: the run reached its 64 KiB output limit.")
    cut.scroll_into_view_if_needed()
    expect(cut).to_be_in_viewport()


def test_the_output_follows_new_lines_only_while_the_reader_is_at_the_bottom(site, page):
    from playwright.sync_api import expect

    panel, run, stop = open_panel(page, f"{site}/snippets/long-ticker/")
    output = panel.locator(".run-output")
    at_bottom = "o => o.scrollHeight - o.scrollTop - o.clientHeight < 4"
    run.click()
    expect(output).to_contain_text("tick 2")
    assert output.evaluate(at_bottom)

    output.evaluate("o => { o.scrollTop = 0 }")
    expect(output).to_contain_text("tick 8")
    assert output.evaluate("o => o.scrollTop") == 0

    output.evaluate("o => { o.scrollTop = o.scrollHeight }")
    expect(output).to_contain_text("tick 14")
    assert output.evaluate(at_bottom)
    stop.click()


def test_the_sql_panel_counts_groups_and_links_queries_to_code_lines(site, new_page):
    from playwright.sync_api import expect

    page = new_page(viewport={"width": 390, "height": 900})
    panel, run, stop = open_panel(page, f"{site}/snippets/orm-n-plus-one/")
    run.click()
    expect(panel.locator(".run-status")).to_contain_text("Finished in", timeout=30_000)
    sql_panel = panel.locator(".sql-panel")
    sql_panel.locator("summary").first.click()

    heading = sql_panel.locator("[data-sql-heading]")
    expect(heading).to_have_text(re.compile(r"^\d+ queries · [\d.]+ ms · \d+ similar · \d+ dup"))
    # The N+1: a run of similar queries is one entry, with the rest folded under it.
    expect(sql_panel.locator(".sql-repeats summary").first).to_have_text(
        re.compile(r"^\d+ more like it, one after another$")
    )
    expect(sql_panel.locator(".sql-tag--similar:visible").first).to_have_text(
        re.compile(r"^similar ×\d+$")
    )
    expect(sql_panel.get_by_text("Query plan").first).to_be_visible()

    first_sql = sql_panel.locator(".sql-text").first
    collapsed = first_sql.inner_text()
    assert re.search(r"… \(\+\d+ columns\)", collapsed)
    sql_panel.get_by_role("button", name="Show every column").first.click()
    assert len(first_sql.inner_text()) > len(collapsed)

    line_button = sql_panel.locator(".sql-line").first
    number = int(line_button.inner_text().removeprefix("line "))
    line_button.click()
    # The line is selected in the code editor, and in view.
    expect(page.locator(".code-block .cm-activeLineGutter")).to_have_text(str(number))
    expect(page.locator(".code-block .cm-activeLine")).to_be_in_viewport()

    # Fits a phone: nothing scrolls sideways, every scrolling box is keyboard reachable.
    sql_panel.locator(".sql-repeats summary").first.click()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert axe_violations(page, ".snippet") == []
    assert page.console_errors == []
