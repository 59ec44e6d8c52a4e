"""A real Daphne in a subprocess, for tests of what an operator, a client or a browser sees.

Each site gets a SQLite database of its own (migrated_database, seeded_database, then
shell for content of its own); site_env is its environment, daphne serves it.
"""

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port():
    """A local port nothing listens on (connections to it are refused)."""
    return free_port()


def site_env(**env):
    """The environment of a development site, with env on top (None unsets)."""
    base = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.development"}
    base.update(DEBUG="false")
    for name, value in env.items():
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return base


def manage(*args, env, timeout=60):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def shell(code, env):
    """Run code in `manage.py shell` on env's database (to add a site's own content)."""
    result = manage("shell", "-c", code, env=env)
    assert result.returncode == 0, result.stderr


def migrated_database(directory, *commands):
    """The URL of a new SQLite database in directory, migrated, then given each of the
    management commands."""
    url = f"sqlite:///{directory / 'site.sqlite3'}"
    for command in (["migrate", "-v0"], *commands):
        result = manage(*command, env=site_env(DATABASE_URL=url, REDIS_URL=None))
        assert result.returncode == 0, result.stderr
    return url


def seeded_database(directory):
    """The URL of a new SQLite database in directory, migrated and seeded."""
    return migrated_database(directory, ["loadseed"])


def start(argv, env, log):
    """A process of the site (argv, run in the project), its output in the file log.

    The process keeps log's path as process.log.
    """
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    process.log = Path(log)
    return process


@contextmanager
def daphne(env, log, within=30):
    """Daphne serving config.asgi on a free port, logging to the file log.

    Yields the process, with its base_url and port, once it listens.
    """
    port = free_port()
    argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    process = start([*argv, "config.asgi:application"], env, log)
    try:
        deadline = time.monotonic() + within
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"Daphne exited: {process.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("Daphne did not listen in time") from None
                time.sleep(0.1)
        process.base_url = f"http://127.0.0.1:{port}"
        process.port = port
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
