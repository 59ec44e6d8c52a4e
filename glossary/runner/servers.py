"""Private database servers for runs: one small class per kind of server.

A run that needs a server gets its own, started inside its sandbox by serve.py
(the launcher) on a Unix socket in the run's tmpfs, under the run's uid and limits; the
sandbox has no network, so nothing of the host's servers is reachable, and the server
dies with the sandbox's pid namespace. A server whose data directory takes time to make
(PostgreSQL, MariaDB) starts from a template built once, in a sandbox too, and cached
under SNIPPET_CACHE_DIR with one key: the server's version, the launcher that builds it
and the SQL that seeds it.

    server = SERVERS["postgresql"]
    if server.available():
        argv = server.sandbox_argv([str(sandbox_python()), "-c", code])
"""

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

from django.conf import settings

from . import serve
from .databases import private_directory
from .limits import Limits
from .sandbox import SANDBOX_DIR, bwrap_argv, child_env

LAUNCHER = Path(serve.__file__).resolve()
POSTGRES_ROOT = Path("/usr/lib/postgresql")
BUILD_SECONDS = 120

# A small shop for the PostgreSQL examples: psycopg.connect() finds it in the default
# database. Changing it changes the template's cache key.
POSTGRES_SEED = b"""\
CREATE TABLE customer (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    email text UNIQUE,
    created timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE product (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE,
    price numeric(10, 2) NOT NULL CHECK (price >= 0),
    stock integer NOT NULL DEFAULT 0
);
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customer,
    product_id bigint NOT NULL REFERENCES product,
    quantity integer NOT NULL CHECK (quantity > 0),
    placed timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customer (name, email) VALUES
    ('Ada', 'ada@example.com'), ('Grace', 'grace@example.com'), ('Edgar', 'edgar@example.com');
INSERT INTO product (name, price, stock) VALUES
    ('bolt', 0.25, 400), ('nut', 0.10, 900), ('washer', 0.05, 1200), ('gear', 7.50, 12);
INSERT INTO orders (customer_id, product_id, quantity) VALUES
    (1, 1, 40), (1, 2, 40), (2, 4, 2), (3, 3, 100);
VACUUM ANALYZE;
"""
MARIADB_SEED = b"CREATE DATABASE learn;\n"


class TemplateBuildError(Exception):
    pass


def sandbox_python():
    """The sandbox environment's interpreter (make builds it from requirements/sandbox.txt)."""
    return Path(settings.BASE_DIR) / ".sandbox-venv" / "bin" / "python"


def cache_dir():
    """SNIPPET_CACHE_DIR, private (0700) to the site's user (see private_directory)."""
    return private_directory(settings.SNIPPET_CACHE_DIR)


