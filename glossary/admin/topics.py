"""Topics, edited with their links and snippets inline."""

from django.contrib import admin
from django.db.models import Count
from django.http import HttpResponse, HttpResponseBadRequest
from django.urls import path
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST
from simple_history.admin import SimpleHistoryAdmin

from ..models import Link, Snippet, Topic
from ..rendering import render_markdown
from .links import LinkInline, warn_about_other_topics
from .mixins import CuratorFormsMixin, PublishActionsMixin
from .snippets import SnippetInline, check_snippet_after_save

# Longer than any summary; keeps a preview request cheap.
MAX_PREVIEW_CHARS = 50_000


@admin.register(Topic)
class TopicAdmin(CuratorFormsMixin, PublishActionsMixin, SimpleHistoryAdmin):
    list_display = (
        "name",
        "letter",
        "parent",
        "link_count",
        "snippet_count",
        "is_published",
        "is_featured",
    )
    list_filter = ("is_published", "is_featured", "letter", "links__group", "snippets__runtime")
    list_select_related = ("parent",)
    search_fields = ("name", "aliases", "search_aliases", "summary")
    prepopulated_fields = {"slug": ("name",)}
    autocomplete_fields = ("parent", "see_also")
    readonly_fields = ("letter", "created", "updated")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("name", "slug"),
                    "aliases",
                    "search_aliases",
                    "summary",
                    ("is_published", "is_featured"),
                )
            },
        ),
        ("Term links", {"fields": ("unlinked_terms",), "classes": ("collapse",)}),
        ("Relations", {"fields": ("parent", "see_also")}),
        ("Record", {"fields": ("letter", "created", "updated"), "classes": ("collapse",)}),
    )
    inlines = (LinkInline, SnippetInline)

    def get_urls(self):
        preview = self.admin_site.admin_view(self.preview_markdown)
        return [
            path("preview-markdown/", preview, name="glossary_markdown_preview"),
            *super().get_urls(),
        ]

    @method_decorator(require_POST)
    def preview_markdown(self, request):
        text = request.POST.get("text", "")
        if len(text) > MAX_PREVIEW_CHARS:
            return HttpResponseBadRequest(f"Preview at most {MAX_PREVIEW_CHARS} characters.")
        return HttpResponse(render_markdown(text))

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        for inline_form in formset.forms:
            obj = inline_form.instance
            if (
                obj.pk is None
                or not inline_form.has_changed()
                or inline_form in formset.deleted_forms
            ):
                continue
            if isinstance(obj, Link):
                warn_about_other_topics(self, request, obj)
            elif isinstance(obj, Snippet):
                check_snippet_after_save(self, request, obj, inline_form.changed_data)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                link_total=Count("links", distinct=True),
                snippet_total=Count("snippets", distinct=True),
            )
        )

    @admin.display(description="Links", ordering="link_total")
    def link_count(self, topic):
        return topic.link_total

    @admin.display(description="Snippets", ordering="snippet_total")
    def snippet_count(self, topic):
        return topic.snippet_total
