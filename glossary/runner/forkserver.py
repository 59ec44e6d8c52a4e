"""Fork servers: a zygote per runtime (zygote.py), so a run costs a fork, not a sandbox
and an interpreter started from nothing.

The zygote lives in a sandbox made like a run's, with the runtime imported; each run it
forks gets new namespaces, fresh tmpfs mounts, its own uid and limits and, for a server
runtime, its own server (see zygote.py). Only root can give the zygote what it needs to
make those sandboxes; other users' runs each start a bubblewrap of their own.

    server = await ForkServer.start(runtime, given)
    process = await server.fork(limits)     # stdin, stdout, stderr, pid, wait()
"""

import asyncio
import json
import logging
import os
import random
import signal
import socket
import subprocess
from pathlib import Path

from django.conf import settings

from . import child, serve
from .sandbox import RUN_UIDS, SANDBOX_DIR, bwrap_argv, child_env
from .supervise import kill

ZYGOTE = Path(__file__).with_name("zygote.py")
# What the zygote imports from its directory, bound read-only into its sandbox.
RUNNER_FILES = [ZYGOTE, Path(child.__file__), Path(serve.__file__)]
READY_SECONDS = 60

logger = logging.getLogger(__name__)


class ForkServerFailed(Exception):
    pass


def usable():
    """Whether this server starts fork servers: SNIPPET_FORK_SERVERS, and root (see the
    docstring)."""
    return settings.SNIPPET_FORK_SERVERS and os.geteuid() == 0


