"""A dependency that goes away while a reader has the page open: the site's database.

(Redis in workers mode: tests/test_run_workers.py; a server run's own server:
tests/test_server_runtimes.py.)
"""

import json
import uuid

import psycopg
import pytest
from psycopg import sql

from tests.conftest import require
from tests.live_server import daphne, manage, shell, site_env
from tests.test_socket_abuse import SITE_SNIPPETS, Site, next_event, run_until_end

ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def postgres_works():
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=5) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


@pytest.fixture
def site_on_postgresql(tmp_path):
    require(postgres_works(), f"PostgreSQL is not reachable at {ADMIN_URL}")
    name = f"outage_site_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    env = site_env(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{name}",
        RUNNER_MODE="local",
        REDIS_URL="",
        SNIPPET_RUNS_PER_MINUTE="1000",
    )
    try:
        migrated = manage("migrate", "-v0", env=env)
        assert migrated.returncode == 0, migrated.stderr
        shell(SITE_SNIPPETS.format(snippets={"hello": "print('hello')"}), env)
        with daphne(env, tmp_path / "daphne.log") as process:
            site = Site(process)
            site.database = name
            yield site
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


@pytest.mark.asyncio
async def test_the_site_database_going_away_is_an_error_the_reader_can_read(site_on_postgresql):
    site = site_on_postgresql
    async with site.connect("hello") as socket:
        first = await run_until_end(socket)
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        drop = sql.SQL("DROP DATABASE {} WITH (FORCE)")
        admin.execute(drop.format(sql.Identifier(site.database)))
    # A new socket: an open one may still hold the snippet it looked up ahead.
    async with site.connect("hello") as socket:
        await socket.send(json.dumps({"action": "run"}))
        reply = await next_event(socket, timeout=20)

    assert first[-1]["reason"] == "ok"
    assert reply["type"] == "error"
    assert "database" in reply["message"]
