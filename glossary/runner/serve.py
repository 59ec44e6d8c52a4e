"""The launcher of a server run: runs INSIDE the run's sandbox, standard library only.

    python -I serve.py start KIND [--bin-dir DIR] -- COMMAND...
        Copy KIND's template data directory (bound read-only at TEMPLATE_DIR) into the
        run's tmpfs (SERVER_DIR), start the server on a Unix socket there and nothing
        else, wait until it accepts connections, then exec COMMAND with the environment
        its clients need (PGHOST..., REDIS_URL, MYSQL_UNIX_PORT). The server is a child
        of COMMAND from then on and dies with the sandbox's pid namespace.

    python -I serve.py build KIND [--bin-dir DIR] < seed.sql
        Make KIND's data directory from scratch, run the SQL on stdin in it, stop the
        server cleanly and write the directory to stdout as a tar stream (the host caches
        it as the template).

Output of the servers goes to SERVER_DIR/server.log, never to the run's stdout.
"""

import argparse
import os
import resource
import shutil
import socket
import subprocess
import sys
import tarfile
import time

SERVER_DIR = "/server"
TEMPLATE_DIR = "/server-template"
DATA_DIR = f"{SERVER_DIR}/data"
LOG = f"{SERVER_DIR}/server.log"
READY_SECONDS = 20
POLL_SECONDS = 0.002


class ServerFailed(Exception):
    pass


class Server:
    """One kind of server: how to make its data directory, start it, and reach it."""

    def __init__(self, bin_dir):
        self.bin_dir = bin_dir

    def program(self, name):
        # Debian puts mariadbd in /usr/sbin and its other programs in /usr/bin.
        return shutil.which(name, path=f"{self.bin_dir}:/usr/bin:/usr/sbin") or name

    def initialise(self):
        """Create an empty data directory at DATA_DIR."""
        raise NotImplementedError

    def command(self):
        raise NotImplementedError

    def ready(self):
        """Whether the server accepts connections now."""
        raise NotImplementedError

    def seed(self, sql):
        raise NotImplementedError

    def stop(self, process):
        # SIGTERM: a clean shutdown (PostgreSQL's "smart" one), so the template needs no
        # crash recovery at each start.
        process.terminate()
        process.wait(READY_SECONDS)

    def client_env(self):
        raise NotImplementedError

    def start(self):
        """Start the server in the background; return its process once it is ready."""
        with open(LOG, "ab") as log:
            process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=SERVER_DIR
            )
        deadline = time.monotonic() + READY_SECONDS
        while not self.ready():
            if process.poll() is not None:
                raise ServerFailed(f"the server exited with status {process.returncode}")
            if time.monotonic() > deadline:
                process.kill()
                raise ServerFailed(f"the server was not ready within {READY_SECONDS} s")
            time.sleep(POLL_SECONDS)
        return process


