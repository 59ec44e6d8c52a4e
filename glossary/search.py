"""Reader search across topics, links and snippets.

Views call `search(query, user)` and get a `SearchResults` back; a PostgreSQL full-text
backend can replace `_contains_backend` later without touching views or templates.
"""

from dataclasses import dataclass, field

from django.db.models import Q

from .models import Link, Snippet, Topic

MAX_QUERY_LENGTH = 200
MAX_RESULTS = 50


@dataclass
class SearchResults:
    query: str = ""
    truncated: bool = False
    topics: list = field(default_factory=list)
    links: list = field(default_factory=list)
    snippets: list = field(default_factory=list)

    @property
    def total(self):
        return len(self.topics) + len(self.links) + len(self.snippets)

    @property
    def limited(self):
        """True when some kind of result hit MAX_RESULTS and more may exist."""
        return MAX_RESULTS in (len(self.topics), len(self.links), len(self.snippets))


def clean_query(raw):
    """The query as searched: no NUL bytes (PostgreSQL rejects them), trimmed, bounded.

    Returns the query and whether it had to be cut short.
    """
    query = " ".join(raw.replace("\x00", "").split())
    if len(query) > MAX_QUERY_LENGTH:
        return query[:MAX_QUERY_LENGTH].rstrip(), True
    return query, False


def search(query, user):
    """Search what `user` may see. An empty query returns empty results (no queries)."""
    query, truncated = clean_query(query)
    results = SearchResults(query=query, truncated=truncated)
    if query:
        results.topics, results.links, results.snippets = _contains_backend(query, user)
    return results


def _contains_backend(query, user):
    """Case-insensitive substring match; three queries. LIKE wildcards are escaped by
    the ORM, so `%` and `_` match literally."""
    topics = Topic.objects.visible_to(user).filter(
        Q(name__icontains=query) | Q(aliases__icontains=query) | Q(summary__icontains=query)
    )
    links = (
        Link.objects.visible_to(user)
        .filter(Q(title__icontains=query) | Q(description__icontains=query))
        .select_related("topic")
        .order_by("title", "pk")
    )
    snippets = (
        Snippet.objects.visible_to(user)
        .filter(Q(title__icontains=query) | Q(code__icontains=query))
        .select_related("topic")
        .order_by("title", "pk")
    )
    return (
        list(topics[:MAX_RESULTS]),
        list(links[:MAX_RESULTS]),
        list(snippets[:MAX_RESULTS]),
    )
