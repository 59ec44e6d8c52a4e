"""Hostile code sent as a reader's own code, through real Daphne's WebSockets.

The runner's abuse cases (tests/test_runner_limits.py), each run twice: as an edit of a
snippet on /ws/snippets/<slug>/ and on the playground's /ws/play/<runtime>/. Meanwhile the
server must stay responsive to other readers.
"""

import json
import threading
import time
import urllib.request
import uuid

import pytest
from websockets.sync.client import connect

from glossary import runner
from tests.conftest import require
from tests.live_server import ROOT, daphne, seeded_database, shell, site_env
from tests.processes import exec_with_marker, until_gone

WALL = 3
PROCESSES = 16
OPEN_FILES = 32
OUTPUT_KB = 4
FILE_SIZE_KB = 256
MAKE_SNIPPETS = """\
from glossary.models import Snippet, Topic
topic = Topic.objects.get(slug="transactions")
Snippet.objects.create(
    topic=topic, slug="hello", title="Hello", runtime="python", code="print('hello')"
)
Snippet.objects.create(
    topic=topic, slug="orm", title="ORM", runtime="django",
    code="from glossary.models import Topic\\nprint(Topic.objects.count())",
)
"""
SNIPPET_OF = {"python": "hello", "django": "orm"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Daphne with strict reader limits (the curated ones stay as they are)."""
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    directory = tmp_path_factory.mktemp("abuse")
    database = seeded_database(directory)
    env = site_env(
        REDIS_URL=None,
        DATABASE_URL=database,
        SECRET_KEY="abuse-test-secret-" + uuid.uuid4().hex,
        SNIPPET_RUNS_PER_MINUTE="1000",
        SNIPPET_RUN_SLOTS="4",
        SNIPPET_READER_WALL_SECONDS=str(WALL),
        SNIPPET_READER_CPU_SECONDS="1",
        SNIPPET_READER_PROCESSES=str(PROCESSES),
        SNIPPET_READER_OPEN_FILES=str(OPEN_FILES),
        SNIPPET_READER_OUTPUT_KB=str(OUTPUT_KB),
        SNIPPET_READER_FILE_SIZE_KB=str(FILE_SIZE_KB),
    )
    shell(MAKE_SNIPPETS, env)
    with daphne(env, directory / "daphne.log") as process:
        yield {
            "url": process.base_url,
            "daphne": process,
            "database": database.removeprefix("sqlite:///"),
        }


def socket_path(route, runtime):
    if route == "snippet":
        return f"/ws/snippets/{SNIPPET_OF[runtime]}/"
    return f"/ws/play/{runtime}/"


def run(site, route, code, runtime="python", timeout=30, client="127.0.0.1"):
    """Every event of one run of code as a reader's own, up to its end. client: the
    address the reader connects from (each address has its fair share of the slots)."""
    url = site["url"].replace("http", "ws") + socket_path(route, runtime)
    events = []
    with connect(url, origin=site["url"], max_size=None, source_address=(client, 0)) as socket:
        socket.send(json.dumps({"action": "run", "code": code}))
        while not events or events[-1]["type"] not in ("exit", "error"):
            events.append(json.loads(socket.recv(timeout=timeout)))
    return events


def text(events, stream="stdout"):
    return "".join(event["text"] for event in events if event["type"] == stream)


def ending(events):
    assert events[-1]["type"] == "exit", events
    return events[-1]


def assert_still_serving(site):
    assert site["daphne"].poll() is None
    with urllib.request.urlopen(site["url"] + "/about/", timeout=5) as response:
        assert response.status == 200
    assert text(run(site, "playground", "print(1)")) == "1\n"


ROUTES = pytest.mark.parametrize("route", ["snippet", "playground"])
pytestmark = [ROUTES, pytest.mark.timeout(180)]


def test_edited_code_runs_under_the_reader_limits(site, route):
    events = run(site, route, "print('mine')")

    assert events[0]["limits"]["wall_seconds"] == WALL
    assert events[0]["limits"]["processes"] == PROCESSES
    assert text(events) == "mine\n"


# On a busy machine a loop may get less than a second of CPU in the wall time: then the
# wall clock stops it. Either way it ends within the limits.
STOPPED = ("cpu", "timeout")


def test_an_endless_loop_is_stopped(site, route):
    exit_event = ending(run(site, route, "while True:\n    pass"))

    assert exit_event["reason"] in STOPPED
    assert exit_event["wall_ms"] < (WALL + 1) * 1000


def test_a_loop_ignoring_sigxcpu_is_still_stopped(site, route):
    code = "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass"

    exit_event = ending(run(site, route, code))

    assert exit_event["reason"] in STOPPED
    assert exit_event["wall_ms"] < (WALL + 1) * 1000


def test_sleeping_forever_is_stopped_by_the_wall_clock(site, route):
    exit_event = ending(run(site, route, "import time\ntime.sleep(3600)"))

    assert exit_event["reason"] == "timeout"
    assert exit_event["wall_ms"] < (WALL + 1) * 1000


def test_a_memory_bomb_ends_with_memory(site, route):
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))"

    assert ending(run(site, route, code))["reason"] == "memory"


def test_a_fork_bomb_is_held_to_the_process_limit_and_dies_with_the_run(site, route):
    marker = f"forkbomb-{uuid.uuid4().hex}"
    bomb = (
        "import os, time\nchildren = 0\nwhile True:\n    try:\n"
        "        if os.fork() == 0:\n            time.sleep(60)\n            os._exit(0)\n"
        "        children += 1\n    except OSError:\n        break\n"
        "print(children)\ntime.sleep(60)\n"
    )

    events = run(site, route, exec_with_marker(marker, bomb))

    assert int(text(events)) < PROCESSES
    assert ending(events)["reason"] == "timeout"
    assert until_gone(marker) == []


def test_a_thread_bomb_is_held_to_the_process_limit(site, route):
    code = (
        "import threading, time\nthreads = 0\ntry:\n    while True:\n"
        "        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
        "        threads += 1\nexcept RuntimeError:\n    print(threads)\n"
    )

    events = run(site, route, code)

    assert int(text(events)) < PROCESSES
    assert ending(events)["reason"] in ("ok", "error")


def test_an_output_flood_is_cut_at_the_output_limit(site, route):
    exit_event = ending(events := run(site, route, "while True:\n    print('x' * 99)"))

    assert exit_event["reason"] == "output_limit" and exit_event["truncated"]
    assert len(text(events)) == OUTPUT_KB * 1024


def test_the_environment_and_proc_hold_nothing_of_the_server(site, route):
    code = (
        "import os\nprint(sorted(os.environ))\n"
        "print(sorted(p for p in os.listdir('/proc') if p.isdigit()))\n"
        "try:\n    print(open('/proc/1/environ', 'rb').read())\n"
        "except OSError as error:\n    print('unreadable', error.errno)\n"
    )

    output = text(run(site, route, code))

    assert "SECRET_KEY" not in output and "abuse-test-secret" not in output
    assert "DATABASE_URL" not in output and str(site["database"]) not in output
    pids = json.loads(output.splitlines()[1].replace("'", '"'))
    assert len(pids) <= 3  # the sandbox's init, the run, maybe its wrapper: no server


def test_the_network_is_unreachable_on_loopback_and_outside(site, route):
    port = site["url"].rsplit(":", 1)[1]
    code = (
        "import socket\n"
        f"for address in [('127.0.0.1', {port}), ('127.0.0.1', 5432), ('1.1.1.1', 80)]:\n"
        "    try:\n        socket.create_connection(address, timeout=1).close()\n"
        "        print('connected', address)\n"
        "    except OSError as error:\n        print('failed')\n"
    )

    assert text(run(site, route, code)) == "failed\n" * 3


@pytest.mark.parametrize("runtime", ["python", "django"])
def test_site_files_and_the_site_database_cannot_be_read(site, route, runtime):
    # Django runs see the project's code (config, glossary), which is public anyway.
    paths = [str(site["database"]), str(ROOT / "db.sqlite3"), str(ROOT / ".secret_key")]
    paths += [str(ROOT / ".git" / "config"), str(ROOT / "manage.py"), "/etc/shadow"]
    code = (
        f"for path in {paths!r}:\n    try:\n        open(path, 'rb').read(1)\n"
        "        print('read', path)\n    except OSError:\n        print('refused')\n"
    )

    assert text(run(site, route, code, runtime)) == "refused\n" * len(paths)


@pytest.mark.parametrize("runtime", ["python", "django"])
def test_writes_outside_the_work_dir_fail(site, route, runtime):
    targets = ["/etc/x", "/usr/x", "/x", str(ROOT / "x"), str(ROOT / "glossary" / "x")]
    code = (
        f"for path in ['here.txt'] + {targets!r}:\n    try:\n"
        "        open(path, 'w').write('x')\n        print('wrote', path)\n"
        "    except OSError:\n        print('refused')\n"
    )

    events = run(site, route, code, runtime)

    assert text(events) == "wrote here.txt\n" + "refused\n" * len(targets), events
    assert not (ROOT / "x").exists()


def test_nothing_persists_between_runs(site, route):
    run(site, route, "open('kept.txt', 'w').write('x')\nopen('/tmp/kept.txt', 'w').write('x')")

    code = "import os\nprint(os.path.exists('kept.txt'), os.path.exists('/tmp/kept.txt'))"
    assert text(run(site, route, code)) == "False False\n"


def test_a_double_forked_daemon_dies_with_the_run(site, route):
    marker = f"daemon-{uuid.uuid4().hex}"
    daemon = (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        print('daemon')\n        time.sleep(60)\n    os._exit(0)\ntime.sleep(0.3)\n"
    )

    events = run(site, route, exec_with_marker(marker, daemon))

    assert "daemon" in text(events)
    assert until_gone(marker) == []


def test_killing_other_processes_reaches_nothing_outside(site, route):
    pid = site["daphne"].pid
    code = (
        "import os, signal\n"
        f"for target in (-1, {pid}, 1, os.getppid()):\n"
        "    try:\n        os.kill(target, signal.SIGKILL)\n"
        "    except OSError as error:\n        print('refused', error.errno)\n"
    )

    run(site, route, code)

    assert_still_serving(site)


def test_file_descriptor_exhaustion_stops_at_the_open_files_limit(site, route):
    code = (
        "files = []\ntry:\n    while True:\n        files.append(open('/dev/null'))\n"
        "except OSError as error:\n    print(len(files), error.strerror)\n"
    )

    count, reason = text(run(site, route, code)).split(" ", 1)

    assert int(count) < OPEN_FILES
    assert reason.strip() == "Too many open files"


def test_filling_the_disk_is_refused(site, route):
    code = (
        "written = 0\nn = 0\ntry:\n    while True:\n"
        "        with open(f'fill{n}.bin', 'wb') as f:\n"
        "            f.write(b'x' * (128 * 1024))\n"
        "        written += 128\n        n += 1\n"
        "except OSError as error:\n    print(written, error.strerror)\n"
    )

    events = run(site, route, code)

    written, reason = text(events).split(" ", 1)
    assert int(written) <= 64 * 1024, reason  # bounded by the work dir's size in KiB
    assert reason.strip() in ("No space left on device", "File too large")


def test_reading_stdin_says_there_is_no_input(site, route):
    events = run(site, route, "print(input('name? '))")

    assert "EOFError: this sandbox has no input" in text(events, "stderr")


def test_invalid_utf8_output_arrives_as_replacement_characters(site, route):
    code = "import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe\\n')\nsys.stdout.flush()"

    events = run(site, route, code)

    assert text(events) == "ok \ufffd\ufffd\n"
    assert ending(events)["reason"] == "ok"


def test_code_that_is_not_unicode_text_gets_a_clear_error(site, route):
    events = run(site, route, "print('\ud800')")

    assert [event["type"] for event in events] == ["error"]
    assert "not valid Unicode" in events[0]["message"]


def test_privileges_cannot_be_raised(site, route):
    code = (
        "import os\nprint(os.getuid() != 0, os.geteuid() != 0)\n"
        "for call in (lambda: os.setuid(0), lambda: os.setgid(0), lambda: os.chroot('/')):\n"
        "    try:\n        call()\n        print('raised')\n"
        "    except OSError:\n        print('refused')\n"
    )

    assert text(run(site, route, code)) == "True True\n" + "refused\n" * 3


def test_the_server_answers_other_readers_while_bombs_run(site, route):
    bombs = [
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))",
        "while True:\n    print('x' * 999)",
        "while True:\n    pass",
    ]
    threads = [threading.Thread(target=run, args=(site, route, bomb)) for bomb in bombs]
    for thread in threads:
        thread.start()
    time.sleep(0.5)

    started = time.monotonic()
    with urllib.request.urlopen(site["url"] + "/snippets/hello/", timeout=5) as response:
        assert response.status == 200
    page_seconds = time.monotonic() - started
    started = time.monotonic()
    # Another reader: the bombs' client has its share of the slots and queue filled.
    assert text(run(site, route, "print(1)", client="127.0.0.2")) == "1\n"
    run_seconds = time.monotonic() - started
    for thread in threads:
        thread.join()

    assert page_seconds < 2
    assert run_seconds < WALL + 2  # at most one bomb's wall time waiting for a slot
    assert site["daphne"].poll() is None


def test_large_code_gets_a_clear_error_and_the_socket_stays_usable(site, route):
    url = site["url"].replace("http", "ws") + socket_path(route, "python")
    with connect(url, origin=site["url"], max_size=None) as socket:
        socket.send(json.dumps({"action": "run", "code": "#" * (65 * 1024)}))
        refused = json.loads(socket.recv(timeout=10))
        socket.send(json.dumps({"action": "run", "code": "# " + "x" * (60 * 1024) + "\nprint(2)"}))
        events = [json.loads(socket.recv(timeout=30))]
        while events[-1]["type"] not in ("exit", "error"):
            events.append(json.loads(socket.recv(timeout=30)))

    assert refused == {"type": "error", "message": refused["message"]}
    assert "64 KiB" in refused["message"]
    assert text(events) == "2\n"
