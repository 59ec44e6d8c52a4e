"""The queue of readers' problem reports and link suggestions."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from ..models import Link, ReaderReport, ReportKind, ReportStatus
from .mixins import counted


@admin.register(ReaderReport)
class ReaderReportAdmin(admin.ModelAdmin):
    list_display = ("created", "kind", "status", "about", "excerpt", "suggested_url")
    list_filter = ("status", "kind")
    list_select_related = ("topic", "snippet")
    search_fields = ("message", "url", "title")
    autocomplete_fields = ("topic", "snippet")
    readonly_fields = ("kind", "url", "title", "message", "created", "created_link")
    fields = ("kind", "status", "topic", "snippet", *readonly_fields[1:])
    actions = ["accept", "dismiss"]

    class Media:
        css = {"all": ["css/admin.css"]}

    def has_add_permission(self, request):
        return False  # reports come from readers

    @admin.display(description="About")
    def about(self, report):
        return report.snippet or report.topic or "–"

    @admin.display(description="Message")
    def excerpt(self, report):
        return report.message[:120] + ("…" if len(report.message) > 120 else "")

    @admin.display(description="Link")
    def suggested_url(self, report):
        return report.url or "–"

    @admin.action(description="Accept (a suggested link becomes a draft link)")
    def accept(self, request, queryset):
        accepted = 0
        for report in queryset.filter(status=ReportStatus.NEW):
            if report.kind == ReportKind.LINK:
                if problem := self.make_draft_link(report):
                    self.message_user(request, f"{report}: {problem}", messages.ERROR)
                    continue
            report.status = ReportStatus.ACCEPTED
            report.save(update_fields=["status", "created_link"])
            self.log_change(request, report, "Accepted.")
            accepted += 1
        self.message_user(request, f"Accepted {counted(accepted, ReaderReport)}.", messages.SUCCESS)

    def make_draft_link(self, report):
        """A draft link from a suggestion; returns why it cannot be made, or ""."""
        if report.topic is None:
            return "choose the topic it belongs to first."
        link = Link(
            topic=report.topic,
            url=report.url,
            title=report.title or report.url,
            description=report.message,
            is_published=False,
        )
        try:
            link.full_clean()
        except ValidationError as error:
            return "; ".join(error.messages)
        link._change_reason = "Suggested by a reader."
        link.save()
        report.created_link = link
        return ""

    @admin.action(description="Dismiss")
    def dismiss(self, request, queryset):
        count = queryset.exclude(status=ReportStatus.DISMISSED).update(
            status=ReportStatus.DISMISSED
        )
        self.message_user(request, f"Dismissed {counted(count, ReaderReport)}.", messages.SUCCESS)
