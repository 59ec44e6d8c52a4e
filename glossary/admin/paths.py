"""Learning paths, their steps inline."""

from django.contrib import admin
from django.db.models import Count

from ..models import Path, PathStep
from .mixins import CuratorFormsMixin


class PathStepInline(admin.TabularInline):
    model = PathStep
    fields = ("order", "topic", "snippet", "exercise", "note")
    autocomplete_fields = ("topic", "snippet", "exercise")
    extra = 1


@admin.register(Path)
class PathAdmin(CuratorFormsMixin, admin.ModelAdmin):
    """A learning path with its steps inline, each one topic, snippet or exercise."""

    list_display = ("title", "step_count", "order", "is_published")
    list_filter = ("is_published",)
    list_editable = ("order",)
    search_fields = ("title", "summary")
    prepopulated_fields = {"slug": ("title",)}
    inlines = [PathStepInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(step_count=Count("steps"))

    @admin.display(description="Steps", ordering="step_count")
    def step_count(self, path):
        return path.step_count
