"""Runnable Django ORM examples; each is also a snippet on the site (manage.py syncexamples).

Run one with `python -m examples.<name>` from the project root.
"""

from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent
SUPPORT_MODULES = {"__init__", "apps", "models", "orm", "sqlreport"}
# Reading order on the site; an example missing here comes after these, by name.
ORDER = [
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
    found = {path.stem for path in DIRECTORY.glob("*.py") if not path.name.startswith("_")}
    found -= SUPPORT_MODULES
    return [name for name in ORDER if name in found] + sorted(found - set(ORDER))


def path(name):
    return DIRECTORY / f"{name}.py"
