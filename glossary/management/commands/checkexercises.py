import asyncio
import dataclasses
import time

from django.core.management.base import BaseCommand, CommandError

from glossary import runner
from glossary.checking import Spec, Unfinished, judge, outcomes, reference_problem, remember
from glossary.models import Exercise

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
        try:
            answers = await outcomes(spec, code, runs)
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


class Command(BaseCommand):
    help = (
        "Check every exercise (or those named): its reference solution must pass every "
        "check on every data set, each of its wrong answers must fail one."
    )

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="*", help="Only these exercises (drafts included).")
        parser.add_argument(
            "--jobs", type=int, default=2, help="Exercises checked at once (default 2)."
        )

    def handle(self, *args, slugs, jobs, **options):
        exercises = Exercise.objects.for_checking().prefetch_related("wrong_answers")
        if slugs:
            exercises = exercises.filter(slug__in=slugs)
            if missing := set(slugs) - {exercise.slug for exercise in exercises}:
                raise CommandError(f"No exercise called: {', '.join(sorted(missing))}")
        work, skipped = [], 0
        for exercise in exercises:
            if reason := runner.unavailable(exercise.runtime):
                # Not the exercise's fault: this machine lacks its runtime's software.
                self.stdout.write(f"{self.style.WARNING('skip')} {exercise.slug} ({reason})")
                skipped += 1
                continue
            wrong = [(f"wrong {w.order}: {w.why}", w.code) for w in exercise.wrong_answers.all()]
            work.append((Spec.of(exercise), wrong))
        rows = asyncio.run(examine_all(work, max(1, jobs)))
        self.print_table(rows)
        problems = [row for row in rows if row.problem]
        if problems:
            slugs = sorted({row.exercise for row in problems})
            raise CommandError(
                f"{len(problems)} problem(s) in {len(slugs)} exercise(s): {', '.join(slugs)}"
            )
        checked = len(work)
        more = f"; {skipped} skipped" if skipped else ""
        self.stdout.write(f"All {checked} exercises check out ({len(rows)} answers){more}.")

    def print_table(self, rows):
        width = max((len(row.exercise) for row in rows), default=0)
        answer_width = min(40, max((len(row.answer) for row in rows), default=0))
        for row in rows:
            mark = self.style.ERROR("FAIL") if row.problem else self.style.SUCCESS("ok  ")
            answer = row.answer if len(row.answer) <= 40 else row.answer[:39] + "…"
            what = row.problem if row.problem else row.note
            if row.problem and row.note:
                what += f" ({row.note})"
            self.stdout.write(f"{mark} {row.exercise:<{width}}  {answer:<{answer_width}}  {what}")
