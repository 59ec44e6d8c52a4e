"""Runs served by warm processes: the same limits and walls as a cold run, nothing shared."""

import asyncio
import logging
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
import pytest_asyncio

from glossary import runner
from tests.conftest import require
from tests.processes import exec_with_marker, until_gone

WALL = 3


@pytest.fixture(autouse=True)
def bubblewrap():
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")


@pytest_asyncio.fixture
async def pool(settings):
    """A pool of two per runtime, for runs with small limits; shut down after the test."""
    settings.SNIPPET_WARM_POOL = 2
    settings.SNIPPET_LIMITS = {**settings.SNIPPET_LIMITS, "wall_seconds": WALL, "cpu_seconds": 2}
    yield
    await runner.shutdown_pool()


async def collect(code, runtime="python"):
    """All events of a run with the settings' limits, each stamped with its arrival time."""
    started = time.monotonic()
    return [
        {**event, "at": time.monotonic() - started} async for event in runner.run(code, runtime)
    ]


async def until(condition, within=10):
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


async def warm_up(runtime="python"):
    """Two runs make the pool keep a runtime warm; wait until it holds two processes."""
    for _ in range(2):
        await collect("pass", runtime)
    await until(lambda: len(runner.warm_pids(runtime)) == 2)


async def pooled(code, runtime="python"):
    """Events of a run that a warm process served (asserted)."""
    idle = set(runner.warm_pids(runtime))
    assert idle, "no warm process"
    events = await collect(code, runtime)
    assert len(idle - set(runner.warm_pids(runtime))) == 1, "the run did not take a warm one"
    return events


def text(events, stream="stdout"):
    return "".join(event["text"] for event in events if event["type"] == stream)


def exit_of(events):
    assert events[-1]["type"] == "exit", events
    return events[-1]


def descendants(pids):
    """pids and every host process below them."""
    children = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, todo = set(), list(pids)
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo += children.get(pid, [])
    return found


def survivors(pids, within=1.0):
    """Those of pids still running, or dead but not reaped by us, after a moment.

    Killing bwrap ends the sandbox's init a moment later; as an orphan by then, it is the
    host's init that reaps it, whenever that gets round to it."""
    deadline = time.monotonic() + within
    while True:
        left = set()
        for pid in pids:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if stat[0] != "Z" or int(stat[1]) == os.getpid():
                left.add(pid)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)


@pytest.mark.asyncio
async def test_a_pooled_run_prints_and_exits_ok(pool):
    await warm_up()

    events = await pooled("print('hello')")

    assert events[0]["type"] == "start"
    assert events[0]["limits"]["wall_seconds"] == WALL
    assert text(events) == "hello\n"
    assert exit_of(events)["reason"] == "ok"


@pytest.mark.asyncio
async def test_a_pooled_run_streams_output_as_it_is_printed(pool, monkeypatch):
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    await warm_up()
    code = (
        "import sys, time\nfor n in range(3):\n    sys.stdout.write(f'{n}\\n')\n    time.sleep(0.5)"
    )

    events = await pooled(code)

    arrivals = [event["at"] for event in events if event["type"] == "stdout"]
    assert text(events) == "0\n1\n2\n"
    assert len(arrivals) == 3
    assert arrivals[1] - arrivals[0] > 0.4
    assert arrivals[2] - arrivals[1] > 0.4


@pytest.mark.asyncio
async def test_the_wall_clock_starts_with_the_run_not_the_warm_process(pool):
    await warm_up()
    await asyncio.sleep(1.5)  # the warm processes idle; that time is not the run's

    events = await pooled("import time\ntime.sleep(2)\nprint('done')")

    assert text(events) == "done\n"
    assert exit_of(events)["reason"] == "ok"


@pytest.mark.asyncio
async def test_a_pooled_run_that_sleeps_forever_times_out(pool):
    await warm_up()

    events = await pooled("import time\ntime.sleep(3600)")

    assert exit_of(events)["reason"] == "timeout"
    assert WALL * 1000 <= exit_of(events)["wall_ms"] < (WALL + 1) * 1000


@pytest.mark.asyncio
async def test_a_pooled_memory_bomb_ends_with_memory(pool):
    await warm_up()

    events = await pooled("chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))")

    assert exit_of(events)["reason"] == "memory"
    assert "MemoryError" in text(events, "stderr")


@pytest.mark.asyncio
async def test_a_pooled_fork_bomb_is_held_to_the_process_limit(pool, settings):
    settings.SNIPPET_LIMITS = {**settings.SNIPPET_LIMITS, "processes": 16}
    marker = f"pooled-forkbomb-{uuid.uuid4().hex}"
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
        "print(children)\n"
        "time.sleep(60)\n"
    )
    await warm_up()

    events = await pooled(exec_with_marker(marker, bomb))

    assert text(events) == "15\n"  # the snippet itself is the sixteenth
    assert exit_of(events)["reason"] == "timeout"
    assert until_gone(marker) == []


@pytest.mark.asyncio
async def test_a_pooled_django_run_gets_its_whole_cpu_budget(pool, settings):
    # Django's warm-up spends CPU before the run; the budget is the snippet's all the same.
    settings.SNIPPET_LIMITS = {**settings.SNIPPET_LIMITS, "wall_seconds": 10, "cpu_seconds": 1}
    code = (
        "import sys, time\n"
        "start = time.process_time()\n"
        "while True:\n"
        "    spent = time.process_time() - start\n"
        "    sys.stdout.write(f'{spent:.2f}\\n')\n"
        "    end = time.process_time() + 0.05\n"
        "    while time.process_time() < end:\n"
        "        pass\n"
    )
    await warm_up("django")

    events = await pooled(code, "django")

    spent = float(text(events).split()[-1])
    assert exit_of(events)["reason"] == "cpu"
    assert exit_of(events)["signal"] == signal.SIGXCPU
    assert 0.95 <= spent < 2.1


