"""Links: their health from the link checker, and the same URL under two topics."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, OuterRef, Subquery
from django.forms.models import BaseInlineFormSet
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from simple_history.admin import SimpleHistoryAdmin

from ..linkcheck import check_links
from ..models import CheckError, Link, LinkCheck, normalize_url
from .mixins import CuratorFormsMixin, PublishActionsMixin, counted


def warn_about_other_topics(modeladmin, request, link):
    """The same URL under another topic is allowed, but usually a slip: say where."""
    others = Link.objects.filter(normalized_url=link.normalized_url).exclude(topic=link.topic_id)
    for other in others.select_related("topic"):
        change_url = reverse("admin:glossary_link_change", args=[other.pk])
        message = format_html(
            '{} is also linked from the topic <a href="{}">{}</a>.',
            link.url,
            change_url,
            other.topic,
        )
        modeladmin.message_user(request, message, messages.WARNING)


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


class LinkInline(CuratorFormsMixin, admin.TabularInline):
    model = Link
    formset = LinkInlineFormSet
    extra = 1
    fields = ("title", "url", "group", "description", "position", "is_published")


class LinkHealthFilter(admin.SimpleListFilter):
    title = "health"
    parameter_name = "health"

    def lookups(self, request, model_admin):
        return [
            ("broken", "Broken"),
            ("redirected", "Moved permanently"),
            ("archived", "Archived repository"),
            ("never", "Never checked"),
        ]

    def queryset(self, request, queryset):
        match self.value():
            case "broken":
                return queryset.filter(broken_since__isnull=False)
            case "redirected":
                return queryset.exclude(last_suggested_url="").exclude(last_suggested_url=F("url"))
            case "archived":
                return queryset.filter(last_archived=True)
            case "never":
                return queryset.filter(last_checked_at__isnull=True)
        return queryset


class LinkCheckInline(admin.TabularInline):
    model = LinkCheck
    fields = ("checked_at", "outcome", "chain", "archived", "elapsed_ms")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "check"
    verbose_name_plural = "Check history"

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="Outcome")
    def outcome(self, check):
        if check.error in ("", CheckError.HTTP):
            return check.status
        return f"{check.get_error_display()}: {check.detail}"

    @admin.display(description="Redirects")
    def chain(self, check):
        if len(check.redirect_chain) < 2:
            return "–"
        return " → ".join(f"{status} {url}" for status, url in check.redirect_chain)


@admin.register(Link)
class LinkAdmin(CuratorFormsMixin, PublishActionsMixin, SimpleHistoryAdmin):
    list_display = ("title", "topic", "group", "position", "health", "is_published")
    list_filter = ("is_published", LinkHealthFilter, "group")
    list_select_related = ("topic",)
    list_editable = ("position",)
    search_fields = ("title", "url", "description", "topic__name")
    autocomplete_fields = ("topic",)
    readonly_fields = ("domain", "health", "created", "updated")
    fields = ("topic", "title", "url", "group", "description", "position", "is_published")
    fields += readonly_fields
    inlines = (LinkCheckInline,)
    actions = [*PublishActionsMixin.actions, "check_now"]

    def get_queryset(self, request):
        last = LinkCheck.objects.filter(link=OuterRef("pk")).order_by("-checked_at", "-pk")
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_checked_at=Subquery(last.values("checked_at")[:1]),
                last_ok=Subquery(last.values("ok")[:1]),
                last_suggested_url=Subquery(last.values("suggested_url")[:1]),
                last_archived=Subquery(last.values("archived")[:1]),
            )
        )

    def get_inlines(self, request, link):
        return self.inlines if link else ()  # a new link has no history yet

    def get_urls(self):
        accept = self.admin_site.admin_view(self.use_suggested_url)
        return [
            path("<int:pk>/use-suggested-url/", accept, name="glossary_link_use_suggested_url"),
            *super().get_urls(),
        ]

    def view_on_site(self, link):
        return link.topic.get_absolute_url()

    def save_model(self, request, link, form, change):
        super().save_model(request, link, form, change)
        warn_about_other_topics(self, request, link)

    @admin.display(description="Health", ordering="broken_since")
    def health(self, link):
        if getattr(link, "last_checked_at", None) is None:  # None on the add page too
            return "Never checked"
        notes = []
        if link.broken_since:
            notes.append(f"Broken since {link.broken_since:%d %b %Y}")
        elif not link.last_ok:
            notes.append("Failed last check")
        if link.last_archived:
            notes.append("Archived repository")
        if link.last_suggested_url and link.last_suggested_url != link.url:
            # A button of the surrounding form (changelist or change form), posted
            # elsewhere: accepting the new URL is one click from either page.
            accept = reverse("admin:glossary_link_use_suggested_url", args=[link.pk])
            notes.append(
                format_html(
                    'Moved permanently to {} <button type="submit" class="button" '
                    'formaction="{}" formmethod="post" formnovalidate>Use it</button>',
                    link.last_suggested_url,
                    accept,
                )
            )
        return format_html(", ".join(["{}"] * len(notes)), *notes) if notes else "OK"

    @admin.action(description="Check selected links now")
    def check_now(self, request, queryset):
        checked = check_links(list(queryset), timezone.now())
        failing = sum(not check.ok for _, check in checked)
        level = messages.WARNING if failing else messages.SUCCESS
        self.message_user(
            request, f"Checked {counted(len(checked), Link)}: {failing} failing.", level
        )

    @method_decorator(require_POST)
    def use_suggested_url(self, request, pk):
        link = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_change_permission(request, link):
            raise PermissionDenied
        old_url, link.url = link.url, link.last_suggested_url
        try:
            if not link.url:
                raise ValidationError("No permanent redirect has been seen for this link.")
            link.full_clean()
        except ValidationError as error:
            reason = "; ".join(error.messages)
            self.message_user(request, f"Kept {old_url}: {reason}", messages.ERROR)
        else:
            link._change_reason = "Moved permanently: took the new URL."
            link.save()
            self.log_change(request, link, [{"changed": {"fields": ["URL"]}}])
            self.message_user(request, f"{link.title} now links to {link.url}.", messages.SUCCESS)
        back = request.headers.get("Referer", "")
        if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
            back = reverse("admin:glossary_link_change", args=[pk])
        return redirect(back)
