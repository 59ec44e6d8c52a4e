import string

from django.conf import settings
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.db.models import Count, F
from django.db.models.functions import Lower
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from django.views.generic import DetailView, ListView, TemplateView

from . import playground, termlinks
from . import search as site_search
from .caching import count_this_hour
from .forms import ReaderReportForm
from .models import Exercise, Link, LinkGroup, Path, ReportKind, Share, Snippet, Topic

LETTERS = [*string.ascii_uppercase, "#"]
RECENT_LINKS = 6
SEARCH_PAGE_SIZE = 10  # results of each kind per page


def letter_bar(counts):
    """Every letter with its topic count, in A–Z order with "#" last."""
    return [{"letter": letter, "count": counts.get(letter, 0)} for letter in LETTERS]


def group_links(links):
    """Links grouped under their group label, groups in LinkGroup order."""
    by_group = {}
    for link in links:
        by_group.setdefault(link.group, []).append(link)
    return [
        {"value": group.value, "label": group.label, "links": by_group[group.value]}
        for group in LinkGroup
        if group.value in by_group
    ]


class VisibleToReaderMixin:
    """Readers see published content only; staff see drafts too."""

    def get_queryset(self):
        return self.model.objects.visible_to(self.request.user)


def related_topics(topic, user):
    """The sidebar's groups, each topic shown once: a parent is "Part of" before anything
    else, a child is "Includes" before "See also" (one query)."""
    related = list(Topic.objects.visible_to(user).related_to(topic))
    parent = [other for other in related if other.is_parent]
    children = [other for other in related if other.is_child and not other.is_parent]
    see_also = [other for other in related if not (other.is_parent or other.is_child)]
    groups = [("Part of", parent), ("Includes", children), ("See also", see_also)]
    return [(heading, topics) for heading, topics in groups if topics]


def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    counts = Topic.objects.visible_to(user).letter_counts()
    snippets = Snippet.objects.visible_to(user).select_related("topic")
    context = {
        "letters": letter_bar(counts),
        "topic_total": sum(counts.values()),
        "link_total": Link.objects.visible_to(user).count(),
        "snippet_total": snippets.count(),
        "featured_topics": Topic.objects.visible_to(user).featured().for_index(),
        "featured_snippet": snippets.runnable().filter(topic__is_featured=True).first(),
        "lessons": snippets.lessons(),
        "paths": Path.objects.visible_to(user),
        "recent_links": Link.objects.visible_to(user).newest_first()[:RECENT_LINKS],
    }
    return render(request, "glossary/home.html", context)


class TopicIndexView(VisibleToReaderMixin, ListView):
    """Every letter with its topics, on one page."""

    model = Topic
    template_name = "glossary/topic_index.html"

    def get_queryset(self):
        return super().get_queryset().only("name", "slug", "letter", "is_published")

    def get_context_data(self, **kwargs):
        by_letter = {}
        for topic in self.object_list:
            by_letter.setdefault(topic.letter, []).append(topic)
        sections = [(letter, by_letter[letter]) for letter in LETTERS if letter in by_letter]
        return super().get_context_data(sections=sections, **kwargs)


class LetterView(VisibleToReaderMixin, ListView):
    """Topics under one letter. The URL letter is upper case; lower case redirects."""

    model = Topic

    def get(self, request, *args, **kwargs):
        letter = kwargs["letter"]
        if letter != letter.upper():
            return redirect("glossary:letter-detail", letter.upper(), permanent=True)
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return super().get_queryset().filter(letter=self.kwargs["letter"]).for_index()

    def get_context_data(self, **kwargs):
        counts = Topic.objects.visible_to(self.request.user).letter_counts()
        return super().get_context_data(
            letter=self.kwargs["letter"], letters=letter_bar(counts), **kwargs
        )


