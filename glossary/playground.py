"""Readers' own code: what the playground offers, with a starter for each; reader limits.

The playground offers choices: code in a language (Python or SQL) run by a runtime. Every
runtime of the runner has at least its Python choice (a test checks it), and those whose
database SQL reaches have an SQL choice as well.
"""

import dataclasses
import hashlib

from django.conf import settings

from . import runner
from .models import Language, Runtime


@dataclasses.dataclass(frozen=True)
class Choice:
    """One entry of the playground's picker."""

    runtime: Runtime
    language: Language
    label: str
    starter: str

    @property
    def key(self):
        """Its name in the picker, the socket's path (/ws/play/<key>/) and ?runtime=: the
        runtime's own name for Python code, else runtime-language (python-sql)."""
        if self.language == Language.PYTHON:
            return self.runtime.value
        return f"{self.runtime.value}-{self.language.value}"


FRUIT = "('apple', 0.50), ('pear', 0.70), ('plum', 0.30)"
CHOICES = [
    Choice(
        Runtime.PYTHON,
        Language.PYTHON,
        Runtime.PYTHON.label,
        'import sqlite3\n\ndb = sqlite3.connect(":memory:")\n'
        'db.execute("CREATE TABLE fruit (name TEXT, price REAL)")\n'
        'db.executemany("INSERT INTO fruit VALUES (?, ?)", [("apple", 0.5), ("pear", 0.7)])\n'
        'for row in db.execute("SELECT name, price FROM fruit ORDER BY price DESC"):\n'
        "    print(row)\n",
    ),
    Choice(
        Runtime.DJANGO,
        Language.PYTHON,
        Runtime.DJANGO.label,
        "from glossary.models import Topic\n\n"
        'for topic in Topic.objects.filter(name__startswith="P")[:5]:\n'
        "    print(topic.name)\n",
    ),
    Choice(
        Runtime.POSTGRESQL,
        Language.PYTHON,
        Runtime.POSTGRESQL.label,
        "import psycopg\n\nwith psycopg.connect() as db:\n"
        '    print(db.execute("SELECT version()").fetchone()[0])\n',
    ),
    Choice(
        Runtime.REDIS,
        Language.PYTHON,
        Runtime.REDIS.label,
        "import os\n\nimport redis\n\n"
        'r = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)\n'
        'r.set("greeting", "hello")\nr.incr("visits")\n'
        'print(r.get("greeting"), r.get("visits"))\n',
    ),
    Choice(
        Runtime.MYSQL,
        Language.PYTHON,
        Runtime.MYSQL.label,
        "import os\n\nimport pymysql\n\n"
        'db = pymysql.connect(unix_socket=os.environ["MYSQL_UNIX_PORT"], user="root", '
        'database="learn")\n'
        "with db.cursor() as cursor:\n"
        '    cursor.execute("SELECT VERSION()")\n'
        "    print(cursor.fetchone()[0])\n"
        "db.close()\n",
    ),
    Choice(
        Runtime.PYTHON,
        Language.SQL,
        "SQL on SQLite",
        "CREATE TABLE fruit (name TEXT, price REAL);\n"
        f"INSERT INTO fruit VALUES {FRUIT};\n"
        "SELECT name, price FROM fruit ORDER BY price DESC;\n",
    ),
    Choice(
        Runtime.DJANGO,
        Language.SQL,
        "SQL on the glossary's data (SQLite)",
        "SELECT name, slug FROM glossary_topic\nWHERE name LIKE 'P%'\nORDER BY name\nLIMIT 5;\n",
    ),
    Choice(
        Runtime.POSTGRESQL,
        Language.SQL,
        "SQL on PostgreSQL",
        "CREATE TABLE fruit (name text PRIMARY KEY, price numeric(5, 2));\n"
        f"INSERT INTO fruit VALUES {FRUIT};\n"
        "SELECT name, price, rank() OVER (ORDER BY price DESC) FROM fruit;\n",
    ),
    Choice(
        Runtime.MYSQL,
        Language.SQL,
        "SQL on MariaDB",
        "CREATE TABLE fruit (name VARCHAR(20) PRIMARY KEY, price DECIMAL(5, 2));\n"
        f"INSERT INTO fruit VALUES {FRUIT};\n"
        "SELECT name, price FROM fruit ORDER BY price DESC;\n",
    ),
]


def available_choices():
    """The choices readers can run here: those whose runtime's software this server has."""
    return [
        choice
        for choice in CHOICES
        if choice.runtime.value in runner.RUNTIMES and not runner.unavailable(choice.runtime.value)
    ]


def find(key=None, *, runtime=None, language=None):
    """The available choice called key, or the one of runtime and language; else None."""
    for choice in available_choices():
        if choice.key == key or (choice.runtime, choice.language) == (runtime, language):
            return choice
    return None


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
