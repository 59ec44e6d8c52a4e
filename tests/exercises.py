"""Exercises built in code for the tests of the checker, its socket, command and admin."""

import asyncio

from glossary.checking import Spec, check
from glossary.models import Check, DataVariant, Exercise, Hint, Topic, WrongAnswer
from glossary.runner import LocalRuns, shutdown_pool


def make_exercise(slug, *, checks, variants=(), wrong=(), hints=(), topic=None, **fields):
    """An exercise with its checks (dicts of Check fields), variants ((name, setup)),
    wrong answers ((code, why)) and hints (texts), each numbered in order."""
    topic = topic or Topic.objects.get_or_create(name="SQL", slug="sql")[0]
    fields = {"title": slug.replace("-", " ").capitalize(), "prompt": "Do it.", **fields}
    exercise = Exercise.objects.create(topic=topic, slug=slug, **fields)
    for order, check_fields in enumerate(checks, start=1):
        Check.objects.create(exercise=exercise, order=order, **check_fields)
    for order, (name, setup) in enumerate(variants, start=1):
        DataVariant.objects.create(exercise=exercise, order=order, name=name, setup=setup)
    for order, (code, why) in enumerate(wrong, start=1):
        WrongAnswer.objects.create(exercise=exercise, order=order, code=code, why=why)
    for order, text in enumerate(hints, start=1):
        Hint.objects.create(exercise=exercise, order=order, text=text)
    return exercise


def spec_of(exercise):
    return Spec.of(Exercise.objects.for_checking().get(pk=exercise.pk))


async def events_of(spec, code, runs=None):
    return [event async for event in check(spec, code, runs or LocalRuns())]


def run_checks(spec, *answers):
    """The events of checking each answer, all in one event loop."""

    async def all_of():
        try:
            return [await events_of(spec, code) for code in answers]
        finally:
            await shutdown_pool()

    return asyncio.run(all_of())


def results(events):
    """{check name: (passed, detail)} and the verdict event."""
    checks = {e["name"]: (e["passed"], e["detail"]) for e in events if e["type"] == "check"}
    return checks, events[-1]


# A shop's orders, and hidden data sets with a NULL, ties, duplicates and no rows at all.
ORDERS = """
CREATE TABLE orders (id integer PRIMARY KEY, customer text, amount integer);
INSERT INTO orders (customer, amount) VALUES
  ('ann', 10), ('bob', 5), ('ann', 7), ('cy', 12);
"""
ORDERS_VARIANTS = [
    (
        "NULLs and ties",
        "CREATE TABLE orders (id integer PRIMARY KEY, customer text, amount integer);\n"
        "INSERT INTO orders (customer, amount) VALUES\n"
        "  ('dee', 3), (NULL, 4), ('eve', 3), ('dee', NULL), ('eve', 1), ('dee', 1);",
    ),
    ("no orders", "CREATE TABLE orders (id integer PRIMARY KEY, customer text, amount integer);"),
]
ORDERS_SOLUTION = (
    "SELECT customer, count(*) AS orders\nFROM orders\nGROUP BY customer\nORDER BY customer;"
)
