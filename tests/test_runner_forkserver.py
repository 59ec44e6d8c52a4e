"""Runs forked by a runtime's fork server: each still a sandbox of its own (namespaces,
fresh tmpfs, uid, limits, no capabilities), and nothing of one run reaches another."""

import asyncio
import contextlib
import gc
import os
import uuid
from pathlib import Path

import pytest
import pytest_asyncio

from glossary import runner
from glossary.runner import forkserver, runtimes
from tests.conftest import require
from tests.processes import exec_with_marker, until_gone


@pytest_asyncio.fixture
async def forking(settings):
    """A pool with a python fork server; runs beyond its warm processes are forked."""
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    settings.SNIPPET_FORK_SERVERS = True
    require(forkserver.usable(), "fork servers need root")
    settings.SNIPPET_WARM_POOL = 1
    for _ in range(2):
        await collect("pass")
    pool = runner.pool._pools[asyncio.get_running_loop()]
    for _ in range(200):
        if "python" in pool.zygotes:
            break
        await asyncio.sleep(0.05)
    yield pool.zygotes["python"]
    await runner.shutdown_pool()


async def collect(code, runtime="python"):
    return [event async for event in runner.run(code, runtime)]


def text(events, stream="stdout"):
    return "".join(event["text"] for event in events if event["type"] == stream)


def below(pid):
    """Host pids below pid."""
    children = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
            children.setdefault(int(stat[1]), []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


@pytest.mark.asyncio
async def test_a_forked_run_holds_no_capability_and_a_uid_of_its_own(forking):
    code = (
        "import os\n"
        "status = dict(line.split(':\\t') for line in open('/proc/self/status'))\n"
        "for name in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs'):\n"
        "    print(name, status[name].strip())\n"
        "print(os.getuid(), os.getgid(), os.getgroups(), os.getpid())\n"
    )

    first, second = await asyncio.gather(collect(code), collect(code))

    sets = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
    for events in (first, second):
        lines = text(events).splitlines()
        assert lines[:6] == [*(f"{name} 0000000000000000" for name in sets), "NoNewPrivs 1"]
        uid, gid, groups, pid = lines[6].split(" ")
        assert int(uid) in runner.RUN_UIDS and gid == uid
        assert (groups, pid) == ("[]", "2")  # the snippet runs below its own init
    assert text(first).splitlines()[6] != text(second).splitlines()[6]


@pytest.mark.asyncio
async def test_a_forked_run_sees_only_its_own_processes_and_no_network(forking):
    code = (
        "import os, socket\n"
        "print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n"
        "print(socket.if_nameindex())\n"
    )

    events = await collect(code)

    assert text(events) == "[1, 2]\n[(1, 'lo')]\n", events


@pytest.mark.asyncio
async def test_two_forked_runs_share_no_file_socket_or_memory(forking):
    name = uuid.uuid4().hex
    holder = (
        "import os, socket, time\n"
        f"for path in ('/tmp/{name}', '/sandbox/{name}', '/dev/shm/{name}'):\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "    except OSError as error:\n"
        "        print(path, error.errno)\n"
        "listener = socket.socket(socket.AF_UNIX)\n"
        f"listener.bind('\\0{name}')\n"
        "listener.listen()\n"
        "print('holding', flush=True)\n"
        "time.sleep(5)\n"
    )
    looker = (
        "import os, socket\n"
        f"paths = ('/tmp/{name}', '/sandbox/{name}', '/dev/shm/{name}')\n"
        "print([os.path.exists(path) for path in paths])\n"
        "client = socket.socket(socket.AF_UNIX)\n"
        "try:\n"
        f"    client.connect('\\0{name}')\n"
        "    print('reached')\n"
        "except OSError:\n"
        "    print('unreachable')\n"
    )

    async with contextlib.aclosing(runner.run(holder, "python")) as held:
        async for event in held:
            if event["type"] == "stdout" and "holding" in event["text"]:
                break
        events = await collect(looker)

    assert text(events) == "[False, False, False]\nunreachable\n", events


@pytest.mark.asyncio
async def test_a_cancelled_forked_run_leaves_no_process(forking):
    marker = f"forked-sleeper-{uuid.uuid4().hex}"
    program = "import os, time\nos.fork()\nprint('up', flush=True)\ntime.sleep(60)"
    code = exec_with_marker(marker, program)

    async with contextlib.aclosing(runner.run(code, "python")) as run:
        async for event in run:
            if event["type"] == "stdout":
                break

    assert until_gone(marker) == []


@pytest.mark.asyncio
async def test_the_fork_server_holds_nothing_of_the_server(monkeypatch, settings):
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    settings.SNIPPET_FORK_SERVERS = True
    require(forkserver.usable(), "fork servers need root")
    monkeypatch.setenv("SECRET_KEY", "leak-secret")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///leak.sqlite3")
    kind = runtimes.get("django")
    zygote = await forkserver.ForkServer.start(kind, await kind.given())
    try:
        processes = below(zygote.pid)
        environments = b"".join(Path(f"/proc/{pid}/environ").read_bytes() for pid in processes)
    finally:
        await zygote.close()

    assert len(processes) == 2  # bubblewrap's init and the zygote
    assert b"leak" not in environments
    assert b"DJANGO_SETTINGS_MODULE=config.settings.sandbox" in environments


def sleeper_in_a_forked_run(settings, marker, cancel_tasks=True):
    """Start a fork server and a forked run that sleeps, then leave the loop while the run
    still sleeps; the fork server's host pid (None if none started)."""
    settings.SNIPPET_FORK_SERVERS = True
    settings.SNIPPET_WARM_POOL = 1
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    require(forkserver.usable(), "fork servers need root")
    code = exec_with_marker(marker, "print('up', flush=True)\nimport time\ntime.sleep(60)")
    held = []  # the run's generator, still running as the loop ends

    async def start():
        for _ in range(2):  # from the second run on, a fork server forks warm processes
            await collect("pass")
        pool = runner.pool._pools[asyncio.get_running_loop()]
        for _ in range(200):
            if pool.forkservers and runner.warm_pids("python"):
                break
            await asyncio.sleep(0.05)
        run = runner.run(code, "python")
        async for event in run:
            if event["type"] == "stdout":
                break
        held.append(run)
        return next(iter(pool.forkservers)).pid if pool.forkservers else None

    if cancel_tasks:
        return asyncio.run(start())
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(start())
    finally:
        loop.close()  # as a thread's loop may end: its tasks never cancelled


def gone(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_loop_that_ends_mid_run_takes_its_fork_server_and_runs_with_it(settings):
    marker = f"loop-end-{uuid.uuid4().hex}"

    zygote = sleeper_in_a_forked_run(settings, marker)
    gc.collect()  # a transport left open would complain now, its loop closed

    assert zygote, "no fork server started"
    assert gone(zygote)
    assert until_gone(marker) == []


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_loop_closed_without_ending_its_tasks_is_cleaned_up_by_the_next(settings):
    marker = f"loop-closed-{uuid.uuid4().hex}"

    zygote = sleeper_in_a_forked_run(settings, marker, cancel_tasks=False)
    events = asyncio.run(collect("print('next loop')"))
    gc.collect()

    assert text(events) == "next loop\n"
    assert zygote and gone(zygote)
    assert until_gone(marker) == []
