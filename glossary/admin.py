from django.contrib import admin, messages
from django.db.models import Count
from django.forms.models import BaseInlineFormSet
from django.utils import timezone

from .models import ContentRevision, Link, Share, Snippet, Topic, normalize_url


class PublishActionsMixin:
    actions = ["publish", "unpublish"]

    @admin.action(description="Publish selected items")
    def publish(self, request, queryset):
        count = queryset.update(is_published=True, updated=timezone.now())
        ContentRevision.bump()  # update() sends no signals
        self.message_user(request, f"Published {count} item(s).", messages.SUCCESS)

    @admin.action(description="Unpublish selected items")
    def unpublish(self, request, queryset):
        count = queryset.update(is_published=False, updated=timezone.now())
        ContentRevision.bump()
        self.message_user(request, f"Unpublished {count} item(s).", messages.SUCCESS)


class LinkInlineFormSet(BaseInlineFormSet):
    def clean(self):
        """Refuse the same URL twice among the links submitted together."""
        super().clean()
        seen = set()
        for form in self.forms:
            url = form.cleaned_data.get("url") if hasattr(form, "cleaned_data") else None
            if not url or form.cleaned_data.get("DELETE"):
                continue
            if (normalized := normalize_url(url)) in seen:
                form.add_error("url", "This topic already has a link to this URL.")
            seen.add(normalized)


class LinkInline(admin.TabularInline):
    model = Link
    formset = LinkInlineFormSet
    extra = 1
    fields = ("title", "url", "group", "description", "position", "is_published")


class SnippetInline(admin.StackedInline):
    model = Snippet
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


@admin.register(Topic)
class TopicAdmin(PublishActionsMixin, admin.ModelAdmin):
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


@admin.register(Link)
class LinkAdmin(PublishActionsMixin, admin.ModelAdmin):
    list_display = ("title", "topic", "domain", "group", "position", "is_published")
    list_filter = ("is_published", "group")
    list_select_related = ("topic",)
    list_editable = ("position",)
    search_fields = ("title", "url", "description", "topic__name")
    autocomplete_fields = ("topic",)
    readonly_fields = ("domain", "created", "updated")
    fields = ("topic", "title", "url", "group", "description", "position", "is_published")
    fields += readonly_fields

    def view_on_site(self, link):
        return link.topic.get_absolute_url()


@admin.register(Snippet)
class SnippetAdmin(PublishActionsMixin, admin.ModelAdmin):
    list_display = (
        "title",
        "topic",
        "language",
        "runtime_label",
        "verification",
        "verified_at",
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

    @admin.display(description="Runtime", ordering="runtime")
    def runtime_label(self, snippet):
        return snippet.get_runtime_display()


@admin.register(Share)
class ShareAdmin(admin.ModelAdmin):
    """Code readers shared from the playground: staff review it and delete what must go."""

    list_display = ("id", "runtime", "first_line", "created", "last_viewed", "views")
    list_filter = ("runtime",)
    search_fields = ("id", "code")
    date_hierarchy = "created"
    readonly_fields = ("id", "runtime", "code", "created", "last_viewed", "views")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, share=None):
        return False

    @admin.display(description="Code")
    def first_line(self, share):
        return share.code.strip().splitlines()[0][:80]
