"""A runtime's fork server: runs INSIDE a sandbox of its own, standard library only.

    python -u -I -B zygote.py CHILD_DIR --control FD [--file NAME]...
        [--server KIND --bin-dir DIR] -- [WARM_UP ARGS...]

FD is the control socket (forkserver.py); CHILD_DIR holds child.py and serve.py.

bubblewrap starts it with a run's view of the system (the same binds, tmpfs and
environment) but keeps it root with the capabilities to make sandboxes of its own. It
does the runtime's expensive part once (the interpreter, the child program, Django and
the models, a database client), holds no secret and never runs a reader's code. For
each request it forks a run:

    the run's init: pid 1 of new pid, mount, network, ipc, uts and cgroup namespaces, with
        a fresh instance of every tmpfs the zygote's sandbox has (same size and mode), a
        fresh /proc and /dev/pts, the given files copied in, and no capabilities;
    the run's process, below it: the run's uid and resource limits; it starts the run's
        own server if the runtime has one, connects Django if it is the django runtime,
        then waits for the code and runs it (child.receive).

The init writes the run's exit status (as bubblewrap reports one: 128 + N for signal N)
to the status pipe and exits, which kills whatever is left in its pid namespace. The zygote's
own memory is shared copy-on-write, never written back: a run changes nothing in it.
"""

import argparse
import ctypes
import gc
import json
import os
import select
import socket
import stat
import sys

NOBODY = 65534
# Mount flags (linux/mount.h): ctypes, since the os module has no mount(2).
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 38, 24
# What bubblewrap makes read-only in a sandbox's /proc.
PROC_COVERS = ("sys", "sysrq-trigger", "irq", "bus")
NAMESPACES = os.CLONE_NEWNS | os.CLONE_NEWNET | os.CLONE_NEWIPC | os.CLONE_NEWUTS
NAMESPACES |= os.CLONE_NEWCGROUP
__runner__ = True  # child.receive() hides this module's frames from tracebacks

libc = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def mount(source, target, fstype=None, flags=0, data=None):
    encode = lambda text: None if text is None else text.encode()  # noqa: E731
    _check(libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)), target)


def tmpfs_mounts():
    """(path, options, binds) of each writable tmpfs of this sandbox: its working directory,
    /tmp and a server's directories, not the root or /dev that bubblewrap builds. binds: the
    outermost other mounts below it (a site installed under /tmp, say), which a run's fresh
    tmpfs must not hide."""
    found, others = [], []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields, _, rest = line.partition(" - ")
            fstype, _source, options = rest.split()
            path = fields.split()[4]
            if fstype == "tmpfs" and path not in ("/", "/dev"):
                kept = [opt for opt in options.split(",") if opt.split("=")[0] in ("size", "mode")]
                found.append((path, ",".join(kept)))
            else:
                others.append(path)
    below = lambda path, top: path.startswith(os.path.join(top, ""))  # noqa: E731
    tmpfs = []
    for path, options in found:
        binds = list(dict.fromkeys(other for other in others if below(other, path)))
        binds = [bind for bind in binds if not any(below(bind, outer) for outer in binds)]
        tmpfs.append((path, options, binds))
    return tmpfs


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("child_dir")
    parser.add_argument("--control", type=int, required=True)
    parser.add_argument("--file", action="append", default=[])
    parser.add_argument("--server", default="")
    parser.add_argument("--bin-dir", default="")
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.warm_up = argv[split + 1 :]
    return args


def clear_capabilities():
    """Empty every capability set that setresuid() leaves (the inheritable one)."""
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    _check(libc.capset(header, (ctypes.c_uint32 * 6)()), "capset")


