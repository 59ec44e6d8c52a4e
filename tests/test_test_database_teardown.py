"""No session on the PostgreSQL test database outlives the tests.

A connection still open when the run ends keeps the test database from being dropped
("database ... is being accessed by other users"). tests/conftest.py fails the run when
that happens, naming the thread and test that took the connection; these tests run small
suites of their own against PostgreSQL to check that guard, and that async views and
async ORM calls leave nothing open.
"""

import os
import subprocess
import sys

import pytest
from django.db import connection

from tests.live_server import ROOT

LEFT_OPEN = "session(s) left open on the test database"


@pytest.fixture(autouse=True)
def on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the test database's sessions: set DATABASE_URL to PostgreSQL")


def run_suite(directory, tests):
    """Run the test module tests with the project's fixtures, as a suite of its own."""
    (directory / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (directory / "test_it.py").write_text(tests)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", "pyproject.toml"]
        + ["--rootdir", str(ROOT), str(directory)],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_async_views_and_async_orm_calls_leave_no_session_open(tmp_path):
    result = run_suite(
        tmp_path,
        "import pytest\n"
        "from glossary.models import Topic\n\n"
        "@pytest.mark.asyncio\n"
        "@pytest.mark.django_db(transaction=True)\n"
        "async def test_async(async_client):\n"
        "    await Topic.objects.acreate(name='Async', slug='async')\n"
        "    assert (await async_client.get('/topics/async/')).status_code == 200\n",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert LEFT_OPEN not in result.stdout
    assert "is being accessed by other users" not in result.stdout + result.stderr


def test_a_thread_that_keeps_its_connection_fails_the_run_and_is_named(tmp_path):
    result = run_suite(
        tmp_path,
        "import threading\n"
        "import pytest\n"
        "from glossary.models import Topic\n\n"
        "queried, done = threading.Event(), threading.Event()\n\n"
        "def keep():\n"
        "    Topic.objects.count()\n"
        "    queried.set()\n"
        "    done.wait()\n\n"
        "@pytest.mark.django_db(transaction=True)\n"
        "def test_leak():\n"
        "    threading.Thread(target=keep, name='keeper', daemon=True).start()\n"
        "    assert queried.wait(30)\n",
    )

    assert result.returncode != 0
    assert f"1 {LEFT_OPEN}" in result.stdout
    assert "taken by thread keeper (alive) in test_it.py::test_leak" in result.stdout
    # The guard ends the session, so the database is still dropped.
    assert "is being accessed by other users" not in result.stdout + result.stderr
