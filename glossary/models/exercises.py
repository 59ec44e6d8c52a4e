"""Exercises: a prompt, a reference solution and the checks a reader's answer must pass
(glossary.checking runs them), with hints, hidden data sets and known wrong answers."""

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.signals import pre_save
from django.dispatch import receiver
from django.urls import reverse

from ..rendering import render_markdown
from .choices import Runtime


class ExerciseLanguage(models.TextChoices):
    PYTHON = "python", "Python"
    SQL = "sql", "SQL"


# The runtimes whose database an SQL answer runs on (SQLite for "python").
SQL_RUNTIMES = ("python", "postgresql", "mysql")
# Where a check can run SQL after a Python answer: the run's own database server.
SQL_PROBE_RUNTIMES = ("django", "postgresql", "mysql")


class ExerciseQuerySet(models.QuerySet):
    def published(self):
        return self.filter(is_published=True, topic__is_published=True)

    def visible_to(self, user):
        return self if user.is_staff else self.published()

    def for_checking(self):
        """With the variants and checks the checker reads (three queries)."""
        return self.prefetch_related("variants", "checks")


class ExerciseManager(models.Manager.from_queryset(ExerciseQuerySet)):
    def get_by_natural_key(self, slug):
        return self.get(slug=slug)


class Exercise(models.Model):
    topic = models.ForeignKey("glossary.Topic", on_delete=models.CASCADE, related_name="exercises")
    slug = models.SlugField(max_length=120, unique=True)
    title = models.CharField(max_length=200)
    prompt = models.TextField(help_text="Markdown. Raw HTML is stripped.")
    prompt_html = models.TextField(editable=False, blank=True)
    runtime = models.CharField(max_length=16, choices=[c for c in Runtime.choices if c[0]])
    language = models.CharField(
        max_length=8,
        choices=ExerciseLanguage,
        default=ExerciseLanguage.PYTHON,
        help_text="SQL runs on SQLite for the Python runtime, else on the runtime's server.",
    )
    setup = models.TextField(
        blank=True,
        help_text="The visible data, in the exercise's language: runs before the answer "
        "in the same run; its output is not shown.",
    )
    starter_code = models.TextField(blank=True)
    solution = models.TextField(help_text="The reference solution: it must pass every check.")
    explanation = models.TextField(
        blank=True, help_text="Markdown, shown once the exercise is solved."
    )
    explanation_html = models.TextField(editable=False, blank=True)
    order = models.PositiveIntegerField(default=0)
    is_published = models.BooleanField("published", default=True)

    objects = ExerciseManager()

    class Meta:
        ordering = ["topic__name", "order", "title"]
        constraints = [
            models.CheckConstraint(condition=~Q(slug=""), name="exercise_slug_not_empty"),
            models.CheckConstraint(condition=~Q(title=""), name="exercise_title_not_empty"),
            models.CheckConstraint(condition=~Q(solution=""), name="exercise_has_solution"),
            models.CheckConstraint(
                condition=Q(runtime__in=[value for value in Runtime.values if value]),
                name="exercise_runtime_known",
            ),
            models.CheckConstraint(
                condition=Q(language="python") | Q(language="sql", runtime__in=SQL_RUNTIMES),
                name="exercise_sql_has_a_database",
                violation_error_message="SQL exercises run on Python (SQLite), PostgreSQL "
                "or MariaDB.",
            ),
        ]

    def __str__(self):
        return self.title

    def save(self, **kwargs):
        self.derive_fields()
        if (update_fields := kwargs.get("update_fields")) is not None:
            kwargs["update_fields"] = {*update_fields, "prompt_html", "explanation_html"}
        super().save(**kwargs)

    def get_absolute_url(self):
        return reverse("glossary:exercise-detail", args=[self.slug])

    def natural_key(self):
        return (self.slug,)

    natural_key.dependencies = ["glossary.topic"]

    def derive_fields(self):
        self.prompt_html = render_markdown(self.prompt)
        self.explanation_html = render_markdown(self.explanation)


class ExercisePartManager(models.Manager):
    def get_by_natural_key(self, exercise_slug, order):
        return self.get(exercise__slug=exercise_slug, order=order)


class ExercisePart(models.Model):
    """A row that belongs to one exercise, named in fixtures by (exercise slug, order)."""

    order = models.PositiveIntegerField(default=0)

    objects = ExercisePartManager()

    class Meta:
        abstract = True
        ordering = ["exercise", "order"]
        constraints = [
            models.UniqueConstraint(
                fields=["exercise", "order"], name="%(class)s_unique_order_per_exercise"
            )
        ]

    def natural_key(self):
        return (*self.exercise.natural_key(), self.order)

    natural_key.dependencies = ["glossary.exercise"]


class Hint(ExercisePart):
    """Revealed one at a time, in order."""

    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="hints")
    text = models.TextField(help_text="Markdown.")
    text_html = models.TextField(editable=False, blank=True)

    def __str__(self):
        return f"Hint {self.order} of {self.exercise}"

    def save(self, **kwargs):
        self.derive_fields()
        if (update_fields := kwargs.get("update_fields")) is not None:
            kwargs["update_fields"] = {*update_fields, "text_html"}
        super().save(**kwargs)

    def derive_fields(self):
        self.text_html = render_markdown(self.text)


