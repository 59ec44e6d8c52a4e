"""The runner against real processes: every limit, the sandbox's walls, streaming."""

import asyncio
import dataclasses
import functools
import json
import signal
import sys
import tempfile
import time
import uuid

import pytest

from glossary import runner
from tests.conftest import require
from tests.processes import exec_with_marker, processes_with, until_gone

WALL = 3


@pytest.fixture(autouse=True)
def bubblewrap(request):
    if "no_bubblewrap" not in request.fixturenames:
        require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")


@pytest.fixture
def no_bubblewrap(monkeypatch):
    """As on a machine without bubblewrap (macOS, no user namespaces)."""
    monkeypatch.setattr(runner.sandbox, "bubblewrap_works", functools.cache(lambda: False))


def limits(**changes):
    changes = {"wall_seconds": WALL, "cpu_seconds": 2, **changes}
    return dataclasses.replace(runner.Limits.from_settings(), **changes)


async def collect(code, runtime="python", **limit_changes):
    """All events of a run, each with its arrival time (seconds since the start)."""
    started = time.monotonic()
    events = []
    async for event in runner.run(code, runtime, limits(**limit_changes)):
        events.append({**event, "at": time.monotonic() - started})
    return events


def text(events, stream="stdout"):
    return "".join(event["text"] for event in events if event["type"] == stream)


def exit_of(events):
    assert events[-1]["type"] == "exit", events
    return events[-1]


@pytest.mark.asyncio
async def test_it_runs_code_and_reports_ok():
    events = await collect("print('hello')")

    assert events[0]["type"] == "start"
    assert events[0]["sandbox"] == "bubblewrap"
    assert events[0]["limits"]["wall_seconds"] == WALL
    assert text(events) == "hello\n"
    assert exit_of(events) | {"at": 0, "wall_ms": 0} == {
        "type": "exit",
        "reason": "ok",
        "code": 0,
        "signal": None,
        "wall_ms": 0,
        "truncated": False,
        "at": 0,
    }


@pytest.mark.asyncio
async def test_it_keeps_stdout_and_stderr_apart():
    events = await collect("import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(2)")

    assert text(events, "stdout") == "out\n"
    assert text(events, "stderr") == "err\n"
    assert exit_of(events)["reason"] == "error"
    assert exit_of(events)["code"] == 2


@pytest.mark.asyncio
async def test_an_infinite_loop_is_stopped_at_the_cpu_limit_not_the_wall_clock():
    # A wall limit far away: however loaded the machine, the CPU limit comes first.
    events = await collect("while True:\n    pass", wall_seconds=60, cpu_seconds=1)

    assert exit_of(events)["reason"] == "cpu"
    assert exit_of(events)["signal"] == signal.SIGXCPU


@pytest.mark.asyncio
async def test_a_loop_that_ignores_sigxcpu_is_still_stopped_at_the_cpu_limit():
    code = "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass"

    events = await collect(code, wall_seconds=60, cpu_seconds=1)

    assert exit_of(events)["reason"] == "cpu"
    assert exit_of(events)["signal"] == signal.SIGKILL


@pytest.mark.asyncio
async def test_reading_stdin_says_the_sandbox_has_no_input():
    events = await collect("name = input('Your name? ')\nprint('hello', name)")

    assert text(events) == "Your name? "
    last_line = text(events, "stderr").splitlines()[-1]
    assert last_line.startswith("EOFError: this sandbox has no input")
    assert exit_of(events)["reason"] == "error"


@pytest.mark.asyncio
async def test_a_traceback_shows_the_snippets_own_paths_not_the_servers(settings):
    events = await collect("import json\n\njson.loads('{not json')")

    traceback = text(events, "stderr")
    assert '  File "snippet.py", line 3, in <module>' in traceback
    assert '  File "json/decoder.py", line ' in traceback
    for server_path in (sys.base_prefix, sys.prefix, str(settings.BASE_DIR), runner.SANDBOX_DIR):
        assert server_path not in traceback
    assert traceback.splitlines()[-1].startswith("json.decoder.JSONDecodeError: ")


