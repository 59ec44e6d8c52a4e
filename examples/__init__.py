"""Runnable Django ORM examples; each is also a snippet on the site (manage.py syncexamples).

A new lesson is a module here and a line in LESSONS.

Each example is plain Django code: its module docstring titles and describes it, the rest
is what the site shows. Run one with `python -m examples.<name>` from the project root:
Python imports this package first, which sets Django up (examples/orm.py) before the
example's own imports. On the site the sandbox has set Django up already.
"""

import ast
import sys
from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent
# The lessons, in reading order on the site; the package's other modules support them.
LESSONS = [
    "crud",
    "lookups_q_f",
    "n_plus_one",
    "aggregation",
    "subqueries_windows",
    "raw_sql",
    "bulk",
    "get_or_create",
    "transactions",
    "select_for_update",
    "indexes_and_plans",
    "full_text_search",
    "async_orm",
]
DEFAULT_TOPIC = "django-orm"
# Examples filed under a more specific glossary topic than Django ORM.
TOPICS = {
    "transactions": "transactions",
    "select_for_update": "concurrency-problems",
    "get_or_create": "upsert",
    "indexes_and_plans": "indexing",
    "full_text_search": "full-text-search",
    "async_orm": "async-database-access",
}


def names():
    """Module names of the examples, in reading order."""
    return list(LESSONS)


def path(name):
    return DIRECTORY / f"{name}.py"


def code(name):
    """The example as the site shows it: the file without its docstring, which titles and
    describes it above the code."""
    source = path(name).read_text(encoding="utf-8")
    body = ast.parse(source).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        source = "".join(source.splitlines(keepends=True)[body[0].end_lineno :])
    return source.lstrip("\n")


def run_from_a_shell():
    """Whether this process is `python -m examples.<name>`."""
    args = sys.orig_argv
    return "-m" in args[:-1] and args[args.index("-m") + 1].startswith(f"{__name__}.")


if run_from_a_shell():
    from examples import orm

    orm.setup()
