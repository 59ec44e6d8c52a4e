"""Exercises with their checks, hidden data sets, hints and wrong answers inline."""

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count

from ..checking.review import review
from ..curation import runtime_problem
from ..models import Check, DataVariant, Exercise, Hint, WrongAnswer
from .mixins import CuratorFormsMixin


class HintInline(CuratorFormsMixin, admin.TabularInline):
    model = Hint
    extra = 0
    fields = ("order", "text")


class CheckInline(admin.TabularInline):
    model = Check
    extra = 0
    fields = ("order", "kind", "target", "number", "table", "ordered", "compare_column_names")
    formfield_overrides = {models.TextField: {"widget": forms.Textarea({"rows": 2, "cols": 50})}}


class DataVariantInline(CuratorFormsMixin, admin.StackedInline):
    model = DataVariant
    extra = 0
    fields = (("order", "name"), "setup")
    verbose_name = "hidden data set"


class WrongAnswerInline(CuratorFormsMixin, admin.StackedInline):
    model = WrongAnswer
    extra = 0
    fields = (("order", "why"), "code")


@admin.register(Exercise)
class ExerciseAdmin(CuratorFormsMixin, admin.ModelAdmin):
    list_display = ("title", "topic", "runtime", "language", "order", "check_count", "is_published")
    list_filter = ("is_published", "runtime", "language", "topic")
    list_select_related = ("topic",)
    search_fields = ("title", "slug", "prompt", "topic__name")
    prepopulated_fields = {"slug": ("title",)}
    autocomplete_fields = ("topic",)
    fieldsets = (
        (None, {"fields": ("topic", ("title", "slug"), "prompt", ("order", "is_published"))}),
        ("Code", {"fields": (("runtime", "language"), "setup", "starter_code", "solution")}),
        ("Once solved", {"fields": ("explanation",)}),
    )
    inlines = (CheckInline, DataVariantInline, HintInline, WrongAnswerInline)
    actions = ["check_reference"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(check_count=Count("checks"))

    @admin.display(description="Checks", ordering="check_count")
    def check_count(self, exercise):
        return exercise.check_count

    @admin.action(description="Check the reference (and the wrong answers)")
    def check_reference(self, request, queryset):
        """Run `checkexercises` on the selected exercises and say how each fared."""
        exercises = list(queryset.for_checking().prefetch_related("wrong_answers"))
        rows = review([e for e in exercises if not runtime_problem(e.runtime)])
        for exercise in exercises:
            level, message = review_message(exercise, rows)
            self.message_user(request, f"{exercise.slug}: {message}", level)


def review_message(exercise, rows):
    """(level, message) saying how the exercise fared in review() rows."""
    if problem := runtime_problem(exercise.runtime):
        return messages.WARNING, f"not checked: {problem}"
    own = [row for row in rows if row.exercise == exercise.slug]
    if problems := [f"{row.answer}: {row.problem}" for row in own if row.problem]:
        return messages.ERROR, "; ".join(problems)
    wrong = len(own) - 1
    if not wrong:
        return messages.SUCCESS, "the reference passes every check (no wrong answers to try)."
    answers = "its wrong answer fails" if wrong == 1 else f"its {wrong} wrong answers fail"
    return messages.SUCCESS, f"the reference passes every check; {answers}."
