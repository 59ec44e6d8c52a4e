"""When Redis or the database is down, operators get one clear line, readers a page."""

import asyncio
import json
import subprocess
import time
import urllib.error
import urllib.request

import psycopg
import pytest
import websockets
from django.urls import reverse

from glossary import runner
from tests.conftest import require
from tests.live_server import ROOT, closed_port, daphne, manage, seeded_database, site_env

POSTGRES = "postgres://postgres@127.0.0.1:5432"


def postgres_is_up():
    try:
        psycopg.connect(f"{POSTGRES}/postgres", connect_timeout=2).close()
        return True
    except psycopg.Error:
        return False


def get(url, timeout=30):
    """(status, body) of a GET, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    return seeded_database(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def site_without_redis(seeded, tmp_path_factory):
    """Daphne told to use a Redis that refuses connections."""
    log = tmp_path_factory.mktemp("logs") / "daphne.log"
    env = site_env(
        DATABASE_URL=seeded,
        REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0",
        SNIPPET_WARM_POOL="0",
    )
    with daphne(env, log) as server:
        server.log = log
        yield server


READER_PAGES = ["/", "/letters/P/", "/topics/postgresql/", "/snippets/sqlite3-basics/"]


def test_reader_pages_render_while_redis_is_down(site_without_redis):
    for _ in range(3):
        for path in READER_PAGES:
            status, body = get(site_without_redis.base_url + path)
            assert status == 200, (path, body[:500])

    log = site_without_redis.log.read_text()
    assert log.count("The page cache (Redis) is unavailable") == 1, log


def test_a_local_run_works_while_redis_is_down(site_without_redis):
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")

    async def run():
        url = site_without_redis.base_url.replace("http", "ws") + "/ws/snippets/sqlite3-basics/"
        origin = site_without_redis.base_url
        async with websockets.connect(url, origin=origin) as socket:
            await socket.send(json.dumps({"action": "run"}))
            events = []
            while not events or events[-1]["type"] not in ("exit", "error"):
                events.append(json.loads(await asyncio.wait_for(socket.recv(), 30)))
            return events

    events = asyncio.run(run())

    assert events[-1]["type"] == "exit", events
    assert events[-1]["reason"] == "ok", events


def test_the_admin_signs_in_while_redis_is_down(client, admin_user, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        }
    }
    response = client.post(
        reverse("admin:login"),
        {"username": "admin", "password": "password", "next": reverse("admin:index")},
        follow=True,
    )

    assert response.status_code == 200
    assert response.context["user"].is_authenticated
    assert client.get(reverse("admin:glossary_topic_changelist")).status_code == 200


def unreachable_database():
    return f"postgres://postgres@127.0.0.1:{closed_port()}/glossary"


def seconds_to_start():
    """How long a management command takes to start on this (possibly busy) machine."""
    started = time.monotonic()
    manage("check", env=site_env(REDIS_URL=None))
    return time.monotonic() - started


# The pool's 3 s timeout and a second of slack, on top of Python's start-up: far from the
# 30 s the pool would otherwise wait.
DATABASE_WAIT = 4


def test_migrate_says_in_one_line_that_the_database_refuses_connections():
    url = unreachable_database()
    allowed = seconds_to_start() + DATABASE_WAIT
    started = time.monotonic()

    result = manage("migrate", env=site_env(DATABASE_URL=url))

    assert time.monotonic() - started < allowed
    assert result.returncode != 0
    port = url.split(":")[-1].split("/")[0]
    assert result.stderr == (
        f"Cannot use the database 'glossary' on 127.0.0.1:{port}: Connection refused\n"
    )


def test_migrate_says_in_one_line_that_the_database_does_not_exist():
    require(postgres_is_up(), f"PostgreSQL is not reachable at {POSTGRES}")
    allowed = seconds_to_start() + DATABASE_WAIT
    started = time.monotonic()

    result = manage("migrate", env=site_env(DATABASE_URL=f"{POSTGRES}/no_such_glossary"))

    assert time.monotonic() - started < allowed
    assert result.returncode != 0
    assert result.stderr == (
        "Cannot use the database 'no_such_glossary' on 127.0.0.1:5432: "
        'database "no_such_glossary" does not exist\n'
    )


def test_make_run_stops_with_the_one_line_reason():
    allowed = seconds_to_start() + DATABASE_WAIT + 2  # and make's own checks
    started = time.monotonic()

    result = subprocess.run(
        ["make", "run"],
        cwd=ROOT,
        env=site_env(DATABASE_URL=unreachable_database()),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert time.monotonic() - started < allowed
    assert result.returncode != 0
    assert "Connection refused" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_pages_answer_503_within_seconds_while_the_database_is_down(tmp_path):
    log = tmp_path / "daphne.log"
    with daphne(site_env(DATABASE_URL=unreachable_database(), REDIS_URL=None), log) as server:
        started = time.monotonic()
        status, body = get(server.base_url + "/")
        first = time.monotonic() - started
        others = [get(server.base_url + path) for path in READER_PAGES]
        rest = time.monotonic() - started - first

    assert status == 503
    assert "The glossary is briefly unavailable" in body
    assert first < 5
    assert [status for status, _ in others] == [503] * len(READER_PAGES)
    assert rest < 5
    assert log.read_text().count("The database is unavailable") == 1
