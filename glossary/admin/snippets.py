"""Snippets: checked for a runtime this server can run, verified when their code changes."""

from django.contrib import admin, messages
from simple_history.admin import SimpleHistoryAdmin

from ..curation import runtime_problem, verify_in_background
from ..forms import SnippetAdminForm
from ..models import Snippet, Verification
from .mixins import CuratorFormsMixin, PublishActionsMixin


def check_snippet_after_save(modeladmin, request, snippet, changed_data):
    """Warn about a runtime this server cannot run; verify changed runnable code."""
    if problem := runtime_problem(snippet.runtime):
        modeladmin.message_user(request, f"{snippet.title}: {problem}", messages.WARNING)
    elif snippet.runtime and {"code", "language", "runtime"} & set(changed_data):
        Snippet.objects.filter(pk=snippet.pk).update(verification=Verification.UNVERIFIED)
        verify_in_background(snippet)
        modeladmin.message_user(
            request,
            f"Verifying {snippet.title} in the background: the snippet list shows the result.",
            messages.INFO,
        )


class SnippetInline(CuratorFormsMixin, admin.StackedInline):
    model = Snippet
    form = SnippetAdminForm
    extra = 0
    fields = (
        ("title", "slug"),
        ("language", "runtime", "position", "is_published"),
        "display_only_reason",
        "description",
        "code",
    )
    prepopulated_fields = {"slug": ("title",)}
    show_change_link = True


@admin.register(Snippet)
class SnippetAdmin(CuratorFormsMixin, PublishActionsMixin, SimpleHistoryAdmin):
    list_display = (
        "title",
        "topic",
        "runtime_label",
        "verification",
        "verified",
        "is_published",
    )
    list_filter = ("is_published", "runtime", "verification", "language")
    list_select_related = ("topic",)
    search_fields = ("title", "slug", "code", "topic__name")
    prepopulated_fields = {"slug": ("title",)}
    autocomplete_fields = ("topic",)
    readonly_fields = (
        "verification",
        "verified_at",
        "verified_wall_ms",
        "verified_versions",
        "verified_output",
    )
    fieldsets = (
        (None, {"fields": ("topic", ("title", "slug"), "description", "is_published")}),
        ("Code", {"fields": (("language", "runtime"), "display_only_reason", "code", "position")}),
        ("Last verification", {"fields": readonly_fields, "classes": ("collapse",)}),
    )

    form = SnippetAdminForm
    actions = [*PublishActionsMixin.actions, "verify_now"]

    @admin.display(description="Runtime", ordering="runtime")
    def runtime_label(self, snippet):
        return snippet.get_runtime_display()

    @admin.display(description="Verified", ordering="verified_at")
    def verified(self, snippet):
        return f"{snippet.verified_at:%d %b %Y}" if snippet.verified_at else "–"

    def save_model(self, request, snippet, form, change):
        super().save_model(request, snippet, form, change)
        check_snippet_after_save(self, request, snippet, form.changed_data)

    @admin.action(description="Verify selected snippets now")
    def verify_now(self, request, queryset):
        runnable = [snippet for snippet in queryset if snippet.runtime]
        for snippet in runnable:
            check_snippet_after_save(self, request, snippet, ["code"])
        if skipped := len(queryset) - len(runnable):
            self.message_user(request, f"Skipped display-only snippets: {skipped}.", messages.INFO)
