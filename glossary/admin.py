from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Count, F, OuterRef, Subquery
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from simple_history.admin import SimpleHistoryAdmin
from simple_history.utils import bulk_update_with_history

from .checking.review import review
from .curation import runtime_problem, verify_in_background
from .forms import CodeTextarea, MarkdownTextarea, SnippetAdminForm
from .linkcheck import check_links
from .models import (
    Check,
    CheckError,
    ContentRevision,
    DataVariant,
    Exercise,
    Hint,
    Link,
    LinkCheck,
    Path,
    PathStep,
    ReaderReport,
    ReportKind,
    ReportStatus,
    Share,
    Snippet,
    Topic,
    Verification,
    WrongAnswer,
    normalize_url,
)
from .rendering import render_markdown

# Longer than any summary; keeps a preview request cheap.
MAX_PREVIEW_CHARS = 50_000


def counted(number, model):
    """ "1 link", "3 links"."""
    names = model._meta.verbose_name if number == 1 else model._meta.verbose_name_plural
    return f"{number} {names}"


class PublishActionsMixin:
    actions = ["publish", "unpublish"]

    @admin.action(description="Publish selected items")
    def publish(self, request, queryset):
        self.set_published(request, queryset, True)

    @admin.action(description="Unpublish selected items")
    def unpublish(self, request, queryset):
        self.set_published(request, queryset, False)

    def set_published(self, request, queryset, published):
        """Change only what needs it, log each change, and say what happened."""
        verb = "Published" if published else "Unpublished"
        reason = f"{verb} with a bulk action."
        changing = list(queryset.exclude(is_published=published))
        unchanged = queryset.count() - len(changing)
        now = timezone.now()
        for obj in changing:
            obj.is_published, obj.updated = published, now
        bulk_update_with_history(
            changing,
            self.model,
            ["is_published", "updated"],
            default_user=request.user,
            default_change_reason=reason,
        )
        ContentRevision.bump()  # bulk updates send no signals
        if changing:
            LogEntry.objects.log_actions(request.user.pk, changing, CHANGE, reason)
        message = f"{verb} {counted(len(changing), self.model)}"
        if unchanged:
            was = "was" if unchanged == 1 else "were"
            message += f"; {unchanged} {was} already {verb.lower()}"
        self.message_user(request, f"{message}.", messages.SUCCESS)


MARKDOWN_FIELDS = ("summary", "description", "prompt", "explanation", "text")
CODE_FIELDS = ("setup", "starter_code", "solution", "code")


class CuratorFormsMixin:
    """New objects made in the admin start unpublished (the model default stays True);
    Markdown fields get a preview and code a monospace editor."""

    class Media:
        css = {"all": ["css/admin.css"]}
        js = ["js/markdown_preview.js"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "is_published":
            field.initial = False
        elif db_field.name in MARKDOWN_FIELDS and "Markdown" in db_field.help_text:
            field.widget = MarkdownTextarea()
        elif db_field.name in CODE_FIELDS and isinstance(db_field, models.TextField):
            field.widget = CodeTextarea({"rows": 10})
        return field


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


@admin.register(Share)
class ShareAdmin(admin.ModelAdmin):
    """Code readers shared from the playground: staff review it and delete what must go."""

    list_display = ("id", "runtime", "language", "first_line", "created", "last_viewed", "views")
    list_filter = ("runtime", "language")
    search_fields = ("id", "code")
    date_hierarchy = "created"
    readonly_fields = ("id", "runtime", "language", "code", "created", "last_viewed", "views")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, share=None):
        return False

    @admin.display(description="Code")
    def first_line(self, share):
        return share.code.strip().splitlines()[0][:80]


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
