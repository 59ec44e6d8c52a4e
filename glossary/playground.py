"""Readers' own code: which runtimes the playground offers, their starters, reader limits.

The runtimes come from the runner's list (in the model's order, with its labels), so a new
runtime appears in the playground without changes here; a starter is optional.
"""

import dataclasses
import hashlib

from django.conf import settings

from . import runner
from .models import Language, Runtime


@dataclasses.dataclass(frozen=True)
class Starter:
    language: str
    code: str


STARTERS = {
    Runtime.PYTHON: Starter(
        Language.PYTHON,
        'import sqlite3\n\ndb = sqlite3.connect(":memory:")\n'
        'db.execute("CREATE TABLE fruit (name TEXT, price REAL)")\n'
        'db.executemany("INSERT INTO fruit VALUES (?, ?)", [("apple", 0.5), ("pear", 0.7)])\n'
        'for row in db.execute("SELECT name, price FROM fruit ORDER BY price DESC"):\n'
        "    print(row)\n",
    ),
    Runtime.DJANGO: Starter(
        Language.PYTHON,
        "from glossary.models import Topic\n\n"
        'for topic in Topic.objects.filter(name__startswith="P")[:5]:\n'
        "    print(topic.name)\n",
    ),
    Runtime.POSTGRESQL: Starter(
        Language.PYTHON,
        "import psycopg\n\nwith psycopg.connect() as db:\n"
        '    print(db.execute("SELECT version()").fetchone()[0])\n',
    ),
}
DEFAULT_STARTER = Starter(Language.PYTHON, 'print("Hello from the sandbox")\n')


def available_runtimes():
    """The runtimes readers can run here: those whose software this server has."""
    return [
        runtime
        for runtime in Runtime
        if runtime.value in runner.RUNTIMES and not runner.unavailable(runtime.value)
    ]


def starter(runtime):
    return STARTERS.get(runtime, DEFAULT_STARTER)


def reader_limits(runtime=None):
    """The limits of readers' own code in runtime: the runtime's, each made stricter by
    its SNIPPET_READER_* setting where one is set."""
    limits = runner.Limits.from_settings(runtime)
    stricter = {
        name: min(getattr(limits, name), value)
        for name, value in settings.SNIPPET_READER_LIMITS.items()
    }
    return dataclasses.replace(limits, **stricter)


def code_digest(code):
    """How the run log names a reader's code (the code itself is not logged)."""
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def code_error(code):
    """Why this text cannot be run or shared as a reader's code, or None."""
    if not isinstance(code, str) or not code.strip():
        return "The code must be non-empty text."
    try:
        size = len(code.encode("utf-8"))
    except UnicodeEncodeError:
        return "The code is not valid Unicode text (it has a lone surrogate)."
    if size > settings.SNIPPET_SHARE_MAX_BYTES:
        return f"The code is too long: at most {settings.SNIPPET_SHARE_MAX_BYTES // 1024} KiB."
    return None


READER_CODE_OFF = "Running your own code is turned off on this server."