class TopicDetailView(DetailView):
    """A topic; a slug that names none but is one of a topic's aliases redirects to it."""

    model = Topic

    def get(self, request, *args, **kwargs):
        try:
            return super().get(request, *args, **kwargs)
        except Http404:
            topic = Topic.objects.visible_to(request.user).by_alias(kwargs["slug"])
            if topic is None:
                raise
            return redirect(topic, permanent=True)

    def get_queryset(self):
        return Topic.objects.for_detail(self.request.user)

    def get_context_data(self, **kwargs):
        termlinks.link_topic_page(self.object, termlinks.TermIndex.current())
        return super().get_context_data(
            link_groups=group_links(self.object.links.all()),
            related=related_topics(self.object, self.request.user),
            **kwargs,
        )


class SnippetDetailView(VisibleToReaderMixin, DetailView):
    model = Snippet

    def get_queryset(self):
        return super().get_queryset().select_related("topic")

    def get_object(self, queryset=None):
        snippet = super().get_object(queryset)
        termlinks.link_snippet(snippet, snippet.topic, termlinks.TermIndex.current())
        return snippet


class LinkListView(VisibleToReaderMixin, ListView):
    """All links, optionally filtered by ?group= and ?topic= (slug).

    A filter value that matches nothing is ignored and reported, never an error.
    """

    model = Link
    paginate_by = 50

    def get(self, request, *args, **kwargs):
        user = request.user
        self.topics = list(Topic.objects.visible_to(user).only("name", "slug"))
        self.group = self.topic = None
        self.ignored_filters = []
        group = request.GET.get("group", "")
        if group in LinkGroup.values:
            self.group = LinkGroup(group)
        elif group:
            self.ignored_filters.append("group")
        slug = request.GET.get("topic", "")
        self.topic = next((topic for topic in self.topics if topic.slug == slug), None)
        if slug and self.topic is None:
            self.ignored_filters.append("topic")
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        links = (
            super().get_queryset().select_related("topic").order_by("topic", Lower("title"), "pk")
        )
        if self.group:
            links = links.filter(group=self.group)
        if self.topic:
            links = links.filter(topic=self.topic)
        return links

    def get_context_data(self, **kwargs):
        query = {}
        if self.group:
            query["group"] = self.group.value
        if self.topic:
            query["topic"] = self.topic.slug
        return super().get_context_data(
            groups=LinkGroup.choices,
            topics=self.topics,
            selected_group=self.group,
            selected_topic=self.topic,
            ignored_filters=self.ignored_filters,
            filter_query=query,
            **kwargs,
        )


def search(request: HttpRequest) -> HttpResponse:
    """Results grouped by kind, each kind paginated on its own (?links_page=2)."""
    results = site_search.search(request.GET.get("q", ""), request.user)
    sections = {}
    for kind in site_search.KINDS:
        param = f"{kind}_page"
        page = Paginator(getattr(results, kind), SEARCH_PAGE_SIZE).get_page(request.GET.get(param))
        sections[kind] = {
            "page": page,
            "previous": page.has_previous() and page_link(request, param, page.number - 1, kind),
            "next": page.has_next() and page_link(request, param, page.number + 1, kind),
        }
    context = {
        "results": results,
        "sections": sections,
        "query": results.query,
        "searched": bool(results.query),
        "max_results": site_search.MAX_RESULTS,
    }
    return render(request, "glossary/search.html", context)


def page_link(request, param, number, kind):
    """This search with another page of one kind, scrolled to that kind's results."""
    query = request.GET.copy()
    query[param] = number
    return f"?{query.urlencode()}#{kind}"


