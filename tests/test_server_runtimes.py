"""Runs of the server runtimes through the runner: each brings its own server.

What a server can and cannot do inside a sandbox is tested in tests/test_servers.py; these
tests drive runner.run() as the site does, warm pool and cancellation included.
"""

import asyncio
import contextlib
import os
import time

import pytest
import pytest_asyncio

from glossary import runner
from glossary.runner.servers import SERVERS
from tests.conftest import require
from tests.test_servers import CONNECT, gone

pytestmark = pytest.mark.asyncio

KINDS = sorted(SERVERS)
WRITE = {
    "postgresql": "connection.execute('CREATE TABLE mine (x int)')\nprint('wrote')\n",
    "redis": "connection.set('mine', 1)\nprint('wrote')\n",
    "mysql": "connection.cursor().execute('CREATE TABLE learn.mine (x int)')\nprint('wrote')\n",
}
SEE = {
    "postgresql": (
        "print(connection.execute(\"SELECT to_regclass('mine') IS NOT NULL\").fetchone()[0])\n"
    ),
    "redis": "print(connection.exists('mine') == 1)\n",
    "mysql": (
        "cursor = connection.cursor()\n"
        'cursor.execute("SELECT COUNT(*) FROM information_schema.tables"\n'
        "               \" WHERE table_name = 'mine'\")\n"
        "print(cursor.fetchone()[0] == 1)\n"
    ),
}


def usable(kind):
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    require(SERVERS[kind].available(), SERVERS[kind].missing() or "")


async def collect(code, runtime):
    return [event async for event in runner.run(code, runtime)]


def stdout(events):
    return "".join(event["text"] for event in events if event["type"] == "stdout")


@pytest_asyncio.fixture(autouse=True)
async def fresh_pool():
    yield
    await runner.shutdown_pool()


async def test_a_postgresql_run_connects_without_arguments_to_its_seeded_database():
    usable("postgresql")
    code = (
        "import psycopg, subprocess\n"
        "with psycopg.connect() as connection:\n"
        "    print(connection.execute('SELECT count(*) FROM customer').fetchone()[0])\n"
        "dump = subprocess.run(['pg_dump', '--schema-only'], capture_output=True, text=True)\n"
        "print('CREATE TABLE public.orders' in dump.stdout)\n"
    )

    events = await collect(code, "postgresql")

    assert stdout(events) == "3\nTrue\n", events
    assert events[-1]["reason"] == "ok"


@pytest.mark.parametrize("kind", KINDS)
async def test_each_server_runtime_reaches_its_own_server(kind):
    usable(kind)

    events = await collect(CONNECT[kind] + WRITE[kind] + SEE[kind], kind)

    assert stdout(events) == "wrote\nTrue\n", events


@pytest.mark.parametrize("kind", KINDS)
async def test_two_runs_never_see_each_others_data(kind):
    usable(kind)

    first = await collect(CONNECT[kind] + WRITE[kind], kind)
    second = await collect(CONNECT[kind] + SEE[kind], kind)

    assert stdout(first) == "wrote\n"
    assert stdout(second) == "False\n", second


@pytest.mark.parametrize("kind", KINDS)
async def test_a_server_run_reaches_none_of_the_hosts_servers(kind):
    usable(kind)
    code = (
        "import socket\n"
        "for path in ['/var/run/postgresql/.s.PGSQL.5432', '/run/mysqld/mysqld.sock',\n"
        "             '/run/redis/redis-server.sock']:\n"
        "    print(path, __import__('os').path.exists(path))\n"
        "for port in (5432, 3306, 6379):\n"
        "    try:\n"
        "        socket.create_connection(('127.0.0.1', port), timeout=1)\n"
        "        print(port, 'reached')\n"
        "    except OSError:\n"
        "        print(port, 'unreachable')\n"
    )

    events = await collect(code, kind)

    assert "True" not in stdout(events) and "reached" not in stdout(events), events
    assert stdout(events).count("unreachable") == 3


@pytest.mark.parametrize("kind", KINDS)
async def test_a_server_run_shows_its_own_limits_to_the_reader(kind, settings):
    usable(kind)

    events = await collect("print(1)", kind)

    assert events[0]["type"] == "start"
    assert events[0]["limits"]["memory_mb"] == settings.SNIPPET_RUNTIME_LIMITS[kind]["memory_mb"]


@pytest.mark.parametrize("kind", KINDS)
async def test_cancelling_a_server_run_leaves_no_process_behind(kind):
    usable(kind)
    require(os.geteuid() == 0, "runs share the user's uid when not run as root")
    code = CONNECT[kind] + "import os, time\nprint(os.getuid(), flush=True)\ntime.sleep(30)\n"

    async with contextlib.aclosing(runner.run(code, kind)) as run:
        async for event in run:
            if event["type"] == "stdout":
                uid = int(event["text"])
                break

    assert await asyncio.to_thread(gone, uid), "the run's server outlived its cancel"


async def test_a_warm_postgresql_run_finds_its_server_already_up(settings):
    usable("postgresql")
    settings.SNIPPET_WARM_POOL = 1
    await collect("print(1)", "postgresql")
    await collect("print(1)", "postgresql")  # from the second run on, the runtime is kept warm
    deadline = time.monotonic() + 20
    while not runner.warm_pids("postgresql") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    idle = set(runner.warm_pids("postgresql"))

    started, first_output = time.monotonic(), None
    code = "import psycopg\nprint(psycopg.connect().info.dbname)"
    async for event in runner.run(code, "postgresql"):
        if event["type"] == "stdout" and first_output is None:
            first_output = time.monotonic() - started
            assert event["text"].startswith("postgres")

    assert idle and not idle & set(runner.warm_pids("postgresql")), "the run started cold"
    assert first_output is not None and first_output < 1.0


async def test_a_runtime_whose_software_is_missing_says_so_before_anything_runs(settings, tmp_path):
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    settings.BASE_DIR = tmp_path  # no sandbox environment there

    events = await collect("print(1)", "redis")

    assert events == [
        {
            "type": "error",
            "message": "The sandbox's Python environment is missing on this server (run make).",
        }
    ]
