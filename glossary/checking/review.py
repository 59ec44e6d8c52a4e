"""Reviewing exercises: every reference passes its checks on every data set, every
wrong answer fails at least one (`manage.py checkexercises`, the admin's action)."""

import asyncio
import dataclasses
import time

from glossary import runner

from . import Spec, Unfinished, judge, outcomes, reference_problem, remember

DETAIL_CHARS = 200


@dataclasses.dataclass(frozen=True)
class Row:
    exercise: str
    answer: str
    problem: str | None
    note: str


async def examine(spec, wrong_answers, runs):
    """A row per answer: the reference must pass every check on every data set, each
    wrong answer ((name, code) pairs) must fail at least one."""
    if spec.problems:
        return [Row(spec.slug, "reference", "; ".join(spec.problems), "not run")]
    started = time.monotonic()
    try:
        found = await outcomes(spec, spec.solution, runs)
    except Unfinished as unfinished:
        return [Row(spec.slug, "reference", str(unfinished), "")]
    if problem := reference_problem(spec, found):
        return [Row(spec.slug, "reference", problem, "")]
    if spec.needs_reference:
        await remember(spec, found)
    failed = failures(judge(spec, spec.solution, found, found))
    seconds = f"{time.monotonic() - started:.1f} s"
    if failed:
        rows = [Row(spec.slug, "reference", failed, seconds)]
    else:
        checks = f"{len(spec.checks)} check{'s' if len(spec.checks) != 1 else ''}"
        rows = [Row(spec.slug, "reference", None, f"passes {checks}, {seconds}")]
    for name, code in wrong_answers:
        started = time.monotonic()

        def fails(answers, code=code):
            return any(not result["passed"] for result in judge(spec, code, answers, found))

        try:
            # A wrong answer need only fail once: the data sets after that are not run.
            answers = await outcomes(spec, code, runs, enough=fails)
        except Unfinished as unfinished:
            rows.append(Row(spec.slug, name, str(unfinished), ""))
            continue
        results = judge(spec, code, answers, found)
        seconds = f"{time.monotonic() - started:.1f} s"
        if failed := failures(results):
            rows.append(Row(spec.slug, name, None, f"fails: {failed}, {seconds}"))
        else:
            rows.append(Row(spec.slug, name, "passes every check", seconds))
    return rows


def failures(results):
    """The failed checks with their details, in a line; "" if none failed."""
    failed = [f"{r['name']} ({r['detail']})" for r in results if not r["passed"]]
    text = "; ".join(failed)
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"


async def examine_all(work, jobs):
    """Rows of every (spec, wrong answers) in work, at most jobs exercises at once."""
    limit = asyncio.Semaphore(jobs)
    runs = runner.LocalRuns()

    async def one(spec, wrong_answers):
        async with limit:
            return await examine(spec, wrong_answers, runs)

    try:
        found = await asyncio.gather(*(one(spec, wrong) for spec, wrong in work))
    finally:
        await runner.shutdown_pool()
    return [row for rows in found for row in rows]


def review(exercises, jobs=2):
    """Rows for exercises (with their variants, checks and wrong answers prefetched).
    Blocking: it runs them all."""
    work = []
    for exercise in exercises:
        wrong = [(f"wrong {w.order}: {w.why}", w.code) for w in exercise.wrong_answers.all()]
        work.append((Spec.of(exercise), wrong))
    return asyncio.run(examine_all(work, max(1, jobs)))