class ForkServer:
    """A runtime's zygote, started for one event loop and one version of what runs get."""

    def __init__(self, process, control, given, name):
        self.process = process
        self.control = control
        self.given = given
        self.name = name
        self.lock = asyncio.Lock()
        self.loop = asyncio.get_running_loop()
        self.exited = self.loop.create_future()
        self.pidfd = os.pidfd_open(process.pid)
        self.loop.add_reader(self.pidfd, self._reap)
        self.stderr = process.stderr.fileno()
        os.set_blocking(self.stderr, False)
        self.loop.add_reader(self.stderr, self._read_stderr)
        self.last_words, self.partial = "", b""  # stderr until it is ready; a line's start

    @classmethod
    async def start(cls, runtime, given):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [runtime.interpreter(), "-u", "-I", "-B", str(ZYGOTE), str(ZYGOTE.parent)]
        command += ["--control", str(theirs.fileno())]
        for name in given.files:
            command += ["--file", name]
        command += [*runtime.zygote_options(), "--", *runtime.warm_up()]
        opened = []
        try:
            for name, path in given.files.items():
                opened.append((os.open(path, os.O_RDONLY), name))
            argv = bwrap_argv(
                command,
                [*runtime.read_only(), *map(str, RUNNER_FILES)],
                opened,
                options=given.sandbox_options,
                zygote=True,
            )
            # A plain Popen, watched through a pidfd: no asyncio transport, so a loop
            # that closes first leaves nothing behind to be closed (see dispose()).
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=child_env(SANDBOX_DIR, runtime.env(SANDBOX_DIR)),
                start_new_session=True,
                pass_fds=[theirs.fileno(), *(fd for fd, _ in opened)],
            )
        finally:
            theirs.close()
            for fd, _ in opened:
                os.close(fd)
        ours.setblocking(False)
        server = cls(process, ours, given, runtime.name)
        try:
            async with asyncio.timeout(READY_SECONDS):
                ready = await server._receive()
        except (TimeoutError, OSError):
            ready = None
        if ready is None or ready[0] != b"ready":
            await server.close()
            raise ForkServerFailed(
                f"The {runtime.name} fork server did not start: {server.last_words.strip()}"
            )
        server.last_words = None  # from now on each line is logged as it comes
        return server

    async def fork(self, spawn_limits, cpu_seconds):
        """A new run's process, waiting for its code; OSError if the zygote is gone.

        spawn_limits: its resource limits; cpu_seconds: the snippet's CPU budget, to
        which child.receive() lowers RLIMIT_CPU once the code arrives.
        """
        # Shielded: a request the zygote has taken must have its answer read, else the
        # next request would read it; a run cancelled meanwhile is killed once forked.
        forking = asyncio.ensure_future(self._fork(spawn_limits, cpu_seconds))
        try:
            return await asyncio.shield(forking)
        except asyncio.CancelledError:
            forking.add_done_callback(_kill_unclaimed)
            raise

    async def _fork(self, spawn_limits, cpu_seconds):
        pipes = [os.pipe() for _ in range(4)]  # stdin, stdout, stderr, exit status
        theirs = [pipes[0][0], pipes[1][1], pipes[2][1], pipes[3][1]]
        ours = [pipes[0][1], pipes[1][0], pipes[2][0], pipes[3][0]]
        request = {
            "uid": random.choice(RUN_UIDS),
            "rlimits": spawn_limits.rlimits(),
            "cpu_seconds": cpu_seconds,
        }
        try:
            async with self.lock:
                socket.send_fds(self.control, [json.dumps(request).encode()], theirs)
                reply = await self._receive()
        except BaseException:
            for fd in ours:
                os.close(fd)
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        if reply is None or reply[0] != b"ok" or len(reply[1]) != 1:
            for fd in [*ours, *(reply[1] if reply else [])]:
                os.close(fd)
            raise ConnectionError("the fork server is gone")
        return await ForkedProcess.open(reply[1][0], *ours)

    async def _receive(self):
        """(message, fds) from the zygote, or None once it is gone."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                message, fds, _flags, _address = socket.recv_fds(self.control, 64, 1)
            except BlockingIOError:
                readable = loop.create_future()
                loop.add_reader(self.control, readable.set_result, None)
                try:
                    await readable
                finally:
                    loop.remove_reader(self.control)
                continue
            return (message, fds) if message else None

    def _read_stderr(self):
        """Log what the zygote writes, a line at a time; keep it until it is ready.
        Whether it read anything (False at the pipe's end, or with nothing to read)."""
        try:
            data = os.read(self.stderr, 4096)
        except BlockingIOError:
            return False
        if data:
            *lines, self.partial = (self.partial + data).split(b"\n")
        else:  # the end: its last line may be unfinished
            self.loop.remove_reader(self.stderr)
            lines, self.partial = [self.partial] if self.partial else [], b""
        for line in lines:
            text = line.decode(errors="replace").rstrip()
            if self.last_words is None:
                logger.warning("The %s fork server: %s", self.name, text)
            else:
                self.last_words += text + "\n"
        return bool(data)

    def _reap(self):
        if self.process.poll() is not None and not self.exited.done():
            self.loop.remove_reader(self.pidfd)
            self.exited.set_result(self.process.returncode)

    @property
    def pid(self):
        return self.process.pid

    def kill(self):
        """Kill the zygote's sandbox, and with it every run it forked."""
        if self.process.returncode is None:  # once reaped, its pid may be another's
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.control.close()

    async def wait(self):
        """Its exit status, once it has exited (its runs with it)."""
        return await asyncio.shield(self.exited)

    async def close(self):
        self.kill()
        await self.wait()
        self.dispose()

    def dispose(self):
        """Kill it, reap it and close its descriptors without waiting on the event loop,
        which may have closed already."""
        if self.pidfd is None:
            return
        self.kill()
        self.process.wait()  # at once: SIGKILL takes its whole process group
        if not self.loop.is_closed():
            while self._read_stderr():
                pass
            self.loop.remove_reader(self.pidfd)
            self.loop.remove_reader(self.stderr)
            if not self.exited.done():
                self.exited.set_result(self.process.returncode)
        os.close(self.pidfd)
        self.process.stderr.close()
        self.pidfd = None


class ForkedProcess:
    """A forked run as the runner uses a process (asyncio.subprocess.Process's parts):
    pid, the host pid of the run's init and its process group; stdin, stdout, stderr;
    returncode, as bubblewrap reports one (128 + N for signal N); wait()."""

    def __init__(self, pid, pidfd, stdin, stdout, stderr, status):
        self.pid, self.pidfd = pid, pidfd
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.returncode = None
        self._status_fd, self._status = status, b""
        self._exited = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, pidfd, stdin_fd, stdout_fd, stderr_fd, status_fd):
        try:
            pid = _host_pid(pidfd)
        except OSError:
            for fd in (pidfd, stdin_fd, stdout_fd, stderr_fd, status_fd):
                os.close(fd)
            raise
        loop = asyncio.get_running_loop()
        streams = []
        for fd in (stdout_fd, stderr_fd):
            reader = asyncio.StreamReader(loop=loop)
            protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
            await loop.connect_read_pipe(lambda protocol=protocol: protocol, open(fd, "rb", 0))
            streams.append(reader)
        transports = [reader._transport for reader in streams]
        transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.streams.FlowControlMixin(loop), open(stdin_fd, "wb", 0)
        )
        stdin = asyncio.StreamWriter(transport, protocol, None, loop)
        process = cls(pid, pidfd, stdin, *streams, status_fd)
        process.transports = [*transports, transport]
        os.set_blocking(status_fd, False)
        loop.add_reader(status_fd, process._read_status)
        return process

    def _read_status(self):
        try:
            data = os.read(self._status_fd, 64)
        except BlockingIOError:
            return
        self._status += data
        if data:
            return
        asyncio.get_running_loop().remove_reader(self._status_fd)
        os.close(self._status_fd)
        os.close(self.pidfd)
        # No status: the init itself was killed, by the runner or with its zygote.
        self.returncode = int(self._status) if self._status.strip() else -signal.SIGKILL
        self._exited.set_result(self.returncode)

    async def wait(self):
        return await asyncio.shield(self._exited)

    def close(self):
        """Close its pipes now, for a process killed unread as its loop ends."""
        for transport in self.transports:
            transport.close()


def _kill_unclaimed(forking):
    if not forking.cancelled() and forking.exception() is None:
        kill(forking.result())


def _host_pid(pidfd):
    with open(f"/proc/self/fdinfo/{pidfd}") as info:
        for line in info:
            if line.startswith("Pid:") and int(line.split()[1]) > 0:
                return int(line.split()[1])
    # -1: it is gone already; never a pid that kill() would take for a whole group.
    raise OSError("the forked run is gone (or this kernel's pidfds name no pid)")