class Zygote:
    def __init__(self, args):
        self.workdir = os.getcwd()
        self.files = {}
        for name in args.file:  # copied into the zygote's working directory by bwrap
            with open(name, "rb") as given:
                self.files[name] = given.read()
        self.tmpfs = tmpfs_mounts()
        sys.path.insert(0, args.child_dir)
        import child
        import serve

        del sys.path[0], sys.modules["child"], sys.modules["serve"]  # not a snippet's to import
        self.child, self.serve = child, serve
        self.server_kind = args.server
        self.server = serve.SERVERS[args.server](args.bin_dir) if args.server else None
        self.warm_up = args.warm_up
        child.prepare()
        if self.warm_up:
            child.FORK_WARM_UPS[self.warm_up[0]][0](*self.warm_up[1:])
        self.control = socket.socket(fileno=args.control)

    def serve_requests(self):
        """Answer spawn requests until the control socket closes. Returns only in a run's
        process: its CPU seconds, for child.receive()."""
        gc.freeze()  # a run's collections leave the zygote's objects (and pages) alone
        self.control.sendall(b"ready")
        while True:
            self.reap()
            if not select.select([self.control], [], [], 1.0)[0]:
                continue
            try:
                message, fds, _flags, _address = socket.recv_fds(self.control, 65536, 4)
            except ConnectionError:
                message, fds = b"", []
            if not message:
                self.wait_for_runs()
                sys.exit(0)
            request = json.loads(message)
            pid = self.fork_run(request, fds)
            if pid is None:
                return request["cpu_seconds"]
            for fd in fds:
                os.close(fd)
            pidfd = os.pidfd_open(pid)
            socket.send_fds(self.control, [b"ok"], [pidfd])
            os.close(pidfd)

    def reap(self):
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass

    def wait_for_runs(self):
        try:
            while True:
                os.wait()
        except ChildProcessError:
            pass

    def fork_run(self, request, fds):
        """Fork the run's init in a new pid namespace: its pid, or None in the run's process."""
        own_pid_namespace = os.open("/proc/self/ns/pid", os.O_RDONLY)
        try:
            os.unshare(os.CLONE_NEWPID)
            pid = os.fork()
            if pid:
                os.setns(own_pid_namespace, os.CLONE_NEWPID)  # the next run gets a new one
                return pid
        finally:
            os.close(own_pid_namespace)
        try:
            self.be_init(request, fds)
            return None
        except BaseException as error:  # never back into the zygote's loop
            os.write(2, f"The run's sandbox could not be made: {error}\n".encode())
            os._exit(70)

    def be_init(self, request, fds):
        stdin, stdout, stderr, status = fds
        self.control.detach()  # closed below; the socket object must not close it again
        os.setsid()  # the host kills the run by this process group
        for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
            os.dup2(fd, target)
        os.closerange(3, status)
        os.closerange(status + 1, 1 << 16)
        self.make_sandbox()
        pid = os.fork()
        if pid == 0:
            os.close(status)
            return self.be_the_run(request)  # back up to __main__, to run the code
        os.closerange(0, 3)
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
        clear_capabilities()
        while True:
            try:
                child, wait_status = os.waitpid(-1, 0)
            except ChildProcessError:
                os._exit(0)
            if child == pid:
                code = os.waitstatus_to_exitcode(wait_status)
                os.write(status, f"{128 - code if code < 0 else code}\n".encode())
                os._exit(0)

    def make_sandbox(self):
        os.unshare(NAMESPACES)
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        for path, options, binds in self.tmpfs:
            # Binds below the zygote's tmpfs are carried onto the fresh one, read-only; the
            # old one then stays covered (a detached mount could not be bound from).
            kept = [(bind, os.open(bind, os.O_PATH)) for bind in binds]
            if not kept:
                libc.umount2(path.encode(), MNT_DETACH)
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, options)
            for bind, fd in kept:
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    os.makedirs(bind, exist_ok=True)
                else:
                    os.makedirs(os.path.dirname(bind), exist_ok=True)
                    os.close(os.open(bind, os.O_CREAT | os.O_WRONLY, 0o444))
                mount(f"/proc/self/fd/{fd}", bind, None, MS_BIND | MS_REC)
                flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
                mount(None, bind, None, flags)
                os.close(fd)
        _check(libc.umount2(b"/proc", MNT_DETACH), "/proc")
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        for name in PROC_COVERS:
            path = f"/proc/{name}"
            try:
                mount(path, path, None, MS_BIND | MS_REC)
                mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
            except OSError:
                pass
        libc.umount2(b"/dev/pts", MNT_DETACH)
        pts = "newinstance,ptmxmode=0666,mode=620"
        mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, pts)
        for name, content in self.files.items():
            path = os.path.join(self.workdir, name)
            with open(path, "wb") as copy:
                copy.write(content)
            os.chmod(path, 0o666)
        _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        with open("/proc/sys/kernel/cap_last_cap") as last:
            for cap in range(int(last.read()) + 1):
                _check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "drop capabilities")

    def be_the_run(self, request):
        """The run's process: its uid and limits, its server; returns its CPU seconds."""
        import resource

        uid = request["uid"]
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # and with root gone, every capability but these:
        clear_capabilities()
        for name, soft, hard in request["rlimits"]:
            resource.setrlimit(getattr(resource, name), (soft, hard))
        os.chdir(self.workdir)  # the fresh one mounted over the zygote's
        if self.server:
            try:
                os.environ.update(self.serve.prepare(self.server))
            except self.serve.FAILURES as error:
                sys.stderr.write(self.serve.failure(self.server_kind, error))
                os._exit(1)
        if self.warm_up and (per_run := self.child.FORK_WARM_UPS[self.warm_up[0]][1]):
            per_run()
        return request["cpu_seconds"]


def run(code, namespace):
    """Run the snippet, then end as Python would (its threads joined, its atexit
    callbacks called, output flushed) but without tearing the interpreter down: that
    would touch, and so copy, every page it shares with the zygote, only to free them
    (15 ms of a print(1) run's 22 ms, measured)."""
    import atexit
    import threading

    try:
        exec(code, namespace)
        status = 0
    except SystemExit as exit:
        if exit.code is None or isinstance(exit.code, int):
            status = exit.code or 0
        else:
            print(exit.code, file=sys.stderr)
            status = 1
    except BaseException:
        sys.excepthook(*sys.exc_info())
        status = 1
    threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 120  # as Python does when it cannot flush at exit
    os._exit(status)


if __name__ == "__main__":
    zygote = Zygote(parse(sys.argv[1:]))
    cpu_seconds = zygote.serve_requests()
    run(*zygote.child.receive(cpu_seconds))