def export_json(request: HttpRequest) -> JsonResponse:
    """Published content only, whoever asks: the export is for reuse, not for editing."""
    topics = [
        {
            "name": topic.name,
            "slug": topic.slug,
            "letter": topic.letter,
            "url": request.build_absolute_uri(topic.get_absolute_url()),
            "summary": topic.summary,
            "aliases": topic.alias_list,
            "parent": topic.parent.slug if topic.parent else None,
            "see_also": [other.slug for other in topic.see_also.all()],
            "links": [
                {
                    "title": link.title,
                    "url": link.url,
                    "description": link.description,
                    "group": link.group,
                }
                for link in topic.links.all()
            ],
            "snippets": [
                {
                    "title": snippet.title,
                    "slug": snippet.slug,
                    "url": request.build_absolute_uri(snippet.get_absolute_url()),
                    "language": snippet.language,
                    "runtime": snippet.runtime,
                    "code": snippet.code,
                    "description": snippet.description,
                }
                for snippet in topic.snippets.all()
            ],
        }
        for topic in Topic.objects.for_export()
    ]
    data = {"generated": timezone.now().isoformat(), "topics": topics}
    return JsonResponse(data, json_dumps_params={"ensure_ascii": False, "indent": 2})


class AboutView(TemplateView):
    """The three models, their diagram, and the Django ORM examples that run on them."""

    template_name = "glossary/about.html"

    def get_context_data(self, **kwargs):
        user = self.request.user
        examples = Snippet.objects.visible_to(user).lessons().select_related("topic")
        orm_topic = Topic.objects.visible_to(user).filter(slug="django-orm").first()
        return super().get_context_data(examples=examples, orm_topic=orm_topic, **kwargs)


def topic_preview(request: HttpRequest, slug: str) -> HttpResponse:
    """The card a linked term shows on hover or focus: an HTML fragment. Drafts are never
    linked, so they are never previewed either, not even for staff."""
    topic = get_object_or_404(Topic.objects.published().for_preview(), slug=slug)
    context = {"topic": topic, "lead": termlinks.first_sentences(topic.summary_html)}
    return render(request, "glossary/topic_preview.html", context)


def report(request: HttpRequest) -> HttpResponse:
    """A reader reports a problem or suggests a link, about a topic or snippet or in general.

    Its own page, not part of the cached topic pages: the form carries a CSRF token.
    """
    params = request.POST if request.method == "POST" else request.GET
    topic = snippet = None
    if slug := params.get("snippet"):
        snippet = get_object_or_404(Snippet.objects.published().select_related("topic"), slug=slug)
        topic = snippet.topic
    elif slug := params.get("topic"):
        topic = get_object_or_404(Topic.objects.published(), slug=slug)
    context = {"topic": topic, "snippet": snippet}
    if request.method != "POST":
        kind = params.get("kind") if params.get("kind") in ReportKind.values else "problem"
        context["form"] = ReaderReportForm(initial={"kind": kind})
        return render(request, "glossary/report_form.html", context)
    form = context["form"] = ReaderReportForm(request.POST)
    if count_this_hour("reports", request) > settings.READER_REPORTS_PER_HOUR:
        context["limited"] = True
        return render(request, "glossary/report_form.html", context, status=429)
    if not form.is_valid():
        return render(request, "glossary/report_form.html", context, status=400)
    if not form.is_from_a_bot:
        form.instance.topic, form.instance.snippet = topic, snippet
        form.save()
    return render(request, "glossary/report_thanks.html", context)


def playground_page(request: HttpRequest, share_id: str | None = None) -> HttpResponse:
    """/play/ with a choice's starter (?runtime=<its key>), or /play/<id>/ with shared code."""
    share = None
    if share_id is not None:
        share = get_object_or_404(Share, pk=share_id)
        Share.objects.filter(pk=share.pk).update(last_viewed=timezone.now(), views=F("views") + 1)
    response = render_playground(request, share=share)
    if share is not None:
        response["X-Robots-Tag"] = "noindex"
    return response


def render_playground(request, share=None, code=None, key=None, error="", status=200):
    choices = playground.available_choices()
    if share:
        chosen = playground.find(runtime=share.runtime, language=share.language)
    else:
        chosen = playground.find(key or request.GET.get("runtime"))
    chosen = chosen or choices[0]
    starters = {
        choice.key: {"label": choice.label, "language": choice.language, "code": choice.starter}
        for choice in choices
    }
    context = {
        "choices": choices,
        "chosen": chosen,
        "code": share.code if share else code or chosen.starter,
        "starters": starters,
        "share": share,
        "error": error,
        "reader_code": settings.SNIPPET_READER_CODE,
        "max_kib": settings.SNIPPET_SHARE_MAX_BYTES // 1024,
    }
    return render(request, "glossary/playground.html", context, status=status)


