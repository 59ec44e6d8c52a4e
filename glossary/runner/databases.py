"""The Django runtime's database: a migrated SQLite file with the seed, built once and
cached in SNIPPET_CACHE_DIR, which every Django run gets a copy of. (The servers of the
server runtimes have their templates in servers.py.)
"""

import hashlib
import logging
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import django
from django.conf import settings

# Only these parts of the project are visible to Django snippets: not the site's
# database, not .secret_key, not anything added later.
PROJECT_PARTS = ("config", "glossary", "examples")
SANDBOX_SETTINGS = "config.settings.sandbox"
DEFAULT_POSTGRES_SOCKET_DIR = "/var/run/postgresql"

logger = logging.getLogger(__name__)

_template_lock = threading.Lock()


class DatabaseBuildError(Exception):
    pass


def private_directory(path):
    """path as a directory only this server's user can use, made (0700) if missing.

    Every sandbox gets a copy of what is in it: a directory someone else made first, or
    a symlink they planted, is refused rather than trusted.
    """
    path = Path(path)
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    info = os.lstat(path)
    problem = None
    if stat.S_ISLNK(info.st_mode):
        problem = "is a symbolic link"
    elif not stat.S_ISDIR(info.st_mode):
        problem = "is not a directory"
    elif info.st_uid != os.geteuid():
        problem = f"belongs to uid {info.st_uid}, not to this server's uid {os.geteuid()}"
    elif info.st_mode & 0o077:
        problem = f"has mode {stat.S_IMODE(info.st_mode):04o}; it must be 0700"
    if problem:
        logger.error("Refusing the cache directory %s: it %s", path, problem)
        raise DatabaseBuildError(f"the cache directory {path} {problem} (SNIPPET_CACHE_DIR)")
    return path


def template_database():
    """Path of a migrated SQLite database with the seed fixture, built once and cached
    in SNIPPET_CACHE_DIR.

    The cache key covers what shapes the database: the apps' migrations, fixtures and
    Django's version (for contrib migrations). Blocking: call it in a thread.
    """
    base_dir = Path(settings.BASE_DIR)
    fixture = base_dir / "glossary" / "fixtures" / "glossary.json"
    inputs = []
    for part in PROJECT_PARTS:
        inputs += sorted((base_dir / part / "migrations").glob("*.py"))
        inputs += sorted((base_dir / part / "fixtures").glob("*.json"))
    digest = hashlib.sha256(django.get_version().encode())
    for path in inputs:
        digest.update(str(path.relative_to(base_dir)).encode() + b"\0" + path.read_bytes())
    cache_dir = private_directory(settings.SNIPPET_CACHE_DIR)
    target = cache_dir / f"{digest.hexdigest()[:16]}.sqlite3"
    with _template_lock:
        if target.exists():
            return target
        partial = target.with_suffix(f".{os.getpid()}.partial")
        partial.unlink(missing_ok=True)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": SANDBOX_SETTINGS,
            "DATABASE_URL": f"sqlite:///{partial}",
        }
        manage = [sys.executable, str(base_dir / "manage.py")]
        build = [["migrate", "--no-input"]]
        if fixture.exists():
            build.append(["loadseed", "--without-exercises"])
        for command in build:
            result = subprocess.run([*manage, *command, "-v", "0"], env=env, capture_output=True)
            if result.returncode != 0:
                partial.unlink(missing_ok=True)
                stderr = result.stderr.decode(errors="replace").strip()
                logger.error("Building the sandbox database failed: %s", stderr)
                last_line = stderr.splitlines()[-1] if stderr else f"exit {result.returncode}"
                raise DatabaseBuildError(f"{' '.join(command)} failed: {last_line}")
        # Atomic, so concurrent server processes never copy a half-built database.
        os.replace(partial, target)
        return target
