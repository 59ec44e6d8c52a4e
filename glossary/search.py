"""Reader search across topics, links and snippets.

Views call `search(query, user)` and get a `SearchResults` back, whatever the database.
On PostgreSQL it is weighted full-text search in websearch syntax, ranked, with trigram
similarity on topic names and aliases so that a misspelt name still finds its topic;
elsewhere (SQLite) it is a case-insensitive substring match.

On PostgreSQL each row's `search_vector` is kept current by a trigger (migration 0005, which
also holds the weights: topic name and aliases A, summary B; link and snippet title B,
description C, snippet code D) and has a GIN index; the trigram indexes on UPPER(name) and
UPPER(aliases) come from migration 0002. tests/test_search_postgresql.py checks the plans.
"""

from dataclasses import dataclass, field

from django.contrib.postgres.search import (
    SearchQuery,
    SearchRank,
    TrigramSimilarity,
    TrigramWordSimilarity,
)
from django.db import connection
from django.db.models import ExpressionWrapper, F, FloatField, Q, Value
from django.db.models.functions import Greatest, Upper

from .models import Link, Snippet, Topic

MAX_QUERY_LENGTH = 200
MAX_RESULTS = 50
# Rows of each kind that get ranked. Ranking reads each candidate's stored vector, and a
# common word matches most of 100,000 links (ranking them all took a search past 200 ms);
# past this many the page already asks for another word, and which come first is
# best-effort.
RANK_CANDIDATES = 200

SEARCH_CONFIG = "english"  # as in the triggers of migration 0005


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


def query_words(query):
    """The words a query asks for, without websearch syntax: quotes, `or`, and words
    excluded with a leading `-`."""
    words = (word.strip('"') for word in query.split())
    return [word for word in words if word and word[0] != "-" and word.lower() != "or"]


def search(query, user):
    """Search what `user` may see: three queries, none for an empty query."""
    query, truncated = clean_query(query)
    results = SearchResults(query=query, truncated=truncated)
    if query:
        backend = postgresql_backend if connection.vendor == "postgresql" else contains_backend
        results.topics, results.links, results.snippets = backend(query, user)
    return results


def contains_backend(query, user):
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


def postgresql_backend(query, user):
    """Ranked full-text search, best match first; three queries.

    websearch_to_tsquery reads any input without error ("quoted phrases", -not, or);
    input with no words in it matches nothing rather than everything.
    """
    text_query = SearchQuery(query, config=SEARCH_CONFIG, search_type="websearch")
    return (
        _ranked_topics(query, text_query, user),
        _ranked(Link, text_query, user),
        _ranked(Snippet, text_query, user),
    )


def _ranked(model, text_query, user):
    candidates = (
        model.objects.visible_to(user)
        .filter(search_vector=text_query)
        .order_by()
        .values("pk")[:RANK_CANDIDATES]
    )
    return list(
        model.objects.filter(pk__in=candidates)
        .select_related("topic")
        .defer("search_vector", "topic__search_vector")
        .annotate(rank=SearchRank(F("search_vector"), text_query))
        .order_by("-rank", "title", "pk")[:MAX_RESULTS]
    )


def _ranked_topics(query, text_query, user):
    """Topics matching the words, plus topics whose name or an alias looks like the words:
    trigram similarity ("postgress", "mongo db") or a plain substring ("gres", "🐘")."""
    visible = Topic.objects.visible_to(user).order_by().values("pk")
    candidates = visible.filter(search_vector=text_query)[:RANK_CANDIDATES]
    name_similarity = Value(0.0)
    if words := " ".join(query_words(query)):
        # UPPER() so that the trigram indexes also serve icontains, which Django writes as
        # UPPER(column) LIKE UPPER(pattern); trigrams ignore case either way. Each arm is a
        # query of its own in a UNION: under one OR the planner scans every row instead.
        by_name = visible.alias(upper_name=Upper("name"), upper_aliases=Upper("aliases"))
        arms = [by_name.filter(Q(name__icontains=words) | Q(aliases__icontains=words))]
        if any(char.isalnum() for char in words):
            # Trigrams are made of letters and digits: without any, nothing is similar.
            arms.append(
                by_name.filter(
                    Q(upper_name__trigram_similar=words)
                    | Q(upper_name__trigram_word_similar=words)
                    | Q(upper_aliases__trigram_word_similar=words)
                )
            )
        candidates = candidates.union(*arms)
        name_similarity = Greatest(
            TrigramSimilarity("name", words),
            TrigramWordSimilarity(words, "name"),
            TrigramWordSimilarity(words, "aliases"),
        )
    score = ExpressionWrapper(
        SearchRank(F("search_vector"), text_query) + name_similarity, output_field=FloatField()
    )
    return list(
        Topic.objects.filter(pk__in=candidates)
        .defer("search_vector")
        .annotate(rank=score)
        .order_by("-rank", "name")[:MAX_RESULTS]
    )
