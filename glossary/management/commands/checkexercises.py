from django.core.management.base import BaseCommand, CommandError

from glossary import runner
from glossary.checking.review import review
from glossary.models import Exercise


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
        checkable, skipped = [], 0
        for exercise in exercises:
            if reason := runner.unavailable(exercise.runtime):
                # Not the exercise's fault: this machine lacks its runtime's software.
                self.stdout.write(f"{self.style.WARNING('skip')} {exercise.slug} ({reason})")
                skipped += 1
                continue
            checkable.append(exercise)
        rows = review(checkable, jobs)
        self.print_table(rows)
        problems = [row for row in rows if row.problem]
        if problems:
            slugs = sorted({row.exercise for row in problems})
            raise CommandError(
                f"{len(problems)} problem(s) in {len(slugs)} exercise(s): {', '.join(slugs)}"
            )
        checked = len(checkable)
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