@pytest.mark.asyncio
async def test_django_warnings_and_tracebacks_show_library_and_project_paths_short(settings):
    code = (
        "import datetime\nfrom glossary.models import Topic\n"
        "Topic.objects.filter(created__gte=datetime.datetime(2020, 1, 1)).count()\n"
        "Topic.objects.get(slug='no-such-topic')\n"
    )

    events = await collect(code, "django", wall_seconds=30)

    traceback = text(events, "stderr")
    assert "django/db/models/fields/__init__.py:" in traceback  # the naive datetime warning
    assert '  File "snippet.py", line 4, in <module>' in traceback
    assert '  File "django/db/models/query.py", line ' in traceback
    assert str(settings.BASE_DIR) not in traceback and sys.prefix not in traceback
    assert traceback.splitlines()[-1] == (
        "glossary.models.topics.Topic.DoesNotExist: Topic matching query does not exist."
    )


@pytest.mark.asyncio
async def test_sleeping_forever_is_stopped_by_the_wall_clock():
    events = await collect("import time\ntime.sleep(3600)")

    assert exit_of(events)["reason"] == "timeout"
    assert WALL * 1000 <= exit_of(events)["wall_ms"] < (WALL + 1) * 1000


@pytest.mark.asyncio
async def test_a_memory_bomb_ends_with_memory():
    events = await collect("chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))")

    assert exit_of(events)["reason"] == "memory"
    assert "MemoryError" in text(events, "stderr")
    assert exit_of(events)["at"] < WALL + 1


@pytest.mark.asyncio
async def test_a_fork_bomb_is_held_to_the_process_limit():
    marker = f"forkbomb-{uuid.uuid4().hex}"
    bomb = (
        "import os, time\n"
        "children = 0\n"
        "while True:\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        children += 1\n"
        "    except OSError:\n"
        "        break\n"
        "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "print(children, len(pids))\n"
        "time.sleep(60)\n"
    )

    events = await collect(exec_with_marker(marker, bomb), processes=16)

    children, pids = map(int, text(events).split())
    assert children == 15  # the snippet itself is the sixteenth
    assert pids <= 16 + 1  # plus the sandbox's init, which is not the snippet's user
    assert exit_of(events)["reason"] == "timeout"
    assert exit_of(events)["at"] < WALL + 1
    assert until_gone(marker) == []


@pytest.mark.asyncio
async def test_endless_output_is_cut_at_the_output_limit():
    events = await collect("while True:\n    print('x' * 99)", output_kb=4)

    assert exit_of(events)["reason"] == "output_limit"
    assert exit_of(events)["truncated"] is True
    assert len(text(events)) == 4 * 1024
    assert exit_of(events)["at"] < WALL + 1


@pytest.mark.asyncio
async def test_a_slow_trickle_arrives_as_it_is_printed(monkeypatch):
    # The child must be unbuffered because the runner says so, not because we do.
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    code = (
        "import sys, time\nfor n in range(3):\n    sys.stdout.write(f'{n}\\n')\n    time.sleep(0.5)"
    )

    events = await collect(code)

    arrivals = [event["at"] for event in events if event["type"] == "stdout"]
    assert text(events) == "0\n1\n2\n"
    assert len(arrivals) == 3
    assert arrivals[1] - arrivals[0] > 0.4
    assert arrivals[2] - arrivals[1] > 0.4


@pytest.mark.asyncio
async def test_output_streams_before_the_process_ends():
    run = runner.run("import time\nprint('first')\ntime.sleep(2)\nprint('second')", "python")
    started = time.monotonic()
    async for event in run:
        if event["type"] == "stdout":
            break

    assert event["text"].startswith("first")
    assert time.monotonic() - started < 1.5
    await run.aclose()


