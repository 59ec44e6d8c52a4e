"""How long a reader waits for an exercise's verdict, per runtime.

For one small exercise per runtime (built in memory: no database is touched), checks the
reference solution itself: the first check also runs the reference on every data set,
later ones find it in the cache. Each row also shows a bare run of the same code on the
visible data, for comparison.

    .venv/bin/python bench/checks.py [--tries 3]
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.development")
os.environ["REDIS_URL"] = ""  # the cache in this process's memory

import django  # noqa: E402

django.setup()

from django.core.cache import cache  # noqa: E402

from glossary import runner  # noqa: E402
from glossary.checking import Spec, check, try_out  # noqa: E402
from glossary.checking.spec import VISIBLE, CheckSpec, DataSet  # noqa: E402

TABLE = "CREATE TABLE t (id int PRIMARY KEY, name text);\n"
ROWS = "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, NULL);\n"
REDIS = "import os, redis\nr = redis.Redis.from_url(os.environ['REDIS_URL'])\n"
ORM = (
    "from glossary.models import Topic\nprint(Topic.objects.filter(slug__startswith='s').count())\n"
)
EXERCISES = {
    "SQL on SQLite": ("python", "sql", TABLE + ROWS, TABLE, "SELECT name FROM t;", "rows"),
    "SQL on PostgreSQL": ("postgresql", "sql", TABLE + ROWS, TABLE, "SELECT name FROM t;", "rows"),
    "Django ORM": ("django", "python", "", "", ORM, "output"),
    "Redis": (
        "redis",
        "python",
        REDIS + "r.set('k', 1)",
        REDIS,
        REDIS + "print(r.get('k'))",
        "output",
    ),
}


def spec(runtime, language, setup, hidden_setup, solution, kind):
    data_sets = (
        DataSet(VISIBLE, setup, hidden=False),
        DataSet("hidden 1", hidden_setup, hidden=True),
        DataSet("hidden 2", setup, hidden=True),
    )
    checks = (CheckSpec(kind, kind), CheckSpec("time_limit", "time", number=5000))
    return Spec("bench", runtime, language, solution, data_sets, checks)


async def seconds(events):
    started = time.monotonic()
    async for _ in events:
        pass
    return time.monotonic() - started


async def measure(tries):
    runs = runner.LocalRuns()
    rows = []
    for name, fields in EXERCISES.items():
        if problem := runner.unavailable(fields[0]):
            rows.append((name, problem))
            continue
        exercise = spec(*fields)
        await cache.aclear()
        first = await seconds(check(exercise, exercise.solution, runs))
        cached = [await seconds(check(exercise, exercise.solution, runs)) for _ in range(tries)]
        bare = [await seconds(try_out(exercise, exercise.solution, runs)) for _ in range(tries)]
        rows.append((name, first, statistics.median(cached), statistics.median(bare)))
    await runner.shutdown_pool()
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=3)
    tries = parser.parse_args().tries
    print("| exercise (3 data sets) | first check | check, reference cached | one run |")
    print("|---|---|---|---|")
    for name, *figures in asyncio.run(measure(tries)):
        if len(figures) == 1:
            print(f"| {name} | skipped: {figures[0]} | | |")
        else:
            print(f"| {name} | " + " | ".join(f"{value:.2f} s" for value in figures) + " |")


if __name__ == "__main__":
    main()
