"""Attacks on a run's own database server, sent as a reader's own code through real
Daphne's WebSockets.

The database-server cases of tests/test_servers.py and tests/test_server_runtimes.py, each
sent twice: as an edit of a server snippet on /ws/snippets/<slug>/ and on the playground's
/ws/play/<choice>/; the SQL ones as SQL too. Meanwhile the server must stay responsive to
other readers.
"""

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from websockets.sync.client import connect

from glossary import runner
from tests.conftest import require
from tests.live_server import daphne, migrated_database, shell, site_env
from tests.test_servers import CONNECT, REACH, files_of, gone, usable

MEMORY_MB = 384  # a reader's run, server included (PostgreSQL's own limit is 512)
CPU_SECONDS = 2
MAKE_SNIPPETS = """\
from glossary.models import Snippet, Topic
topic = Topic.objects.create(name="Servers", slug="servers")
for slug, runtime, language in [
    ("pg", "postgresql", "python"), ("pg-sql", "postgresql", "sql"),
    ("redis", "redis", "python"), ("maria", "mysql", "python"), ("maria-sql", "mysql", "sql"),
]:
    Snippet.objects.create(
        topic=topic, slug=slug, title=slug, runtime=runtime, language=language, code="SELECT 1"
    )
"""
SNIPPET_OF = {
    ("postgresql", "python"): "pg",
    ("postgresql", "sql"): "pg-sql",
    ("redis", "python"): "redis",
    ("mysql", "python"): "maria",
    ("mysql", "sql"): "maria-sql",
}
KINDS = ["postgresql", "redis", "mysql"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Daphne whose readers' runs have a stricter memory and CPU limit than curated ones."""
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    directory = tmp_path_factory.mktemp("server-abuse")
    env = site_env(
        REDIS_URL=None,
        DATABASE_URL=migrated_database(directory),
        SECRET_KEY="server-abuse-secret-" + uuid.uuid4().hex,
        SNIPPET_RUNS_PER_MINUTE="1000",
        SNIPPET_RUN_SLOTS="4",
        SNIPPET_READER_MEMORY_MB=str(MEMORY_MB),
        SNIPPET_READER_CPU_SECONDS=str(CPU_SECONDS),
    )
    shell(MAKE_SNIPPETS, env)
    with daphne(env, directory / "daphne.log") as process:
        yield {"url": process.base_url, "daphne": process}


def socket_path(route, runtime, language="python"):
    if route == "snippet":
        return f"/ws/snippets/{SNIPPET_OF[runtime, language]}/"
    return f"/ws/play/{runtime}/" if language == "python" else f"/ws/play/{runtime}-{language}/"


@contextlib.contextmanager
def open_run(site, path, code, client="127.0.0.1"):
    """A socket on which the run of code as a reader's own has started."""
    url = site["url"].replace("http", "ws") + path
    with connect(url, origin=site["url"], max_size=None, source_address=(client, 0)) as socket:
        socket.send(json.dumps({"action": "run", "code": code}))
        yield socket


def events_until(socket, done, timeout=60):
    events = []
    while not events or not done(events[-1]):
        events.append(json.loads(socket.recv(timeout=timeout)))
    return events


def ended(event):
    return event["type"] in ("exit", "error")


def first_line(socket):
    """The events of a run up to the end of its first line of output (or its end)."""
    events = []
    while not ended(event := json.loads(socket.recv(timeout=60))):
        events.append(event)
        if "\n" in text(events):
            return events
    return [*events, event]


def run(site, route, code, runtime, language="python", client="127.0.0.1"):
    """Every event of one run of code as a reader's own, up to its end."""
    with open_run(site, socket_path(route, runtime, language), code, client) as socket:
        return events_until(socket, ended)


def text(events, stream="stdout"):
    return "".join(event["text"] for event in events if event["type"] == stream)


def tables(events):
    return [event["rows"] for event in events if event["type"] == "table"]


def ending(events):
    assert events[-1]["type"] == "exit", events
    return events[-1]


def assert_still_serving(site):
    assert site["daphne"].poll() is None
    with urllib.request.urlopen(site["url"] + "/about/", timeout=5) as response:
        assert response.status == 200
    events = run(site, "playground", "print(1)", "python", client="127.0.0.2")
    assert text(events) == "1\n"


ROUTES = pytest.mark.parametrize("route", ["snippet", "playground"])
pytestmark = [ROUTES, pytest.mark.timeout(240)]


# Host programs, files and servers -------------------------------------------------------


def escape_attempt(marker, language):
    """Code that writes three files through PostgreSQL's server-side programs and files,
    then lists what it wrote in the run's /tmp."""
    name = Path(marker).name
    if language == "sql":
        return (
            f"COPY (SELECT 1) TO PROGRAM 'cat > {marker}-program';\n"
            f"COPY (SELECT 1) TO '{marker}-copy';\n"
            "SELECT lo_from_bytea(4242, 'x');\n"
            f"SELECT lo_export(4242, '{marker}-lo');\n"
            f"SELECT name FROM pg_ls_dir('/tmp') AS name WHERE name LIKE '{name}%' ORDER BY 1;\n"
        )
    return CONNECT["postgresql"] + (
        "import os\n"
        f"connection.execute(\"COPY (SELECT 1) TO PROGRAM 'cat > {marker}-program'\")\n"
        f"connection.execute(\"COPY (SELECT 1) TO '{marker}-copy'\")\n"
        "oid = connection.execute(\"SELECT lo_from_bytea(0, 'x')\").fetchone()[0]\n"
        f"connection.execute(\"SELECT lo_export(%s, '{marker}-lo')\", [oid])\n"
        f"print(sorted(n for n in os.listdir('/tmp') if n.startswith('{name}')))\n"
    )


@pytest.mark.parametrize("language", ["python", "sql"])
def test_copy_to_program_and_lo_export_act_inside_the_sandbox_only(site, route, language):
    usable("postgresql")
    marker = f"/tmp/reader-escape-{uuid.uuid4().hex}"
    name = Path(marker).name

    events = run(site, route, escape_attempt(marker, language), "postgresql", language)

    assert ending(events)["reason"] == "ok", events
    written = [f"{name}-copy", f"{name}-lo", f"{name}-program"]
    if language == "sql":
        assert tables(events)[-1] == [[file] for file in written]
    else:
        assert text(events) == f"{written}\n"
    assert not list(Path("/tmp").glob(f"{name}*"))


@pytest.mark.parametrize("kind", KINDS)
def test_no_server_of_the_host_is_reachable(site, route, kind):
    usable(kind)
    on_host = subprocess.run([sys.executable, "-c", REACH], capture_output=True, text=True)
    require(on_host.stdout, "no database server runs on this host to try to reach")

    events = run(site, route, REACH + "print('done')", kind)

    assert text(events) == "done\n", events


def test_the_servers_own_programs_reach_no_server_of_the_host(site, route):
    usable("postgresql")
    code = (
        "COPY (SELECT 1) TO PROGRAM"
        " 'pg_isready -h 127.0.0.1 -p 5432 -t 2 > /tmp/reach; echo $? >> /tmp/reach';\n"
        "SELECT pg_read_file('/tmp/reach') AS reach;\n"
    )

    events = run(site, route, code, "postgresql", "sql")

    [[[reach]]] = tables(events)
    assert reach.strip().endswith("2"), reach  # pg_isready: no response


# Memory and CPU through the server ------------------------------------------------------

OUT_OF_MEMORY = {
    "python": CONNECT["postgresql"]
    + (
        "connection.execute(\"SET work_mem = '2GB'\")\ntry:\n"
        "    connection.execute(\"SELECT array_agg(repeat('x', 100))"
        ' FROM generate_series(1, 20000000)")\n'
        "except Exception as error:\n    print(type(error).__name__, error)\n"
    ),
    "sql": (
        "SET work_mem = '2GB';\n"
        "SELECT array_agg(repeat('x', 100)) FROM generate_series(1, 20000000);\n"
    ),
}


@pytest.mark.parametrize("language", ["python", "sql"])
def test_a_backend_gets_no_more_memory_than_the_readers_run(site, route, language):
    usable("postgresql")

    events = run(site, route, OUT_OF_MEMORY[language], "postgresql", language)

    assert events[0]["limits"]["memory_mb"] == MEMORY_MB
    assert "out of memory" in text(events) + text(events, "stderr"), events
    assert_still_serving(site)


def test_redis_refuses_data_beyond_the_readers_memory_limit(site, route):
    usable("redis")
    code = CONNECT["redis"] + (
        "try:\n    for n in range(1000):\n        connection.set(n, bytes(1024 * 1024))\n"
        "except redis.ResponseError as error:\n    print(n, error)\n"
    )

    stored, _, message = text(run(site, route, code, "redis")).partition(" ")

    assert int(stored) < MEMORY_MB
    assert message == "command not allowed when used memory > 'maxmemory'.\n"
    assert_still_serving(site)


def test_a_backend_in_an_endless_loop_is_held_to_the_readers_cpu_limit(site, route):
    usable("postgresql")
    started = time.monotonic()

    events = run(site, route, "DO $$ BEGIN LOOP END LOOP; END $$;", "postgresql", "sql")

    assert events[0]["limits"]["cpu_seconds"] == CPU_SECONDS
    # The backend is killed by SIGXCPU, or on a busy machine the wall clock ends the run.
    assert "Statement 1 (line 1) failed" in text(events, "stderr") or (
        ending(events)["reason"] == "timeout"
    ), events
    assert time.monotonic() - started < events[0]["limits"]["wall_seconds"] + 10
    assert_still_serving(site)


# Nothing left behind, nothing shared -----------------------------------------------------


def uid_of(events):
    return int(text(events).split()[0])


def assert_nothing_left(uid):
    require(uid != os.geteuid(), "runs share the user's uid when not run as root")
    assert gone(uid), "a process of the run outlived it"
    assert files_of(uid) == []


@pytest.mark.parametrize("kind", KINDS)
def test_nothing_is_left_after_a_run_ends(site, route, kind):
    usable(kind)

    events = run(site, route, CONNECT[kind] + "import os\nprint(os.getuid())", kind)

    assert ending(events)["reason"] == "ok", events
    assert_nothing_left(uid_of(events))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("how", ["cancel", "disconnect"])
def test_nothing_is_left_after_a_run_is_stopped(site, route, kind, how):
    usable(kind)
    code = CONNECT[kind] + "import os, time\nprint(os.getuid(), flush=True)\ntime.sleep(60)"

    with open_run(site, socket_path(route, kind), code) as socket:
        events = first_line(socket)
        if how == "cancel":
            socket.send(json.dumps({"action": "cancel"}))
            assert events_until(socket, ended)[-1]["reason"] == "cancelled"

    assert_nothing_left(uid_of(events))
    assert_still_serving(site)


def test_a_run_that_kills_its_own_server_ends_cleanly(site, route):
    usable("postgresql")
    code = (
        "import os, signal, time\nprint(os.getuid(), flush=True)\n"
        "with open('/server/data/postmaster.pid') as pid_file:\n"
        "    os.kill(int(pid_file.readline()), signal.SIGKILL)\n"
        "time.sleep(1)\n"
    )

    events = run(site, route, code, "postgresql")

    assert ending(events)["reason"] == "ok", events
    assert_nothing_left(uid_of(events))


LEAVE = {
    "postgresql": "connection.execute('CREATE DATABASE leftover')\n",
    "redis": "connection.set('leftover', 1)\n",
    "mysql": "connection.cursor().execute('CREATE DATABASE leftover')\n",
}
FIND = {
    "postgresql": (
        'print(connection.execute("SELECT count(*) FROM pg_database'
        " WHERE datname = 'leftover'\").fetchone()[0])\n"
    ),
    "redis": "print(connection.exists('leftover'))\n",
    "mysql": (
        "cursor = connection.cursor()\nprint(cursor.execute(\"SHOW DATABASES LIKE 'leftover'\"))\n"
    ),
}


@pytest.mark.parametrize("kind", KINDS)
def test_databases_a_run_creates_are_gone_for_the_next_run(site, route, kind):
    usable(kind)

    first = run(site, route, CONNECT[kind] + LEAVE[kind] + FIND[kind], kind)
    second = run(site, route, CONNECT[kind] + FIND[kind], kind)

    assert text(first) == "1\n", first
    assert text(second) == "0\n", second


@pytest.mark.parametrize("kind", KINDS)
def test_a_run_never_sees_another_running_runs_data(site, route, kind):
    usable(kind)
    write = CONNECT[kind] + LEAVE[kind] + "print('written', flush=True)\nimport time\n"
    write += "time.sleep(30)"

    with open_run(site, socket_path(route, kind), write) as first:
        events = first_line(first)
        assert text(events) == "written\n", events
        second = run(site, route, CONNECT[kind] + FIND[kind], kind, client="127.0.0.2")

    assert text(second) == "0\n", second


def test_the_site_answers_other_readers_while_server_bombs_run(site, route):
    for kind in KINDS:
        usable(kind)
    bombs = [
        (OUT_OF_MEMORY["sql"], "postgresql", "sql"),
        ("DO $$ BEGIN LOOP END LOOP; END $$;", "postgresql", "sql"),
        (CONNECT["redis"] + "while True:\n    connection.lpush('x', bytes(1 << 20))", "redis"),
        ("SELECT BENCHMARK(10000000000, MD5('x'));", "mysql", "sql"),
    ]
    threads = [threading.Thread(target=run, args=(site, route, *bomb)) for bomb in bombs]
    for thread in threads:
        thread.start()
    time.sleep(1)

    started = time.monotonic()
    with urllib.request.urlopen(site["url"] + "/snippets/pg/", timeout=5) as response:
        assert response.status == 200
    page_seconds = time.monotonic() - started
    started = time.monotonic()
    # Another reader: the bombs' client has its share of the slots and queue filled.
    events = run(site, route, "SELECT 42 AS answer;", "postgresql", "sql", client="127.0.0.2")
    run_seconds = time.monotonic() - started
    for thread in threads:
        thread.join()

    assert tables(events) == [[[42]]], events
    assert page_seconds < 2
    assert run_seconds < events[0]["limits"]["wall_seconds"] + 5  # one bomb's wall time at most
    assert site["daphne"].poll() is None
