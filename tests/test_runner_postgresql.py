"""The postgresql runtime against a real server: a database and role per run, through the
socket, dropped afterwards."""

import contextlib
import dataclasses
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from glossary import runner
from tests.conftest import require

ADMIN_URL = "postgres://postgres@/postgres?host=/var/run/postgresql"


def postgres_works():
    if not Path("/var/run/postgresql/.s.PGSQL.5432").exists():
        return False
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=5) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


@pytest.fixture(autouse=True)
def postgres(settings):
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    require(postgres_works(), "PostgreSQL is not reachable at /var/run/postgresql as postgres")
    settings.SNIPPET_POSTGRES_URL = ADMIN_URL


@pytest.fixture
def site_database():
    """A database of the site's, with a table the snippet roles were never granted."""
    name = f"runner_site_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(ADMIN_URL, dbname=name, autocommit=True) as site:
        site.execute("CREATE TABLE secrets (value text)")
        site.execute("INSERT INTO secrets VALUES ('hunter2')")
    yield name
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def leftovers(name):
    """Databases and roles still called name."""
    with psycopg.connect(ADMIN_URL) as admin:
        return admin.execute(
            "SELECT datname FROM pg_database WHERE datname = %(name)s"
            " UNION ALL SELECT rolname FROM pg_roles WHERE rolname = %(name)s",
            {"name": name},
        ).fetchall()


def limits():
    return dataclasses.replace(runner.Limits.from_settings(), wall_seconds=10, cpu_seconds=5)


async def collect(code):
    return [event async for event in runner.run(code, "postgresql", limits())]


def stdout(events):
    return "".join(event["text"] for event in events if event["type"] == "stdout")


@pytest.mark.asyncio
async def test_a_snippet_creates_inserts_and_selects_in_its_own_database():
    events = await collect(
        "import psycopg\n"
        "with psycopg.connect() as connection:\n"
        "    connection.execute('CREATE TABLE tag (name text)')\n"
        "    connection.execute(\"INSERT INTO tag VALUES ('orm'), ('sql')\")\n"
        "    for (name,) in connection.execute('SELECT name FROM tag ORDER BY name'):\n"
        "        print(name)\n"
        "    print(connection.execute('SELECT current_database()').fetchone()[0])\n"
    )

    start, exit_ = events[0], events[-1]
    assert start["type"] == "start"
    assert start["database"] == f"snippet_{start['run']}"
    assert exit_["reason"] == "ok", events
    assert stdout(events) == f"orm\nsql\n{start['database']}\n"


@pytest.mark.asyncio
async def test_the_database_and_role_are_gone_after_the_run():
    events = await collect("import psycopg\npsycopg.connect().execute('SELECT 1')\n")

    assert events[-1]["reason"] == "ok", events
    assert leftovers(events[0]["database"]) == []


@pytest.mark.asyncio
async def test_two_runs_do_not_share_data():
    first = await collect(
        "import psycopg\n"
        "with psycopg.connect() as connection:\n"
        "    connection.execute('CREATE TABLE kept (n int)')\n"
        "    connection.execute('INSERT INTO kept VALUES (1)')\n"
    )
    second = await collect(
        "import psycopg\n"
        "with psycopg.connect() as connection:\n"
        "    print(connection.execute(\"SELECT to_regclass('kept')\").fetchone()[0])\n"
    )

    assert first[-1]["reason"] == "ok", first
    assert first[0]["database"] != second[0]["database"]
    assert stdout(second) == "None\n"


@pytest.mark.asyncio
async def test_the_role_cannot_read_a_site_database(site_database):
    events = await collect(
        "import psycopg\n"
        "try:\n"
        f"    with psycopg.connect(dbname={site_database!r}) as site:\n"
        "        print(site.execute('SELECT value FROM secrets').fetchall())\n"
        "except psycopg.Error as error:\n"
        "    print(type(error).__name__)\n"
    )

    # With trust in pg_hba.conf the role may connect (PUBLIC has CONNECT), but it has no
    # privileges on the site's tables; a production pg_hba.conf refuses the connection.
    assert "hunter2" not in stdout(events), "a snippet role read another database's table"
    assert stdout(events).strip() in {"InsufficientPrivilege", "OperationalError"}, events


@pytest.mark.asyncio
async def test_closing_the_run_mid_way_still_drops_its_database():
    run = runner.run(
        "import psycopg, time\n"
        "connection = psycopg.connect()\n"
        "connection.execute('CREATE TABLE t (n int)')\n"
        "print('connected', flush=True)\n"
        "time.sleep(30)\n",
        "postgresql",
        limits(),
    )
    start = await anext(run)
    async for event in run:
        if event["type"] == "stdout" and "connected" in event["text"]:
            break
    else:
        pytest.fail("the snippet never connected")

    assert leftovers(start["database"]) != []
    await run.aclose()

    assert leftovers(start["database"]) == []


@pytest.mark.asyncio
async def test_without_the_servers_socket_it_says_so(settings, tmp_path):
    settings.SNIPPET_POSTGRES_URL = f"postgres://postgres@/postgres?host={tmp_path}"

    events = await collect("print('ran')")

    assert [event["type"] for event in events] == ["error"]
    assert f"{tmp_path}/.s.PGSQL.5432 does not exist" in events[0]["message"]


@pytest.mark.asyncio
async def test_a_database_that_goes_away_mid_run_ends_the_run_with_a_readable_error():
    code = (
        "import time, psycopg\n"
        "with psycopg.connect(autocommit=True) as connection:\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(3)\n"
        "    connection.execute('SELECT 1')\n"
    )
    events = []
    async with contextlib.aclosing(runner.run(code, "postgresql", limits())) as run:
        async for event in run:
            events.append(event)
            if event["type"] == "stdout" and "ready" in event["text"]:
                database = events[0]["database"]
                with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                    admin.execute(
                        sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database))
                    )

    assert events[-1]["type"] == "exit"
    assert events[-1]["reason"] == "error"
    assert events[-1]["wall_ms"] < 5000
    stderr = "".join(event["text"] for event in events if event["type"] == "stderr")
    assert "terminating connection due to administrator command" in stderr
    assert leftovers(database) == []