@require_POST
def share_code(request: HttpRequest) -> HttpResponse:
    """Store the posted code and send the reader to its permalink (JSON: its address)."""
    wants_json = "application/json" in request.headers.get("Accept", "")
    key = request.POST.get("runtime", "")  # a playground choice's key
    choice = playground.find(key)
    # Browsers send a textarea's line breaks as CRLF.
    code = request.POST.get("code", "").replace("\r\n", "\n")
    error, status = "", 400
    if not settings.SNIPPET_READER_CODE:
        error = playground.READER_CODE_OFF
    elif choice is None:
        error = f"There is no runtime {key!r} here."
    elif message := playground.code_error(code):
        error = message
    elif count_this_hour("shares", request) > settings.SNIPPET_SHARES_PER_HOUR:
        error, status = "Too many shares from your address; try again in an hour.", 429
    if error:
        if wants_json:
            return JsonResponse({"error": error}, status=status)
        return render_playground(request, code=code, key=key, error=error, status=status)
    runtime, language = choice.runtime.value, choice.language.value
    digest = Share.digest_of(runtime, language, code)
    try:
        share, _ = Share.objects.get_or_create(
            digest=digest, defaults={"runtime": runtime, "language": language, "code": code}
        )
    except IntegrityError:  # the same code, shared at the same moment
        share = Share.objects.get(digest=digest)
    if wants_json:
        return JsonResponse({"url": request.build_absolute_uri(share.get_absolute_url())})
    return redirect(share)


class ExerciseListView(VisibleToReaderMixin, ListView):
    """Every exercise, grouped by topic (one query)."""

    model = Exercise

    def get_queryset(self):
        return super().get_queryset().select_related("topic")


def exercises_for_page(queryset):
    """What an exercise page shows: its topic, hints, checks and how many hidden data sets
    it is checked on (three queries)."""
    return (
        queryset.select_related("topic")
        .annotate(variant_count=Count("variants"))
        .prefetch_related("hints", "checks")
    )


class ExerciseDetailView(VisibleToReaderMixin, DetailView):
    model = Exercise

    def get_queryset(self):
        return exercises_for_page(super().get_queryset())


class PathListView(VisibleToReaderMixin, ListView):
    model = Path

    def get_queryset(self):
        return super().get_queryset().with_steps(self.request.user)


class PathDetailView(VisibleToReaderMixin, DetailView):
    model = Path

    def get_queryset(self):
        return super().get_queryset().with_steps(self.request.user)


def path_step(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """Step `number` (from 1) of a path: its topic, snippet or exercise, with the way on."""
    user = request.user
    path = get_object_or_404(Path.objects.visible_to(user).with_steps(user), slug=slug)
    steps = list(path.steps.all())
    if not 1 <= number <= len(steps):
        raise Http404("No such step.")
    step = steps[number - 1]
    context = {
        "path": path,
        "step": step,
        "number": number,
        "total": len(steps),
        "previous": steps[number - 2] if number > 1 else None,
        "next": steps[number] if number < len(steps) else None,
    }
    index = termlinks.TermIndex.current()
    if step.topic_id:
        topic = context["topic"] = Topic.objects.for_detail(user).get(pk=step.topic_id)
        termlinks.link_topic_page(topic, index)
        context["link_groups"] = group_links(topic.links.all())
        context["related"] = related_topics(topic, user)
    elif step.snippet_id:
        snippet = context["snippet"] = step.snippet
        termlinks.link_snippet(snippet, snippet.topic, index)
    else:
        context["exercise"] = exercises_for_page(Exercise.objects).get(pk=step.exercise_id)
    return render(request, "glossary/path_step.html", context)
