"""Checking an answer to an exercise.

The answer runs once per data set, the visible one first and then each hidden variant, in
a run of its own (runner.run with the data set's setup before it and the checks' probes
after it, see runner.child.run_check). The reference solution runs the same way; its
results are cached. Each check then compares the two, or reads the answer's queries,
plans, code or time, on every data set:

    spec.py      Spec: what checking an exercise needs, read from the database once
    outcome.py   Outcome: one run's events sorted by phase
    checks.py    each check kind, and the details a failure shows
    plans.py     reading PostgreSQL, SQLite and MariaDB query plans

check() is what the exercise socket streams: the answer's run on the visible data as the
reader sees it, then a check event per check and the verdict. Like the runner, this
package knows nothing of Channels; `runs` is a runs backend (SNIPPET_RUN_BACKEND).
"""

import logging

from django.core.cache import cache

from glossary.models import CheckKind
from glossary.runner.events import check_event, verdict_event

from .checks import evaluate, forbidden
from .outcome import Outcome
from .spec import Spec

__all__ = [
    "Spec",
    "Unfinished",
    "check",
    "judge",
    "outcomes",
    "reference",
    "reference_problem",
    "remember",
    "try_out",
]

REFERENCE_CACHE_SECONDS = 7 * 24 * 3600
LAST_LINE_CHARS = 200

logger = logging.getLogger(__name__)


class Unfinished(Exception):
    """The check cannot reach a verdict: the server's trouble or the exercise's fault,
    never the answer's. The message says which."""


def run_on(spec, code, data_set, runs, client=None, limits=None, probes=True):
    """The events of code's run on one data set (probes: with the checks' probes)."""
    return runs.run(
        code,
        spec.runtime,
        client,
        spec.language,
        limits,
        setup=data_set.setup,
        probes=list(spec.probes) if probes else [],
    )


async def try_out(spec, code, runs, client=None, limits=None):
    """Run code on the visible data, unchecked: yield what the reader sees."""
    run = run_on(spec, code, spec.data_sets[0], runs, client, limits, probes=False)
    async for event in Outcome().follow(run):
        yield event


async def check(spec, code, runs, client=None, limits=None):
    """Check code: yield the events of its run on the visible data, then a check event per
    check and the verdict. An error event before the run's start ends it: nothing ran.
    Blocks the event loop for no more than filing events (no database queries)."""
    visible = Outcome()
    async for event in visible.follow(run_on(spec, code, spec.data_sets[0], runs, client, limits)):
        yield event
    if visible.error is not None:
        return
    try:
        if spec.problems:
            logger.error("Exercise %s: %s", spec.slug, "; ".join(spec.problems))
            raise Unfinished(f"This exercise is broken: {'; '.join(spec.problems)}")
        answers = await outcomes(spec, code, runs, client, limits, visible)
        references = await reference(spec, runs)
    except Unfinished as unfinished:
        yield verdict_event(False, str(unfinished))
        return
    results = judge(spec, code, answers, references)
    for result in results:
        yield result
    yield verdict_event(all(result["passed"] for result in results))


async def outcomes(spec, code, runs, client=None, limits=None, visible=None, enough=None):
    """The outcomes of code on each data set in turn, up to the first it fails to run to
    its end on, or until enough(outcomes so far) is true. Unfinished if a run tells
    nothing about the code."""
    found = [visible] if visible else []
    for data_set in spec.data_sets[len(found) :]:
        if found and not found[-1].ok or enough and enough(found):
            break
        outcome = Outcome()
        async for _ in outcome.follow(run_on(spec, code, data_set, runs, client, limits)):
            pass
        found.append(outcome)
    for data_set, outcome in zip(spec.data_sets, found, strict=False):
        if outcome.unfinished:
            raise Unfinished(f"The check could not finish: {outcome.unfinished}")
        if outcome.setup_failed:
            logger.error("Exercise %s: %s cannot be set up", spec.slug, data_set.label)
            raise Unfinished(
                f"This exercise is broken: {data_set.label} could not be set up "
                f"({last_line(outcome.setup_output)})."
            )
    return found


async def reference(spec, runs):
    """The reference solution's outcome on each data set (cached), or None when no check
    compares with it. Unfinished if it does not run to its end on each."""
    if not spec.needs_reference:
        return None
    key = spec.reference_key()
    try:
        cached = await cache.aget(key)
    except Exception:
        logger.exception("Could not read the cache")
        cached = None
    if cached is not None:
        return cached
    found = await outcomes(spec, spec.solution, runs)
    if problem := reference_problem(spec, found):
        logger.error("Exercise %s: %s", spec.slug, problem)
        raise Unfinished(f"This exercise is broken: {problem}")
    await remember(spec, found)
    return found


async def remember(spec, found):
    """Cache the reference's outcomes (found) for the next check."""
    try:
        await cache.aset(spec.reference_key(), found, REFERENCE_CACHE_SECONDS)
    except Exception:
        logger.exception("Could not write the cache")


def reference_problem(spec, found):
    """Why the reference's outcomes cannot be compared with, or None."""
    for data_set, outcome in zip(spec.data_sets, found, strict=False):
        if not outcome.ok:
            error = last_line(outcome.stderr)
            return f"the reference solution {outcome.ending} on {data_set.label} ({error})."
    return None


def judge(spec, code, answers, references):
    """A check event for each check of answers (the outcomes of code on the data sets)."""
    return [
        check_event(check.label, *verdict_of(check, spec, code, answers, references))
        for check in spec.checks
    ]


def verdict_of(check, spec, code, answers, references):
    """(passed, detail) of one check: it passes on every data set, else the detail names
    the first data set it fails on."""
    if check.kind == CheckKind.FORBIDS:
        problem = forbidden(check, code)
        return problem is None, problem or ""
    for index, (data_set, answer) in enumerate(zip(spec.data_sets, answers, strict=False)):
        if not answer.ok:
            error = last_line(answer.stderr) if data_set.hidden else ""
            because = f": {error}" if error else "."
            return False, f"Your code {answer.ending} on {data_set.label}{because}"
        expected = references[index] if references else None
        if problem := evaluate(check, spec, answer, expected, code, data_set.hidden):
            where = f"On {data_set.label}: " if data_set.hidden else ""
            return False, where + problem
    return True, ""


def last_line(text):
    lines = text.strip().splitlines()
    line = lines[-1] if lines else "no message"
    return line if len(line) <= LAST_LINE_CHARS else line[: LAST_LINE_CHARS - 1] + "…"
