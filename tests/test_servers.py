"""Private database servers inside a run's sandbox: real bubblewrap, real servers.

Each run starts its own PostgreSQL, Redis or MariaDB on a Unix socket in its tmpfs; these
tests check what a snippet can do with it and, above all, what it cannot.
"""

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from glossary import runner
from glossary.runner import serve
from glossary.runner.servers import (
    SERVERS,
    PostgreSQL,
    Server,
    TemplateBuildError,
    cache_dir,
    sandbox_python,
)
from tests.conftest import require

KINDS = sorted(SERVERS)
# Where the host's own PostgreSQL, MariaDB and Redis listen (Debian's defaults).
HOST_SOCKETS = [
    "/var/run/postgresql/.s.PGSQL.5432",
    "/run/mysqld/mysqld.sock",
    "/run/redis/redis-server.sock",
]
HOST_PORTS = [5432, 3306, 6379]


def usable(kind):
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    require(SERVERS[kind].available(), SERVERS[kind].missing() or "")
    return SERVERS[kind]


def sandbox(kind, code, limits=None):
    """argv and uid of a run of kind whose snippet is code (None: the uid is ours)."""
    argv = usable(kind).sandbox_argv([str(sandbox_python()), "-c", textwrap.dedent(code)], limits)
    uids = [arg.split("=")[1] for arg in argv if arg.startswith("--reuid=")]
    return argv, int(uids[0]) if uids else None


def own_uid(uid):
    """Only as root does each run get a uid of its own, whose processes and files we count."""
    require(uid is not None, "runs share the user's uid when not run as root")
    return uid


