"""A reader in a real browser runs snippets served by a real Daphne."""

import re

import pytest

from glossary import runner
from tests.conftest import require
from tests.live_server import daphne, seeded_database, shell, site_env

pytestmark = pytest.mark.browser
LONG_SNIPPET = """\
from glossary.models import Snippet, Topic
topic = Topic.objects.get(slug="transactions")
Snippet.objects.create(
    topic=topic, slug="slow-counter", title="Slow counter", runtime="python",
    code="import time\\nfor i in range(100):\\n    print(f'tick {i}')\\n    time.sleep(0.3)\\n",
)
"""


@pytest.fixture(scope="module")
def live_site(tmp_path_factory):
    """Daphne serving a seeded database of its own, on a free port."""
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    directory = tmp_path_factory.mktemp("site")
    env = site_env(DATABASE_URL=seeded_database(directory))
    shell(LONG_SNIPPET, env)
    with daphne(env, directory / "daphne.log") as server:
        yield server.base_url


def test_a_reader_runs_a_snippet_and_sees_its_output_stream_in(live_site, page):
    from playwright.sync_api import expect

    page.goto(f"{live_site}/snippets/slow-counter/")
    panel = page.locator(".run-panel")
    expect(page.get_by_text("10 s wall time, 5 s CPU")).to_be_visible()
    panel.get_by_role("button", name="Run").click()

    output = panel.locator(".run-output")
    expect(output).to_contain_text("tick 1")
    # Streamed: the first lines are on screen while the program is still running.
    expect(panel.locator(".run-status")).to_have_text("Running…")
    assert "tick 20" not in output.inner_text()
    assert page.console_errors == []


def test_a_reader_stops_a_long_snippet(live_site, page):
    from playwright.sync_api import expect

    page.goto(f"{live_site}/snippets/slow-counter/")
    panel = page.locator(".run-panel")
    panel.get_by_role("button", name="Run").click()
    expect(panel.locator(".run-output")).to_contain_text("tick 2")

    panel.get_by_role("button", name="Stop").click()

    expect(panel.locator(".run-status")).to_contain_text("Stopped in")
    expect(panel.get_by_role("button", name="Run")).to_be_enabled()
    assert "tick 30" not in panel.locator(".run-output").inner_text()


def test_a_seed_snippet_runs_to_the_end_on_its_topic_page(live_site, page):
    from playwright.sync_api import expect

    page.goto(f"{live_site}/topics/sqlite/")
    panel = page.locator("[data-snippet=sqlite3-basics] .run-panel")
    panel.get_by_role("button", name="Run").click()

    expect(panel.locator(".run-status")).to_contain_text("Finished in", timeout=15_000)
    assert panel.locator(".run-output").inner_text().strip()
    assert page.console_errors == []


def test_an_orm_example_streams_its_sql_into_a_highlighted_panel(live_site, page):
    from playwright.sync_api import expect

    page.goto(f"{live_site}/snippets/orm-n-plus-one/")
    panel = page.locator(".run-panel")
    panel.get_by_role("button", name="Run").click()
    expect(panel.locator(".run-status")).to_contain_text("Finished in", timeout=20_000)

    sql_panel = panel.locator(".sql-panel")
    expect(sql_panel).to_be_visible()
    sql_panel.locator("summary").first.click()
    first_query = sql_panel.locator(".sql-list li").first
    expect(first_query.locator(".sql-meta")).to_contain_text("line ")
    expect(first_query.locator(".sql-text .k").first).to_have_text("SELECT")
    assert sql_panel.locator(".sql-list li").count() > 10
    # The parameters are written into the SQL: "topic_id" = 40, not "topic_id" = %s.
    assert re.search(r'"topic_id" = \d+', sql_panel.locator(".sql-text").nth(1).inner_text())
    assert page.console_errors == []
