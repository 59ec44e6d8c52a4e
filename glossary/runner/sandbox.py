"""Where a run's processes live: Bubblewrap, or the labelled UnsafeLocal of development.

On Linux every run goes through bubblewrap: new pid, network, ipc and uts namespaces, a
read-only view of the system and the Python installation, and a small tmpfs as its
working directory. Without bubblewrap, runs are refused unless DEBUG and
SNIPPET_ALLOW_UNSAFE_LOCAL are both on.
"""

import asyncio
import functools
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings

from . import child
from .limits import Limits

SANDBOX_DIR = "/sandbox"
# Each file is capped by RLIMIT_FSIZE; these caps bound the total, in memory, not on disk.
WORKDIR_BYTES = 32 * 1024 * 1024
TMP_BYTES = 16 * 1024 * 1024
# RLIMIT_NPROC counts processes per user and never binds root, so as root each run gets
# its own unprivileged uid, far above any real account (collisions only share the count).
RUN_UIDS = range(2_000_000_000, 2_010_000_000)


def base_python():
    """The interpreter without the project's virtualenv: standard library only."""
    return getattr(sys, "_base_executable", None) or sys.executable


def child_env(home, extra=None):
    """The whole environment of a run: nothing of the server's."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": home,
        "TMPDIR": "/tmp",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        # glibc reserves 64 MB of address space per thread arena; under RLIMIT_AS a
        # handful of threads would exhaust the memory limit without using it.
        "MALLOC_ARENA_MAX": "2",
        **(extra or {}),
    }


def _ancestors(path):
    """Parent directories of path, outermost first (bwrap would copy /root's 0700)."""
    return [str(parent) for parent in reversed(Path(path).parents) if str(parent) != "/"]


def bwrap_argv(command, read_only=(), files=(), limits=None, options=(), zygote=False):
    """The bubblewrap command line that runs command (an argv list) in a fresh sandbox.

    read_only: host paths bound read-only at the same place. files: (fd, path) pairs copied
    into the sandbox's working directory. options: more of bubblewrap's (mounts). zygote:
    for a fork server (root only): it stays root, may make namespaces and mounts, and
    sets each run's uid and limits itself (zygote.py).
    """
    limits = limits or Limits.from_settings()
    argv = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
    argv += ["--unshare-cgroup-try", "--die-with-parent", "--new-session"]
    if os.geteuid() == 0:
        # No user namespace: the child becomes a real unprivileged uid (setpriv below),
        # the only way RLIMIT_NPROC binds. setpriv needs these three to do it.
        argv += ["--cap-drop", "ALL"]
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", *(["CAP_SYS_ADMIN"] * zygote)):
            argv += ["--cap-add", cap]
    else:
        argv += ["--unshare-user", "--uid", "65534", "--gid", "65534", "--disable-userns"]
    argv += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    # Before the binds: a project checked out under /tmp must stay visible.
    argv += ["--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp"]
    for path in read_only:
        for parent in _ancestors(path):
            argv += ["--perms", "0755", "--dir", parent]
        argv += ["--ro-bind", str(path), str(path)]
    argv += ["--perms", "0777", "--size", str(WORKDIR_BYTES), "--tmpfs", SANDBOX_DIR]
    for fd, name in files:
        argv += ["--perms", "0666", "--file", str(fd), f"{SANDBOX_DIR}/{name}"]
    argv += [*options, "--chdir", SANDBOX_DIR, "--"]
    if zygote:
        return [*argv, *command]
    if os.geteuid() == 0:
        uid = str(random.choice(RUN_UIDS))
        argv += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        argv += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    return [*argv, "prlimit", *limits.prlimit_options(), "--", *command]


@functools.cache
def bubblewrap_works():
    """Whether a trivial command runs in the sandbox; probed once per process."""
    if not shutil.which("bwrap"):
        return False
    argv = bwrap_argv(["true"], read_only=[sys.base_prefix])
    try:
        probe = subprocess.run(argv, env=child_env(SANDBOX_DIR), capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def probed():
    """Whether available() has its answer already (and so does not block)."""
    return bubblewrap_works.cache_info().currsize > 0


def available():
    """The sandbox class runs use on this server: Bubblewrap, UnsafeLocal when explicitly
    allowed in development, or None. Blocking the first time: call it in a thread."""
    if sys.platform == "linux" and bubblewrap_works():
        return Bubblewrap
    if settings.DEBUG and settings.SNIPPET_ALLOW_UNSAFE_LOCAL:
        return UnsafeLocal
    return None


async def _spawn(argv, env, cwd=None, pass_fds=()):
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        start_new_session=True,
        pass_fds=pass_fds,
    )


class Bubblewrap:
    """One process in a sandbox of its own: it may be started before its run (warm)."""

    name = "bubblewrap"
    can_warm = True
    workdir = SANDBOX_DIR

    async def start(self, command, limits, read_only=(), files=None, env=None, options=()):
        """Start command; files: {name in the working directory: host path} to copy in;
        options: more of bubblewrap's."""
        opened = []
        try:
            for name, path in (files or {}).items():
                opened.append((os.open(path, os.O_RDONLY), name))
            argv = bwrap_argv(command, read_only, opened, limits, options)
            return await _spawn(
                argv, child_env(self.workdir, env), pass_fds=[fd for fd, _ in opened]
            )
        finally:
            for fd, _ in opened:  # bwrap holds its own copies once started
                os.close(fd)

    def status(self, returncode):
        """(exit code, signal) of the snippet. bwrap reports a child killed by signal N as
        exit code 128 + N, like a shell does."""
        if returncode < 0:
            return None, -returncode
        if returncode > 128 and returncode - 128 < signal.NSIG:
            return None, returncode - 128
        return returncode, None

    def close(self):
        """Nothing to clean up: the sandbox's tmpfs went with its processes."""


class UnsafeLocal:
    """No isolation at all, only resource limits and a working directory: development on
    machines without bubblewrap (macOS), and only when explicitly allowed."""

    name = "unsafe-local"
    can_warm = False

    def __init__(self):
        self.workdir = tempfile.mkdtemp(prefix="snippet-run-")

    async def start(self, command, limits, read_only=(), files=None, env=None, options=()):
        for name, path in (files or {}).items():
            shutil.copyfile(path, Path(self.workdir) / name)
        argv = child.limit_command(base_python(), limits.rlimits(), command)
        return await _spawn(argv, child_env(self.workdir, env), cwd=self.workdir)

    def status(self, returncode):
        return (None, -returncode) if returncode < 0 else (returncode, None)

    def close(self):
        shutil.rmtree(self.workdir, ignore_errors=True)