def run(kind, code, limits=None):
    argv, _ = sandbox(kind, code, limits)
    env = runner.child_env(runner.SANDBOX_DIR)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def start(kind, code, limits=None):
    """A run in the background, its own process group; and its uid."""
    argv, uid = sandbox(kind, code, limits)
    process = subprocess.Popen(
        argv,
        env=runner.child_env(runner.SANDBOX_DIR),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    return process, uid


def processes_of(uid):
    """Pids of the host's processes running as uid."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                pids.append(int(entry.name))
        except FileNotFoundError:
            pass
    return pids


def files_of(uid):
    """Files owned by uid in the host's /tmp or the template cache."""
    paths = [*Path("/tmp").iterdir(), *cache_dir().rglob("*")]
    owned = []
    for path in paths:
        try:
            if path.lstat().st_uid == uid:
                owned.append(path)
        except FileNotFoundError:
            pass
    return owned


def gone(uid, seconds=5):
    """Whether every process of uid has ended within seconds."""
    deadline = time.monotonic() + seconds
    while processes_of(uid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def limits(**changes):
    return dataclasses.replace(SERVERS["postgresql"].run_limits(), **changes)


CONNECT = {
    "postgresql": "import psycopg\nconnection = psycopg.connect(autocommit=True)\n",
    "redis": "import os, redis\nconnection = redis.Redis.from_url(os.environ['REDIS_URL'])\n",
    "mysql": (
        "import os, pymysql\nconnection = pymysql.connect("
        "unix_socket=os.environ['MYSQL_UNIX_PORT'], database='learn', autocommit=True)\n"
    ),
}


# What a snippet can do ---------------------------------------------------------------


def test_psycopg_connects_without_arguments_to_the_seeded_shop():
    result = run(
        "postgresql",
        CONNECT["postgresql"] + "print(connection.execute("
        "'SELECT name FROM customer ORDER BY id').fetchall())",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "[('Ada',), ('Grace',), ('Edgar',)]\n"


def test_psql_and_pg_dump_work_inside_the_run():
    result = run(
        "postgresql",
        """
        import subprocess
        subprocess.run(["psql", "-Atc", "SELECT count(*) FROM product"], check=True)
        subprocess.run(["pg_dump", "--schema-only", "-t", "product"], check=True)
        """,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("4\n")
    assert "CREATE TABLE public.product" in result.stdout


def test_redis_clients_reach_the_runs_own_redis_by_url():
    result = run("redis", CONNECT["redis"] + "connection.set('k', 'v'); print(connection.get('k'))")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "b'v'\n"


def test_sqlalchemy_and_celery_find_their_server_in_the_environment():
    postgres = run(
        "postgresql",
        """
        import os, sqlalchemy
        url = os.environ["DATABASE_URL"].replace("postgresql:", "postgresql+psycopg:")
        with sqlalchemy.create_engine(url).connect() as connection:
            print(connection.execute(sqlalchemy.text("SELECT count(*) FROM product")).scalar())
        """,
    )
    redis = run(
        "redis",
        """
        import celery
        with celery.Celery().connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)
            print(connection.as_uri())
        """,
    )

    assert postgres.stdout == "4\n", postgres.stderr
    assert redis.stdout == "redis+socket:///server/redis.sock\n", redis.stderr


def test_redis_cli_works_inside_the_run():
    result = run(
        "redis",
        "import os\nos.execlp('redis-cli', 'redis-cli', '-s', os.environ['REDIS_SOCKET'], 'ping')",
    )

    assert result.stdout == "PONG\n", result.stderr


def test_mariadb_clients_reach_the_runs_own_server_through_mysql_unix_port():
    result = run(
        "mysql",
        CONNECT["mysql"]
        + textwrap.dedent("""
        cursor = connection.cursor()
        cursor.execute("CREATE TABLE member (name VARCHAR(20))")
        cursor.execute("INSERT INTO member VALUES ('Rosa')")
        cursor.execute("SELECT name FROM member")
        print(cursor.fetchall())
        """),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "(('Rosa',),)\n"


# What it cannot -----------------------------------------------------------------------


# Prints each of the host's database endpoints it can connect to.
REACH = f"""
import socket
for path in {HOST_SOCKETS!r}:
    with socket.socket(socket.AF_UNIX) as client:
        try:
            client.connect(path)
            print(path)
        except OSError:
            pass
for port in {HOST_PORTS!r}:
    with socket.socket() as client:
        client.settimeout(1)
        try:
            client.connect(("127.0.0.1", port))
            print(port)
        except OSError:
            pass
"""


@pytest.mark.parametrize("kind", KINDS)
def test_a_run_reaches_none_of_the_hosts_servers(kind):
    on_host = subprocess.run([sys.executable, "-c", REACH], capture_output=True, text=True)
    require(on_host.stdout, "no database server runs on this host to try to reach")

    result = run(kind, REACH + "print('done')")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"


def test_host_programs_and_files_from_sql_stay_inside_the_sandbox():
    marker = f"/tmp/servers-escape-{uuid.uuid4().hex}"
    result = run(
        "postgresql",
        CONNECT["postgresql"]
        + f"""
import os
connection.execute("COPY (SELECT 1) TO PROGRAM 'touch {marker}-program'")
connection.execute("COPY (SELECT 1) TO '{marker}-copy'")
oid = connection.execute("SELECT lo_from_bytea(0, 'x')").fetchone()[0]
connection.execute("SELECT lo_export(%s, '{marker}-lo')", [oid])
print(sorted(name for name in os.listdir("/tmp") if name.startswith("servers-escape")))
""",
    )

    assert result.returncode == 0, result.stderr
    name = Path(marker).name
    assert result.stdout == f"{[f'{name}-copy', f'{name}-lo', f'{name}-program']}\n"
    assert not list(Path("/tmp").glob(f"{name}*"))


def test_a_server_backend_gets_no_more_memory_than_the_run():
    result = run(
        "postgresql",
        CONNECT["postgresql"]
        + """
connection.execute("SET work_mem = '2GB'")
try:
    connection.execute("SELECT array_agg(repeat('x', 100)) FROM generate_series(1, 20000000)")
except Exception as error:
    print(type(error).__name__, error)
""",
        limits(memory_mb=384),
    )

    assert result.returncode == 0, result.stderr
    assert "out of memory" in result.stdout


def test_redis_refuses_data_beyond_the_runs_memory_limit():
    result = run(
        "redis",
        CONNECT["redis"]
        + """
try:
    for n in range(1000):
        connection.set(n, bytes(1024 * 1024))
except redis.ResponseError as error:
    print(n, error)
""",
        limits(memory_mb=256),
    )

    assert result.returncode == 0, result.stderr
    stored, _, message = result.stdout.partition(" ")
    assert int(stored) < 256
    assert message == "command not allowed when used memory > 'maxmemory'.\n"


FILL = """
try:
    connection.execute(
        "CREATE TABLE big AS SELECT repeat('x', 500) AS x FROM generate_series(1, {rows})"
    )
except Exception as error:
    print(error)
"""


def test_a_server_cannot_write_files_beyond_the_runs_file_size_limit():
    result = run(
        "postgresql", CONNECT["postgresql"] + FILL.format(rows=40_000), limits(file_size_kb=4096)
    )

    assert result.returncode == 0, result.stderr
    assert "File too large" in result.stdout


def test_a_servers_data_cannot_outgrow_the_runs_tmpfs():
    class Small(PostgreSQL):
        tmpfs_mb = 48  # the template takes about 30

    require(Small().available(), "PostgreSQL is not installed")
    argv = Small().sandbox_argv(
        [str(sandbox_python()), "-c", CONNECT["postgresql"] + FILL.format(rows=100_000)],
        limits(file_size_kb=1024 * 1024, cpu_seconds=20),
    )
    env = runner.child_env(runner.SANDBOX_DIR)
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert "No space left on device" in result.stdout


def test_a_server_backend_is_held_to_the_runs_cpu_limit():
    started = time.monotonic()
    result = run(
        "postgresql",
        CONNECT["postgresql"]
        + """
try:
    connection.execute("DO $$ BEGIN LOOP END LOOP; END $$")
except Exception as error:
    print(type(error).__name__)
""",
        limits(cpu_seconds=1, wall_seconds=30),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "OperationalError\n"  # its backend was killed by SIGXCPU
    assert time.monotonic() - started < 15


def test_a_server_cannot_start_more_processes_than_the_run_may():
    # RLIMIT_NPROC counts the uid's processes: a run has a uid of its own only as root.
    require(os.geteuid() == 0, "runs share the user's uid when not run as root")
    result = run(
        "postgresql",
        """
import psycopg
connections = []
try:
    for _ in range(19):
        connections.append(psycopg.connect())
except psycopg.OperationalError as error:
    print(len(connections), error)
""",
        limits(processes=12),
    )

    assert result.returncode == 0, result.stderr
    opened, _, message = result.stdout.partition(" ")
    assert int(opened) < 12
    assert "could not fork" in message


@pytest.mark.parametrize("kind", KINDS)
def test_two_runs_never_see_each_others_data(kind):
    write = {
        "postgresql": "connection.execute(\"INSERT INTO customer (name) VALUES ('secret')\")",
        "redis": "connection.set('secret', 'secret')",
        "mysql": 'connection.cursor().execute("CREATE TABLE secret (x INT)")',
    }[kind]
    read = {
        "postgresql": "print(connection.execute('SELECT name FROM customer').fetchall())",
        "redis": "print(connection.keys())",
        "mysql": "c = connection.cursor(); c.execute('SHOW TABLES'); print(c.fetchall())",
    }[kind]
    first, _ = start(
        kind, CONNECT[kind] + write + "\nprint('written', flush=True)\nimport time; time.sleep(30)"
    )
    try:
        assert first.stdout.readline() == "written\n", first.stderr.read()
        second = run(kind, CONNECT[kind] + read)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()

    assert second.returncode == 0, second.stderr
    assert "secret" not in second.stdout


def test_a_server_that_cannot_start_says_why_on_stderr():
    result = run("postgresql", "print('unreachable')", limits(memory_mb=64))

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("The run's postgresql server could not start: ")


# Nothing left behind ------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_nothing_is_left_after_a_normal_end(kind):
    argv, uid = sandbox(kind, CONNECT[kind] + "print('connected')")
    result = subprocess.run(argv, env=runner.child_env(runner.SANDBOX_DIR), capture_output=True)

    assert result.stdout == b"connected\n", result.stderr
    assert gone(own_uid(uid))
    assert files_of(uid) == []


@pytest.mark.parametrize("kind", KINDS)
def test_killing_the_sandbox_ends_its_server(kind):
    process, uid = start(
        kind, CONNECT[kind] + "print('connected', flush=True)\nimport time; time.sleep(60)"
    )
    assert process.stdout.readline() == "connected\n", process.stderr.read()
    assert len(processes_of(own_uid(uid))) >= 2  # the snippet and its server

    os.killpg(process.pid, signal.SIGKILL)  # what a timeout or a cancel does
    process.wait()

    assert gone(uid)
    assert files_of(uid) == []


def test_killing_the_server_with_sigkill_ends_the_run_cleanly():
    process, uid = start(
        "postgresql",
        """
import os, signal, time
with open("/server/data/postmaster.pid") as pid_file:
    os.kill(int(pid_file.readline()), signal.SIGKILL)
print("killed", flush=True)
time.sleep(1)
""",
    )
    out, err = process.communicate(timeout=30)

    assert out == "killed\n", err
    assert gone(own_uid(uid))
    assert files_of(uid) == []


# Templates and availability -------------------------------------------------------------


def test_a_template_is_built_once_and_kept_private(settings, tmp_path):
    usable("postgresql")
    settings.SNIPPET_CACHE_DIR = tmp_path / "cache"
    server = PostgreSQL()

    first = server.template()
    built = first.stat().st_mtime_ns
    second = server.template()

    assert second == first
    assert second.stat().st_mtime_ns == built
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700
    assert (first / "PG_VERSION").read_text().strip() == server.bin_dir().parent.name


def test_a_seed_that_fails_says_why_and_leaves_no_template(settings, tmp_path):
    usable("postgresql")
    settings.SNIPPET_CACHE_DIR = tmp_path / "cache"

    class Broken(PostgreSQL):
        seed = b"CREATE TABLE broken (;\n"

    with pytest.raises(TemplateBuildError, match='syntax error at or near ";"'):
        Broken().template()
    assert list((tmp_path / "cache" / "servers").iterdir()) == []


def test_the_command_reads_the_runs_stdin_once_the_server_is_up():
    argv, _ = sandbox("postgresql", "import sys; print(sys.stdin.read().upper())")
    env = runner.child_env(runner.SANDBOX_DIR)
    result = subprocess.run(argv, env=env, input="code", capture_output=True, text=True)

    assert result.stdout == "CODE\n", result.stderr


def test_the_sandbox_environment_is_read_only_to_a_run():
    result = run("redis", f"open({str(sandbox_python().parent / 'x')!r}, 'w')")

    assert "Read-only file system" in result.stderr


def test_a_different_seed_gets_a_template_of_its_own():
    class Other(PostgreSQL):
        seed = b"CREATE TABLE other (x int);\n"

    assert Other().cache_key() != SERVERS["postgresql"].cache_key()


def test_a_server_whose_software_is_missing_names_its_package():
    class Missing(Server):
        kind, label, package, program = "missing", "Nothing", "no-such-package", "no-such-server"

    server = Missing()

    assert not server.available()
    assert server.missing() == (
        "Nothing is not installed on this server (Debian package no-such-package)."
    )


def test_the_launcher_refuses_a_start_without_a_command():
    result = subprocess.run(
        [sys.executable, "-I", serve.__file__, "start", "postgresql"],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 2
    assert "start needs the command to run" in result.stderr