@pytest.mark.asyncio
async def test_files_do_not_carry_over_between_pooled_runs(pool):
    await warm_up()

    await pooled("open('kept.txt', 'w').write('x')\nopen('/tmp/kept.txt', 'w').write('x')")
    events = await pooled(
        "import os\nprint(os.path.exists('kept.txt'), os.path.exists('/tmp/kept.txt'))"
    )

    assert text(events) == "False False\n"


@pytest.mark.asyncio
async def test_each_pooled_run_has_a_uid_of_its_own(pool):
    await warm_up()

    first = await pooled("import os\nprint(os.getuid())")
    second = await pooled("import os\nprint(os.getuid())")

    assert int(text(first)) != int(text(second))
    assert int(text(first)) in runner.RUN_UIDS or os.geteuid() != 0


@pytest.mark.asyncio
async def test_a_row_made_by_a_pooled_django_run_is_gone_in_the_next(pool, settings):
    settings.SNIPPET_LIMITS = {**settings.SNIPPET_LIMITS, "wall_seconds": 10}
    code = (
        "from glossary.models import Topic\n"
        "print(Topic.objects.filter(slug='made-in-a-run').exists())\n"
        "Topic.objects.create(name='Made in a run', slug='made-in-a-run')\n"
    )
    await warm_up("django")

    first = await pooled(code, "django")
    second = await pooled(code, "django")

    assert exit_of(first)["reason"] == "ok", text(first, "stderr")
    assert text(first) == text(second) == "False\n"


@pytest.mark.asyncio
async def test_a_traceback_starts_at_the_snippet(pool):
    await warm_up()

    events = await pooled("def f():\n    1 / 0\n\nf()")

    assert text(events, "stderr").splitlines()[:2] == [
        "Traceback (most recent call last):",
        '  File "snippet.py", line 4, in <module>',
    ]


@pytest.mark.asyncio
async def test_a_warm_process_that_died_while_idle_is_not_used(pool, caplog):
    await warm_up()
    dead = runner.warm_pids()[0]
    os.killpg(dead, signal.SIGKILL)
    await until(lambda: dead not in runner.warm_pids())

    with caplog.at_level(logging.WARNING, logger="glossary.runner"):
        events = await collect("print('still runs')")

    assert text(events) == "still runs\n"
    assert "exited while idle" in caplog.text


@pytest.mark.asyncio
async def test_one_run_in_a_loop_warms_nothing(pool):
    await collect("pass")
    await asyncio.sleep(0.2)

    assert runner.warm_pids() == []


@pytest.mark.asyncio
async def test_a_pool_of_zero_keeps_nothing_warm(pool, settings):
    settings.SNIPPET_WARM_POOL = 0

    for _ in range(3):
        assert text(await collect("print(1)")) == "1\n"
    await asyncio.sleep(0.2)

    assert runner.warm_pids() == []


@pytest.mark.asyncio
async def test_no_warm_process_survives_shutdown(pool):
    await warm_up("python")
    await warm_up("django")
    fork_servers = runner.pool._pools[asyncio.get_running_loop()].zygotes.values()
    processes = descendants([*runner.warm_pids(), *(zygote.pid for zygote in fork_servers)])
    # Each warm process: the sandbox's init and the interpreter (and bwrap, when not forked).
    assert len(processes) >= 4 * 2

    await runner.shutdown_pool()

    assert runner.warm_pids() == []
    assert survivors(processes) == set()


def test_warm_processes_die_with_their_event_loop(settings):
    # Without shutdown_pool(): asyncio.run() cancels the keeper as it closes the loop.
    settings.SNIPPET_WARM_POOL = 2

    async def fill():
        await warm_up()
        return descendants(runner.warm_pids())

    processes = asyncio.run(fill())

    assert processes
    assert survivors(processes) == set()


@pytest.mark.asyncio
async def test_shutting_down_while_replacements_start_never_hangs(pool):
    for _ in range(5):
        await collect("print(1)")
        await collect("print(2)")  # from the second run on, the keeper starts replacements

        async with asyncio.timeout(15):
            await runner.shutdown_pool()

        assert runner.warm_pids() == []


@pytest.mark.asyncio
async def test_a_pool_without_memory_to_spare_keeps_nothing_warm_and_runs_still_run(pool, settings):
    settings.SNIPPET_WARM_POOL_MB = 0

    for _ in range(3):
        events = await collect("print('cold')")
        assert "".join(e["text"] for e in events if e["type"] == "stdout") == "cold\n"
    await asyncio.sleep(0.5)

    assert runner.warm_pids("python") == []


@pytest.mark.asyncio
async def test_the_pool_counts_the_memory_of_its_idle_processes_and_their_servers(pool):
    await warm_up("python")
    process = next(iter(runner.pool._pools[asyncio.get_running_loop()].unused))

    resident_mb = runner.pool.tree_rss_kb(process.pid) / 1024

    # bwrap, its init and a Python interpreter waiting for its code.
    assert 5 < resident_mb < 100
