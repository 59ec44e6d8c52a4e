"""Warm processes: each event loop keeps a fork server per runtime (forkserver.py) and a
few processes forked ahead, so a run only hands its code over, and a run that finds none
idle costs a fork. A warm process serves exactly one run: its namespaces, tmpfs, database
copy, server and uid are its own."""

import asyncio
import atexit
import collections
import contextlib
import logging
import os
import signal

from django.conf import settings

from . import forkserver, runtimes
from .sandbox import Bubblewrap
from .supervise import kill

# How long a runtime goes unwarmed after a warm process died while idle.
IDLE_DEATH_PAUSE = 30

logger = logging.getLogger(__name__)

# Process groups of warm processes not handed to a run yet, killed at interpreter exit.
# (bwrap's --die-with-parent covers a server that is killed outright.)
_unused_pids = set()
_pools = {}
SHUTDOWN_WAIT_SECONDS = 10
SETTLE_SECONDS = 3
# A replacement for a process handed to a run starts this long after, so that starting it
# does not compete with that run's first output.
REFILL_DELAY_SECONDS = 0.02


@atexit.register
def _kill_unused():
    for pid in list(_unused_pids):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def tree_rss_kb(pid, field="VmRSS:", source="status"):
    """Resident memory of a process and its descendants in KiB (0 once it is gone)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/{source}") as status:
                total += next((int(ln.split()[1]) for ln in status if ln.startswith(field)), 0)
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    todo += [int(child) for child in children.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return total


def tree_pss_kb(pid):
    """Like tree_rss_kb(), each page shared between processes (a zygote and its forks)
    split between them: what the tree really adds."""
    return tree_rss_kb(pid, "Pss:", "smaps_rollup")


class WarmPool:
    """Up to `size` idle warm processes per runtime, for the event loop that made it.

    A new one starts only while the idle ones (their servers included) and the fork
    servers hold less than SNIPPET_WARM_POOL_MB of memory (see idle_mb()), so the bound
    can be passed by one process at most.
    A runtime is kept warm from its second run in the loop on: a loop that runs one
    snippet and ends (asyncio.run() in a management command) would only pay for processes
    it never uses. A keeper task starts replacements; cancelling it (shutdown_pool(), or the loop's
    own shutdown cancelling every task) kills every process not handed to a run.
    """

    def __init__(self, size):
        self.size = size
        self.runs = collections.Counter()
        self.limits = {}  # runtime: the Limits its idle processes were started with
        self.idle = collections.defaultdict(collections.deque)
        self.unused = set()  # started, not handed to a run, not yet reaped
        self.paused_until = {}
        self.watchers = set()
        self.zygotes = {}  # runtime: its ForkServer
        self.forkservers = set()  # every ForkServer not yet disposed of, retired ones too
        self.unforkable = set()  # runtimes whose fork server could not start
        self.born, self.settled = {}, {}  # pid: first seen; pid: its memory (idle_mb())
        self.changed = asyncio.Event()
        self.keeper = asyncio.create_task(self._keep())

    def take(self, runtime, limits):
        """An idle process for a run of runtime with limits, or None: start one cold."""
        self.runs[runtime] += 1
        if self.limits.get(runtime) != limits:
            self._discard(runtime)
            self.limits[runtime] = limits
        idle, process = self.idle[runtime], None
        while idle and process is None:
            candidate = idle.popleft()
            self._release(candidate)
            if candidate.returncode is None:
                process = candidate
        asyncio.get_running_loop().call_later(REFILL_DELAY_SECONDS, self.changed.set)
        return process

    async def fork(self, kind, limits, given):
        """A process forked for a run by kind's fork server, or None if it has none."""
        zygote = self.zygotes.get(kind.name)
        if zygote is None or zygote.given != given:
            return None
        try:
            return await zygote.fork(kind.spawn_limits(limits, given), limits.cpu_seconds)
        except OSError:
            logger.exception("The %s fork server failed; runs start cold for now", kind.name)
            self._retire(kind.name)
            return None

    def idle_mb(self):
        """Memory of every idle process and what it started (a server), and of the fork
        servers, in MiB: each one's proportional set size (the pages a fork shares with
        its fork server split between them), read once it has settled, for that costs the
        kernel a walk of its page tables; its resident size, an upper bound, until then."""
        now = asyncio.get_running_loop().time()
        pids = [process.pid for process in self.unused]
        pids += [zygote.pid for zygote in self.zygotes.values()]
        settled = {pid: kb for pid, kb in self.settled.items() if pid in pids}
        total = 0
        for pid in pids:
            if pid not in settled and now - self.born.setdefault(pid, now) >= SETTLE_SECONDS:
                settled[pid] = tree_pss_kb(pid)
            total += settled[pid] if pid in settled else tree_rss_kb(pid)
        self.settled = settled
        self.born = {pid: born for pid, born in self.born.items() if pid in pids}
        return total / 1024

    def pids(self, runtime=None):
        runtimes = [runtime] if runtime else list(self.idle)
        return [process.pid for name in runtimes for process in self.idle.get(name, ())]

    def _release(self, process):
        self.unused.discard(process)
        _unused_pids.discard(process.pid)

    def _discard(self, runtime):
        while self.idle[runtime]:
            kill(self.idle[runtime].popleft())  # its watcher reaps it

    async def _keep(self):
        loop = asyncio.get_running_loop()
        try:
            while True:
                self.changed.clear()
                for runtime, limits in list(self.limits.items()):
                    while (
                        self.runs[runtime] >= 2
                        and len(self.idle[runtime]) < self.size
                        and self.limits[runtime] == limits
                        and loop.time() >= self.paused_until.get(runtime, 0)
                        and self.idle_mb() < settings.SNIPPET_WARM_POOL_MB
                    ):
                        await self._start(runtime, limits)
                pauses = [until - loop.time() for until in self.paused_until.values()]
                try:
                    timeout = min((p for p in pauses if p > 0), default=None)
                    await asyncio.wait_for(self.changed.wait(), timeout)
                except TimeoutError:
                    pass
        finally:
            if not loop.is_closed():  # else dropped with its loop unfinished: see abandon()
                await self._shut_down()

    async def _shut_down(self):
        watchers, unused = list(self.watchers), list(self.unused)
        for watcher in watchers:
            watcher.cancel()
        self.idle.clear()
        for process in unused:
            kill(process)
            self._release(process)
        # Every fork server goes, and with it every run it forked: this loop's runs
        # are over, whether their tasks have ended yet or not.
        forkservers = list(self.forkservers)
        self.zygotes.clear()
        for zygote in forkservers:
            zygote.kill()
        waits = [process.wait() for process in unused]
        waits += [zygote.wait() for zygote in forkservers]
        try:
            async with asyncio.timeout(SHUTDOWN_WAIT_SECONDS):
                await asyncio.gather(*waits, *watchers, return_exceptions=True)
        except TimeoutError:
            logger.error("Warm processes %s did not exit", [p.pid for p in unused])
        self.dispose()
        for process in unused:
            if isinstance(process, forkserver.ForkedProcess):
                process.close()

    def abandon(self):
        """Kill and reap what is left of a pool whose loop closed without ending its tasks
        (so without that loop: its transports could not close any more)."""
        self.dispose()
        for process in self.unused:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):  # a forked one is not our child
                os.waitpid(process.pid, 0)

    def dispose(self):
        """Reap the fork servers and close their descriptors, without the event loop."""
        for zygote in list(self.forkservers):
            zygote.dispose()
            self.forkservers.discard(zygote)
            _unused_pids.discard(zygote.pid)

    async def _start(self, runtime, limits):
        loop = asyncio.get_running_loop()
        try:
            kind = runtimes.get(runtime)
            given = await kind.given()
            zygote = self.zygotes.get(runtime)
            forks = forkserver.usable() and runtime not in self.unforkable
            if forks and (zygote is None or zygote.given != given):
                self._retire(runtime)
                try:
                    await self._start_zygote(kind, given)
                except forkserver.ForkServerFailed as failure:
                    logger.warning("%s; each run starts its own sandbox instead", failure)
                    self.unforkable.add(runtime)
            process = await self.fork(kind, limits, given)
            if process is None:
                process = await kind.start(Bubblewrap(), limits, given)
        except (runtimes.RunRefused, OSError):
            logger.exception("Could not start a warm %s process; runs start cold for now", runtime)
            self.paused_until[runtime] = loop.time() + IDLE_DEATH_PAUSE
            return
        self.unused.add(process)
        _unused_pids.add(process.pid)
        self._track(self._watch(runtime, process))
        if self.limits[runtime] == limits:
            self.idle[runtime].append(process)
        else:  # the settings changed while it started
            kill(process)

    async def _start_zygote(self, kind, given):
        zygote = await forkserver.ForkServer.start(kind, given)
        self.zygotes[kind.name] = zygote
        self.forkservers.add(zygote)
        _unused_pids.add(zygote.pid)
        self._track(self._watch_zygote(kind.name, zygote))

    def _retire(self, runtime):
        """Stop runtime's fork server: it exits once the runs it forked have ended."""
        if (zygote := self.zygotes.pop(runtime, None)) is not None:
            zygote.control.close()

    def _track(self, coroutine):
        watcher = asyncio.create_task(coroutine)
        self.watchers.add(watcher)
        watcher.add_done_callback(self.watchers.discard)

    async def _watch_zygote(self, runtime, zygote):
        await zygote.wait()
        zygote.dispose()
        self.forkservers.discard(zygote)
        _unused_pids.discard(zygote.pid)
        if self.zygotes.get(runtime) is zygote:
            del self.zygotes[runtime]
            logger.warning("The %s fork server exited (%s)", runtime, zygote.process.returncode)
            self.paused_until[runtime] = asyncio.get_running_loop().time() + IDLE_DEATH_PAUSE
            self.changed.set()

    async def _watch(self, runtime, process):
        await process.wait()
        self._release(process)
        if process in self.idle[runtime]:
            # Dead before any run: something is wrong with the runtime, so stop respawning
            # it in a tight loop; runs start cold (and show the error) meanwhile. It leaves
            # the idle ones once this is logged (take() skips it meanwhile).
            stderr = (await process.stderr.read(4096)).decode(errors="replace").strip()
            logger.warning(
                "A warm %s process exited while idle (%s): %s", runtime, process.returncode, stderr
            )
            if process in self.idle[runtime]:
                self.idle[runtime].remove(process)
            self.paused_until[runtime] = asyncio.get_running_loop().time() + IDLE_DEATH_PAUSE
            self.changed.set()


def warm_pool():
    """The running loop's pool, made on first use; None when SNIPPET_WARM_POOL is 0."""
    for loop in [loop for loop in _pools if loop.is_closed()]:
        # Closed without cancelling its tasks: nothing will reap these any more.
        _pools.pop(loop).abandon()
    size = settings.SNIPPET_WARM_POOL
    if size <= 0:
        return None
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None or pool.keeper.done():
        pool = _pools[loop] = WarmPool(size)
    pool.size = size
    return pool


def warm_pids(runtime=None):
    """Host pids of the running loop's idle warm processes (of one runtime, if given)."""
    pool = _pools.get(asyncio.get_running_loop())
    return pool.pids(runtime) if pool else []


async def shutdown_pool():
    """Kill the running loop's warm processes; later runs start a new pool."""
    pool = _pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        pool.keeper.cancel()
        await asyncio.gather(pool.keeper, return_exceptions=True)