@pytest.mark.asyncio
async def test_the_environment_holds_nothing_of_the_server(monkeypatch):
    monkeypatch.setenv("RUNNER_TEST_MARKER", "leak")
    monkeypatch.setenv("SECRET_KEY", "leak-secret")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///leak.sqlite3")

    events = await collect("import os\nfor key in os.environ:\n    print(key, os.environ[key])")

    output = text(events)
    assert "leak" not in output
    assert "SECRET_KEY" not in output
    assert "DATABASE_URL" not in output
    assert "PYTHONUNBUFFERED 1" in output


@pytest.mark.asyncio
async def test_proc_1_environ_holds_nothing_of_the_server(monkeypatch):
    monkeypatch.setenv("RUNNER_TEST_MARKER", "leak")
    code = (
        "try:\n"
        "    print(open('/proc/1/environ', 'rb').read())\n"
        "except OSError as error:\n"
        "    print('unreadable', error.errno)\n"
    )

    events = await collect(code)

    assert exit_of(events)["reason"] == "ok"
    assert "leak" not in text(events)


@pytest.mark.asyncio
async def test_the_network_is_unreachable():
    code = (
        "import socket\n"
        "for address in [('127.0.0.1', 5432), ('1.1.1.1', 80)]:\n"
        "    try:\n"
        "        socket.create_connection(address, timeout=1).close()\n"
        "        print('connected', address)\n"
        "    except OSError as error:\n"
        "        print('failed', error.errno)\n"
    )

    events = await collect(code)

    assert "connected" not in text(events)
    assert text(events).count("failed") == 2
    assert exit_of(events)["at"] < 1.5


@pytest.mark.asyncio
async def test_writes_outside_the_working_directory_fail(settings):
    targets = ["/etc/x", "/usr/x", "/x", str(settings.BASE_DIR / "x")]
    targets += [str(settings.BASE_DIR / "glossary" / "x")]
    code = (
        "for path in ['here.txt'] + " + repr(targets) + ":\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "        print('wrote', path)\n"
        "    except OSError:\n"
        "        print('refused', path)\n"
    )

    events = await collect(code, runtime="django")

    assert text(events).splitlines() == ["wrote here.txt", *(f"refused {t}" for t in targets)]
    assert not (settings.BASE_DIR / "x").exists()


@pytest.mark.asyncio
async def test_a_double_forked_daemon_dies_with_the_run():
    marker = f"daemon-{uuid.uuid4().hex}"
    daemon = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        print('daemon', os.getpid())\n"
        "        time.sleep(60)\n"
        "    os._exit(0)\n"
        "time.sleep(0.3)\n"
    )

    events = await collect(exec_with_marker(marker, daemon))

    assert "daemon" in text(events)
    assert exit_of(events)["reason"] == "ok"
    assert until_gone(marker) == []


@pytest.mark.asyncio
async def test_cancelling_kills_the_process_group_at_once():
    marker = f"cancel-{uuid.uuid4().hex}"
    sleeper = "import time\nprint('ready')\ntime.sleep(60)"
    first_output = asyncio.Event()

    async def drive():
        async for event in runner.run(exec_with_marker(marker, sleeper), "python", limits()):
            if event["type"] == "stdout":
                first_output.set()

    task = asyncio.create_task(drive())
    await asyncio.wait_for(first_output.wait(), WALL)
    assert processes_with(marker)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert until_gone(marker, within=0.5) == []