def _socket_answers(path, hello=b"", expect=b""):
    """Whether something accepts a connection on the Unix socket path (and answers)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(1)
        try:
            client.connect(path)
            if hello:
                client.sendall(hello)
            return client.recv(64).startswith(expect) if expect else True
        except OSError:
            return False


class PostgreSQL(Server):
    user = "postgres"
    database = "postgres"

    def initialise(self):
        # 1 MB WAL segments instead of 16: each fits under the run's file size limit.
        initdb = [self.program("initdb"), "-D", DATA_DIR, "-U", self.user, "--no-sync"]
        initdb += ["--auth=trust", "--encoding=UTF8", "--no-locale", "--wal-segsize=1"]
        _check(initdb)

    def command(self):
        settings = {
            "listen_addresses": "",
            "unix_socket_directories": SERVER_DIR,
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "16MB",
            "max_connections": "20",
            "max_wal_size": "32MB",
            "min_wal_size": "2MB",
            "dynamic_shared_memory_type": "mmap",
            "huge_pages": "off",
        }
        argv = [self.program("postgres"), "-D", DATA_DIR]
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        return argv

    def ready(self):
        # The postmaster writes "ready" as the 8th line of its pid file once it accepts
        # connections (PostgreSQL 10+), which is cheaper to poll than a connection.
        try:
            with open(f"{DATA_DIR}/postmaster.pid") as pid_file:
                lines = pid_file.read().splitlines()
        except FileNotFoundError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready"

    def seed(self, sql):
        psql = [self.program("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"]
        _check(psql, input=sql, env={**os.environ, **self.client_env()})

    def client_env(self):
        return {
            "PGHOST": SERVER_DIR,
            "PGUSER": self.user,
            "PGDATABASE": self.database,
            "DATABASE_URL": f"postgresql://{self.user}@/{self.database}?host={SERVER_DIR}",
        }


class Redis(Server):
    socket = f"{SERVER_DIR}/redis.sock"

    def initialise(self):
        os.makedirs(DATA_DIR)

    def command(self):
        argv = [self.program("redis-server"), "--port", "0", "--unixsocket", self.socket]
        argv += ["--unixsocketperm", "700", "--dir", DATA_DIR, "--save", "", "--appendonly"]
        argv += ["no", "--daemonize", "no", "--databases", "16", "--loglevel", "warning"]
        memory, _ = resource.getrlimit(resource.RLIMIT_AS)
        if memory != resource.RLIM_INFINITY:
            # A clean "OOM command not allowed" long before malloc fails under RLIMIT_AS.
            argv += ["--maxmemory", str(memory // 2)]
        return argv

    def ready(self):
        return _socket_answers(self.socket, b"PING\r\n", b"+PONG")

    def client_env(self):
        return {
            "REDIS_SOCKET": self.socket,
            "REDIS_URL": f"unix://{self.socket}",
            "CELERY_BROKER_URL": f"redis+socket://{self.socket}",
        }


class MariaDB(Server):
    socket = f"{SERVER_DIR}/mysql.sock"
    # Small caches: mariadbd maps each whole at start, and all count against RLIMIT_AS.
    caches = ["--innodb-buffer-pool-size=8M", "--innodb-buffer-pool-size-max=8M"]
    caches += ["--innodb-log-file-size=4M", "--aria-pagecache-buffer-size=8M"]
    caches += ["--key-buffer-size=1M", "--innodb-open-files=200"]

    def initialise(self):
        install = [self.program("mariadb-install-db"), "--no-defaults", f"--datadir={DATA_DIR}"]
        # A password-less root: the run's uid has no name, so unix_socket login cannot work.
        install += ["--auth-root-authentication-method=normal", "--skip-test-db"]
        install += ["--skip-name-resolve", "--force", f"--tmpdir={SERVER_DIR}"]
        _check([*install, *self.caches])  # options it does not know go to mariadbd

    def command(self):
        argv = [self.program("mariadbd"), "--no-defaults", f"--datadir={DATA_DIR}"]
        argv += [f"--socket={self.socket}", "--skip-networking", f"--tmpdir={SERVER_DIR}"]
        argv += [f"--pid-file={SERVER_DIR}/mysql.pid", "--skip-log-bin", *self.caches]
        argv += ["--innodb-flush-log-at-trx-commit=0", "--innodb-use-native-aio=OFF"]
        argv += ["--performance-schema=OFF", "--skip-name-resolve", "--max-connections=20"]
        return argv

    def ready(self):
        # The socket appears once the server accepts connections.
        return _socket_answers(self.socket)

    def seed(self, sql):
        client = [self.program("mariadb"), "--no-defaults", f"--socket={self.socket}", "-uroot"]
        _check(client, input=sql)

    def client_env(self):
        # Clients (mariadb, PyMySQL, mysql-connector) log in as $USER by default.
        return {"MYSQL_UNIX_PORT": self.socket, "USER": "root"}


SERVERS = {"postgresql": PostgreSQL, "redis": Redis, "mysql": MariaDB}


def _check(argv, input=b"", env=None):
    result = subprocess.run(argv, input=input, capture_output=True, env=env)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace").strip()
        raise ServerFailed(f"{os.path.basename(argv[0])} failed: {output[-2000:]}")


def name_the_user():
    """Give the run's uid a name in the sandbox's /etc: initdb and postgres ask for it."""
    uid, gid = os.getuid(), os.getgid()
    with open("/etc/passwd", "w") as passwd:
        passwd.write(f"snippet:x:{uid}:{gid}:snippet:/sandbox:/bin/sh\n")
    with open("/etc/group", "w") as group:
        group.write(f"snippet:x:{gid}:\n")


def prepare(server):
    """Start the run's server from its template; the environment its clients need."""
    name_the_user()
    if os.path.isdir(TEMPLATE_DIR):
        # Contents only, no metadata: a third faster for PostgreSQL's thousand files.
        shutil.copytree(TEMPLATE_DIR, DATA_DIR, symlinks=True, copy_function=shutil.copyfile)
    else:
        server.initialise()
    os.chmod(DATA_DIR, 0o700)  # PostgreSQL refuses a data directory others may read
    server.start()
    env = {**os.environ, **server.client_env()}
    if server.bin_dir:
        env["PATH"] = f"{server.bin_dir}:{env['PATH']}"  # psql, pg_dump, redis-cli...
    return env


def start(server, command):
    os.execvpe(command[0], command, prepare(server))


def build(server, sql):
    name_the_user()
    server.initialise()
    process = server.start()
    try:
        if sql.strip():
            server.seed(sql)
    finally:
        server.stop(process)
    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as archive:
        archive.add(DATA_DIR, arcname=".")


FAILURES = (ServerFailed, OSError, subprocess.TimeoutExpired)


def failure(kind, error):
    """What the run shows when its server could not start: the error, the log's end."""
    try:
        with open(LOG, errors="replace") as log:
            tail = log.read()[-2000:]
    except OSError:
        tail = ""
    return f"The run's {kind} server could not start: {error}\n{tail}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "build"])
    parser.add_argument("kind", choices=sorted(SERVERS))
    parser.add_argument("--bin-dir", default="")
    argv = sys.argv[1:] if argv is None else argv
    # Everything after "--" is the command, options and all.
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.command = argv[split + 1 :]
    server = SERVERS[args.kind](args.bin_dir)
    try:
        if args.action == "build":
            build(server, sys.stdin.buffer.read())
        elif not args.command:
            parser.error("start needs the command to run once the server is ready")
        else:
            start(server, args.command)
    except FAILURES as error:
        print(failure(args.kind, error), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