class Server:
    kind = ""
    label = ""
    package = ""  # the Debian package that provides it
    program = ""  # the server's executable, to find it and ask its version
    seed = b""
    has_template = True
    tmpfs_mb = 64

    def __init__(self):
        self._lock = threading.Lock()

    def bin_dir(self):
        """Directory of the server's programs, or None when it is not installed."""
        found = shutil.which(self.program, path="/usr/sbin:/usr/bin:/sbin:/bin")
        return Path(found).parent if found else None

    def missing(self):
        """Why runs of this server cannot happen here, for a reader; None if they can."""
        if self.bin_dir() is None:
            return f"{self.label} is not installed on this server (Debian package {self.package})."
        if not os.access(sandbox_python(), os.X_OK):
            return "The sandbox's Python environment is missing on this server (run make)."
        return None

    def available(self):
        return self.missing() is None

    @functools.cached_property
    def version(self):
        program = self.bin_dir() / self.program
        result = subprocess.run([program, "--version"], capture_output=True, check=True)
        return result.stdout.decode().strip()

    def cache_key(self):
        digest = hashlib.sha256(f"{self.kind}\0{self.version}\0".encode())
        digest.update(LAUNCHER.read_bytes() + b"\0" + self.seed)
        return digest.hexdigest()[:16]

    def run_limits(self):
        """The limits of a run of this server (SNIPPET_RUNTIME_LIMITS)."""
        return Limits.from_settings(self.kind)

    def launch(self, action, command=()):
        """The launcher's argv: it starts the server (action "start"), then command."""
        argv = [str(sandbox_python()), "-I", str(LAUNCHER), action, self.kind]
        argv += ["--bin-dir", str(self.bin_dir())]
        return [*argv, "--", *command] if command else argv

    def read_only(self):
        """Host paths a run binds read-only: Python, the sandbox environment, the launcher.

        The servers' programs are all under /usr, which every sandbox has.
        """
        return [sys.base_prefix, sandbox_python().parent.parent, LAUNCHER]

    def bwrap_options(self, template=None):
        """What bubblewrap adds for a server, before --chdir: its tmpfs, /etc, template."""
        # The server's own tmpfs, beside the run's working directory: data, socket, log.
        options = ["--perms", "0777", "--size", str(self.tmpfs_mb * 1024 * 1024)]
        options += ["--tmpfs", serve.SERVER_DIR]
        # initdb and postgres look the uid up: the launcher writes an /etc of one user.
        options += ["--perms", "0777", "--size", str(64 * 1024), "--tmpfs", "/etc"]
        if template is not None:
            options += ["--ro-bind", str(template), serve.TEMPLATE_DIR]
        return options

    def sandbox_argv(self, command, limits=None, read_only=(), files=()):
        """The bubblewrap argv of a run: the launcher starts the server, then command.

        limits: the run's, exactly; run_limits() by default. Blocking the first time (it
        builds the template): call it in a thread.
        """
        template = self.template() if self.has_template else None
        limits = limits or self.run_limits()
        return self._argv(self.launch("start", command), limits, read_only, files, template)

    def _argv(self, launch, limits, read_only=(), files=(), template=None):
        read_only = [*self.read_only(), *read_only]
        return bwrap_argv(launch, read_only, files, limits, self.bwrap_options(template))

    def template(self):
        """The template data directory, built once per cache key (blocking)."""
        target = cache_dir() / "servers" / f"{self.kind}-{self.cache_key()}"
        with self._lock:
            if not target.exists():
                self._build(target)
        return target

    def _build(self, target):
        target.parent.mkdir(mode=0o700, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        argv = self._argv(self.launch("build"), self.run_limits())
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(SANDBOX_DIR),
        )
        stderr = _feed_and_extract(process, self.seed, partial)
        if process.returncode != 0 or not partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
            raise TemplateBuildError(f"Building the {self.label} template failed: {stderr}")
        # Readable by the runs' uids through the bind; the cache dir above stays private.
        for root, _dirs, files in os.walk(partial):
            os.chmod(root, 0o755)
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)
        try:
            os.replace(partial, target)  # atomic: no run ever copies a half-built template
        except OSError:  # another process built it meanwhile
            shutil.rmtree(partial, ignore_errors=True)
        for stale in target.parent.glob(f"{self.kind}-*"):
            if stale != target and not stale.name.endswith(".partial"):
                shutil.rmtree(stale, ignore_errors=True)


def _feed_and_extract(process, seed, partial):
    """Write seed to the build's stdin, extract its stdout's tar stream; return stderr."""
    errors = []
    reader = threading.Thread(target=lambda: errors.append(process.stderr.read()))
    reader.start()
    try:
        process.stdin.write(seed)
        process.stdin.close()
        with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
            # "data": nothing outside partial, no devices, no setuid, owned by us.
            archive.extractall(partial, filter="data")
    except (tarfile.TarError, OSError) as error:
        errors.append(f"{error}\n".encode())
    finally:
        try:
            process.wait(BUILD_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join()
    return b"".join(errors).decode(errors="replace").strip()[-2000:]


class PostgreSQL(Server):
    kind = "postgresql"
    label = "PostgreSQL"
    package = "postgresql"
    program = "postgres"
    seed = POSTGRES_SEED
    tmpfs_mb = 96

    def bin_dir(self):
        """The newest /usr/lib/postgresql/<version>/bin with a server (Debian's layout)."""
        versions = [path for path in POSTGRES_ROOT.glob("*/bin") if (path / "initdb").exists()]
        return max(versions, key=lambda path: int(path.parent.name), default=None)


class Redis(Server):
    kind = "redis"
    label = "Redis"
    package = "redis-server"
    program = "redis-server"
    has_template = False  # an empty directory: nothing to build
    tmpfs_mb = 16


class MariaDB(Server):
    kind = "mysql"
    label = "MariaDB"
    package = "mariadb-server"
    program = "mariadbd"
    seed = MARIADB_SEED
    tmpfs_mb = 128


SERVERS = {server.kind: server for server in (PostgreSQL(), Redis(), MariaDB())}