@pytest.mark.asyncio
async def test_the_temporary_directory_is_removed(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    events = await collect("open('scratch.txt', 'w').write('x')\nprint('done')")

    assert text(events) == "done\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.asyncio
async def test_files_do_not_persist_between_runs():
    await collect("open('kept.txt', 'w').write('x')\nopen('/tmp/kept.txt', 'w').write('x')")

    events = await collect(
        "import os\nprint(os.path.exists('kept.txt'), os.path.exists('/tmp/kept.txt'))"
    )

    assert text(events) == "False False\n"


def seed_topic_count(base_dir):
    fixture = base_dir / "glossary" / "fixtures" / "glossary.json"
    if not fixture.exists():
        return 0
    return sum(1 for obj in json.loads(fixture.read_text()) if obj["model"] == "glossary.topic")


@pytest.mark.asyncio
async def test_the_django_runtime_uses_a_copy_of_the_seed_database(settings):
    code = (
        "import os\n"
        "from django.conf import settings\n"
        "from glossary.models import Topic\n"
        "print(Topic.objects.count())\n"
        "print(settings.DATABASES['default']['NAME'])\n"
        f"print(os.path.exists({str(settings.BASE_DIR / 'db.sqlite3')!r}))\n"
        "Topic.objects.create(name='Made in a run', slug='made-in-a-run')\n"
    )

    first = await collect(code, runtime="django", wall_seconds=10)
    second = await collect(code, runtime="django", wall_seconds=10)

    count, name, site_db_visible = text(first).split()
    assert exit_of(first)["reason"] == "ok", text(first, "stderr")
    assert int(count) == seed_topic_count(settings.BASE_DIR)
    assert name == "/sandbox/db.sqlite3"
    assert site_db_visible == "False"
    assert text(second) == text(first)  # the row made by the first run is gone


@pytest.mark.asyncio
async def test_an_unknown_runtime_is_an_error_event():
    events = await collect("print(1)", runtime="cobol")

    assert [event["type"] for event in events] == ["error"]
    assert "cobol" in events[0]["message"]


@pytest.mark.asyncio
async def test_without_a_sandbox_it_refuses_unless_unsafe_local_is_allowed(no_bubblewrap, settings):
    settings.DEBUG = False
    settings.SNIPPET_ALLOW_UNSAFE_LOCAL = True

    refused = await collect("print('ran')")

    settings.DEBUG = True
    allowed = await collect("print('ran')")

    assert [event["type"] for event in refused] == ["error"]
    assert "No sandbox" in refused[0]["message"]
    assert allowed[0]["sandbox"] == "unsafe-local"
    assert text(allowed) == "ran\n"


@pytest.mark.asyncio
async def test_runs_wait_in_a_bounded_queue():
    slots = runner.RunSlots(slots=1, queue_size=1)
    first = runner.run_queued("import time\ntime.sleep(1)", "python", limits(), slots)
    second = runner.run_queued("print('second')", "python", limits(), slots)
    third = runner.run_queued("print('third')", "python", limits(), slots)

    assert (await anext(first))["type"] == "start"
    assert await anext(second) == {"type": "queued", "position": 1}
    assert (await anext(third))["type"] == "error"
    rest_of_first = [event async for event in first]
    rest_of_second = [event async for event in second]

    assert exit_of(rest_of_first)["reason"] == "ok"
    assert text(rest_of_second) == "second\n"
    assert slots.running == 0 and not slots.waiting


@pytest.mark.asyncio
async def test_a_snippet_may_use_a_few_threads_under_the_memory_limit():
    code = (
        "import threading\n"
        "barrier = threading.Barrier(8)\n"
        "threads = [threading.Thread(target=barrier.wait) for _ in range(8)]\n"
        "for t in threads: t.start()\n"
        "for t in threads: t.join()\n"
        "print('threads done')\n"
    )
    events = await collect(code)

    assert text(events) == "threads done\n"
    assert exit_of(events)["reason"] == "ok"


@pytest.mark.asyncio
async def test_django_snippets_write_to_their_database_but_not_large_files():
    code = (
        "from glossary.models import Topic\n"
        # One INSERT: each query is reported to the SQL panel and counts as output.
        "Topic.objects.bulk_create(\n"
        "    Topic(name=f'Extra {n}', slug=f'extra-{n}', summary='x' * 100) for n in range(50)\n"
        ")\n"
        "print('saved', Topic.objects.filter(slug__startswith='extra-').count())\n"
        "try:\n"
        "    with open('big.bin', 'wb') as f:\n"
        "        f.write(b'x' * 4 * 1024 * 1024)\n"
        "except OSError as error:\n"
        "    print('refused', error.strerror)\n"
    )
    events = await collect(code, runtime="django", wall_seconds=10, file_size_kb=512)

    assert text(events) == "saved 50\nrefused File too large\n", text(events, "stderr")