class DataVariant(ExercisePart):
    """A hidden data set that replaces the exercise's setup: answers are checked on the
    visible data and on every variant, so a hard-coded or lucky answer fails."""

    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=100, help_text="What is odd about it, e.g. NULLs and ties.")
    setup = models.TextField(blank=True, help_text="In the exercise's language.")

    def __str__(self):
        return self.name


class CheckKind(models.TextChoices):
    ROWS = "rows", "Rows equal the reference's"
    OUTPUT = "output", "Output equals the reference's"
    MAX_QUERIES = "max_queries", "At most N queries"
    NO_SIMILAR = "no_similar", "No two similar queries"
    USES_INDEX = "uses_index", "The plan uses an index"
    NO_SEQ_SCAN = "no_seq_scan", "No sequential scan of a table"
    FORBIDS = "forbids", "Avoids what the exercise rules out"
    TIME_LIMIT = "time_limit", "Finishes in time"


class Check(ExercisePart):
    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="checks")
    kind = models.CharField(max_length=16, choices=CheckKind)
    target = models.TextField(
        blank=True,
        help_text="rows: a query whose rows are compared, run after the answer (blank: the "
        "answer's last result). uses_index / no_seq_scan: the query whose plan is read (for "
        "Django, text the answer's query contains). forbids: a regular expression.",
    )
    number = models.PositiveIntegerField(
        null=True, blank=True, help_text="max_queries: the budget. time_limit: milliseconds."
    )
    ordered = models.BooleanField(default=False, help_text="rows: the order matters.")
    compare_column_names = models.BooleanField(
        default=False, help_text="rows: the column names must match too."
    )
    table = models.CharField(
        max_length=63,
        blank=True,
        help_text="uses_index: the index must be on this table. no_seq_scan: the table.",
    )

    class Meta(ExercisePart.Meta):
        constraints = [
            *ExercisePart.Meta.constraints,
            models.CheckConstraint(
                condition=~Q(kind__in=["max_queries", "time_limit"]) | Q(number__isnull=False),
                name="check_budget_has_number",
                violation_error_message="Give max_queries and time_limit checks a number.",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["uses_index", "no_seq_scan", "forbids"]) | ~Q(target=""),
                name="check_target_given",
                violation_error_message="Give plan and forbids checks a target.",
            ),
            models.CheckConstraint(
                condition=~Q(kind="no_seq_scan") | ~Q(table=""),
                name="check_seq_scan_names_table",
                violation_error_message="Name the table a no_seq_scan check is about.",
            ),
        ]

    def __str__(self):
        return self.label

    def clean(self):
        try:
            exercise = self.exercise
        except Exercise.DoesNotExist:
            return
        if problem := self.problem(exercise.runtime, exercise.language):
            raise ValidationError(problem)

    def problem(self, runtime, language):
        """Why this check cannot work in an exercise of runtime and language, or None."""
        kind = CheckKind(self.kind)
        sql = language == ExerciseLanguage.SQL
        if kind == CheckKind.ROWS and not self.target and not sql:
            return "A rows check of a Python exercise needs a target: its answer has no result set."
        if kind in (CheckKind.MAX_QUERIES, CheckKind.NO_SIMILAR) and not (
            sql or runtime == "django"
        ):
            return "Queries are counted for SQL exercises and Django ones only."
        if kind in (CheckKind.USES_INDEX, CheckKind.NO_SEQ_SCAN) and not (
            sql or runtime in SQL_PROBE_RUNTIMES
        ):
            return "Plans are read for SQL exercises and Django, PostgreSQL or MariaDB ones only."
        if kind == CheckKind.FORBIDS:
            try:
                re.compile(self.target)
            except re.error as error:
                return f"The target is not a valid regular expression: {error}."
        return None

    @property
    def label(self):
        """What the reader sees as the check's name."""
        kind = CheckKind(self.kind)
        if kind == CheckKind.MAX_QUERIES:
            return f"At most {self.number} quer{'y' if self.number == 1 else 'ies'}"
        if kind == CheckKind.TIME_LIMIT:
            return f"Finishes within {self.number} ms"
        if kind == CheckKind.NO_SEQ_SCAN:
            return f"No sequential scan of {self.table}"
        if kind == CheckKind.USES_INDEX and self.table:
            return f"The plan uses an index of {self.table}"
        if kind == CheckKind.ROWS:
            label = "The data afterwards equals the reference's" if self.target else kind.label
            return label + (", in order" if self.ordered else "")
        return kind.label


class WrongAnswer(ExercisePart):
    """A plausible mistake kept as test data: checkexercises makes sure it fails."""

    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="wrong_answers")
    code = models.TextField()
    why = models.CharField(max_length=200, help_text="The mistake it makes.")

    def __str__(self):
        return self.why


@receiver(pre_save, sender=Exercise)
@receiver(pre_save, sender=Hint)
def derive_fields_on_fixture_load(sender, instance, raw, **kwargs):
    """loaddata saves raw, skipping save(): derive the HTML all the same."""
    if raw:
        instance.derive_fields()
