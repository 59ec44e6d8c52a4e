"""Reader search across topics, links and snippets.

Views call `search(query, user)` and get a `SearchResults` back, whatever the database.
A topic whose name or alias is exactly the query comes first on either backend. When no
topic found has a name or alias holding every word of the query, the closest topic name or
alias is suggested (difflib, over every topic on SQLite and over the topics that trigram
similarity found on PostgreSQL).

On PostgreSQL it is weighted full-text search in websearch syntax, ranked, with trigram
similarity on topic names and aliases so that a misspelt name still finds its topic;
elsewhere (SQLite) each word of the query must appear, as a case-insensitive substring,
somewhere in a row, and rows are ranked by where and how often the words appear.

On PostgreSQL each row's `search_vector` is kept current by a trigger (migration 0005, which
also holds the weights: topic name and aliases A, summary B; link and snippet title B,
description C, snippet code D; migration 0006 adds search_aliases at A) and has a GIN index;
the trigram indexes on UPPER(name), UPPER(aliases) and UPPER(search_aliases) come from
migrations 0002 and 0006. tests/test_search_postgresql.py checks the plans.
"""

import difflib
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from operator import and_, or_
from typing import NamedTuple

import snowballstemmer
from django.core.cache import cache
from django.db import connection
from django.db.models import (
    Case,
    ExpressionWrapper,
    IntegerField,
    Q,
    Value,
    When,
)
from django.db.models.functions import Least, Length, Lower, Replace

from .caching import TIMEOUT, cached
from .models import ContentRevision, Language, Link, LinkGroup, Snippet, Topic

MAX_QUERY_LENGTH = 200
# Results of each kind that are ranked and listed. On PostgreSQL ranking reads each
# candidate's stored vector, and a common word matches most of 100,000 links (ranking them
# all took a search past 200 ms); past this many the page asks for another word, and which
# come first is best-effort.
MAX_RESULTS = 200
KINDS = ("topics", "links", "snippets")
SEARCH_CONFIG = "english"  # as in the triggers of migrations 0005 and 0006
# How close (difflib's ratio) a name must be to be suggested: "postgress" is 0.95 from
# "postgresql", "reddis" 0.91 from "redis"; "select" is 0.5 from "celery".
SUGGESTION_CUTOFF = 0.75
ALIAS_FIELDS = ("aliases", "search_aliases")
# PostgreSQL's "english" configuration stems words with this same Snowball algorithm.
STEMMER = snowballstemmer.stemmer("english")
# Shorter stems find too much on SQLite: "uses" stems to "use", which is in "user".
MIN_STEM_LENGTH = 4


# Results are rows of what the search page shows (templates/glossary/search.html,
# glossary/_link.html), not model instances: building up to MAX_RESULTS instances of each
# kind, and a topic for each link and snippet, took most of a common word's time (and
# pickling them for the cache a few milliseconds more).
class TopicResult(NamedTuple):
    """A topic as its result shows it, with the names a suggestion is chosen by."""

    name: str
    slug: str
    aliases: str
    search_aliases: str
    summary_html: str
    is_published: bool

    get_absolute_url = Topic.get_absolute_url
    alias_list = Topic.alias_list


class TopicRef(NamedTuple):
    """The topic a link or snippet belongs to, as its result names it."""

    name: str
    slug: str
    is_published: bool

    get_absolute_url = Topic.get_absolute_url


class LinkResult(NamedTuple):
    url: str
    domain: str
    title: str
    description: str
    group: str
    is_published: bool
    broken_since: datetime | None
    topic: TopicRef

    def get_group_display(self):
        return dict(LinkGroup.choices).get(self.group, self.group)


class SnippetResult(NamedTuple):
    title: str
    slug: str
    code: str
    language: str
    is_published: bool
    topic: TopicRef

    get_absolute_url = Snippet.get_absolute_url

    def get_language_display(self):
        return dict(Language.choices).get(self.language, self.language)


RESULTS = {Link: LinkResult, Snippet: SnippetResult}
# In the search cache's keys: a change to the shape of the rows above must change it, so
# that no process unpickles results stored in another shape.
RESULTS_VERSION = 2


def result_fields(model):
    """The columns of a link's or snippet's result: its own, then its topic's."""
    own = [name for name in RESULTS[model]._fields if name != "topic"]
    return own, TopicRef._fields


def as_results(model, rows):
    """Results from rows of the columns result_fields() names."""
    result, split = RESULTS[model], len(RESULTS[model]._fields) - 1
    return [result(*row[:split], TopicRef(*row[split:])) for row in rows]


@dataclass
class SearchResults:
    query: str = ""
    truncated: bool = False
    topics: list = field(default_factory=list)
    links: list = field(default_factory=list)
    snippets: list = field(default_factory=list)
    # A topic from the results on PostgreSQL; on SQLite, one with only its names loaded.
    suggestion: TopicResult | Topic | None = None

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


def distinct_words(query):
    """The query's words in lower case, each once: "Postgres postgres" asks for one word."""
    return list(dict.fromkeys(word.lower() for word in query_words(query)))


def search(query, user):
    """Search what `user` may see: three queries, and on SQLite a fourth when a suggestion
    is looked for; none for an empty query.

    Readers' results are cached per content revision, as their pages are: the key changes
    whenever content does, and a common word asked again costs no query. Staff see drafts,
    so their results are never stored.
    """
    cleaned = clean_query(query)[0]
    if user.is_staff or not cleaned:
        return _search(query, user)
    digest = hashlib.sha256(cleaned.encode()).hexdigest()
    key = f"search:{RESULTS_VERSION}:{ContentRevision.current()}:{digest}"
    if (results := cached(cache.get, key)) is None:
        results = _search(query, user)
        cached(cache.set, key, results, TIMEOUT)
    return results


def _search(query, user):
    query, truncated = clean_query(query)
    results = SearchResults(query=query, truncated=truncated)
    if query:
        postgresql = connection.vendor == "postgresql"
        backend = postgresql_backend if postgresql else contains_backend
        results.topics, results.links, results.snippets = backend(query, user)
        words = distinct_words(query)
        substrings = [substring_for(word) for word in words]
        if words and not any(names_words(topic, substrings) for topic in results.topics):
            # Trigram matching already brought the look-alikes in on PostgreSQL.
            candidates = (
                results.topics
                if postgresql
                else Topic.objects.visible_to(user).only("name", "slug", *ALIAS_FIELDS)
            )
            results.suggestion = closest_topic(" ".join(words), candidates)
    return results


def topic_names(topic):
    """A topic's name and every alias, search-only ones included."""
    names = [topic.name, *topic.alias_list]
    names += (alias.strip() for alias in topic.search_aliases.split(","))
    return [name for name in names if name]


def names_words(topic, substrings):
    """Whether the topic's name or one of its aliases contains every word, given as
    substring_for gives it (the word or its stem): "postgres index" is spelt right for
    "PostgreSQL index types", "replicating" for "Replication", but "postgress" is not for
    "PostgreSQL"."""
    return any(all(part in name.lower() for part in substrings) for name in topic_names(topic))


def closest_topic(query, topics):
    """The topic with a name or alias closest to the query, if one is close enough."""
    by_name = {}
    for topic in topics:
        for name in topic_names(topic):
            by_name.setdefault(name.lower(), topic)
    close = difflib.get_close_matches(query.lower(), by_name, n=1, cutoff=SUGGESTION_CUTOFF)
    return by_name[close[0]] if close else None


def is_alias(field_name, word):
    """The comma-separated field holds word as one whole alias (any case)."""
    return reduce(
        or_,
        [
            Q(**{f"{field_name}__iexact": word}),
            Q(**{f"{field_name}__istartswith": f"{word},"}),
            Q(**{f"{field_name}__iendswith": f",{word}"}),
            Q(**{f"{field_name}__iendswith": f", {word}"}),
            Q(**{f"{field_name}__icontains": f",{word},"}),
            Q(**{f"{field_name}__icontains": f", {word},"}),
        ],
    )


def names_topic(query):
    """The topic is called query: by its name or by one of its aliases."""
    return Q(name__iexact=query) | reduce(or_, (is_alias(name, query) for name in ALIAS_FIELDS))


def substring_for(word):
    """What the substring backend looks for: the word's stem when the word starts with it,
    so that "indexes" finds "index" and "replicating" finds "replication"."""
    stem = STEMMER.stemWord(word)
    return stem if len(stem) >= MIN_STEM_LENGTH and word.startswith(stem) else word


def contains_backend(query, user):
    """Each word of the query, or its stem, appears in a row as a case-insensitive substring;
    rows are ranked by where and how often the words appear; three queries. LIKE wildcards
    are escaped by the ORM, so `%` and `_` match literally."""
    words = distinct_words(query)
    if not words:
        return [], [], []
    substrings = list(dict.fromkeys(map(substring_for, words)))
    topics = _scored(
        Topic.objects.visible_to(user),
        substrings,
        titles=("name", *ALIAS_FIELDS),
        texts=("summary",),
        exact=names_topic(" ".join(words)),
    ).order_by("-score", Lower("name"), "pk")
    topics = topics.values_list(*TopicResult._fields)[:MAX_RESULTS]
    links = _scored(
        Link.objects.visible_to(user), substrings, titles=("title",), texts=("description",)
    ).order_by("-score", Lower("title"), "pk")
    snippets = _scored(
        Snippet.objects.visible_to(user),
        substrings,
        titles=("title",),
        texts=("description", "code"),
    ).order_by("-score", Lower("title"), "pk")
    return (
        list(map(TopicResult._make, topics)),
        _listed(Link, links),
        _listed(Snippet, snippets),
    )


def _listed(model, queryset):
    own, of_topic = result_fields(model)
    rows = queryset.values_list(*own, *(f"topic__{name}" for name in of_topic))
    return as_results(model, rows[:MAX_RESULTS])


# Relevance on SQLite, per word: in a title (a topic's name or an alias) beats being used
# up to TEXT_CAP times in the text; being called what was asked for beats everything.
EXACT_WEIGHT = 1000
TITLE_WEIGHT = 10
TEXT_CAP = 5


def contains_any(field_names, word):
    return reduce(or_, (Q(**{f"{name}__icontains": word}) for name in field_names))


def _scored(queryset, words, titles, texts, exact=None):
    """Rows that contain every word in one of the fields, annotated with a score."""
    score = Value(0)
    for word in words:
        score += Case(When(contains_any(titles, word), then=TITLE_WEIGHT), default=0)
        for name in texts:
            score += Least(_occurrences(name, word), Value(TEXT_CAP))
    if exact is not None:
        score += Case(When(exact, then=EXACT_WEIGHT), default=0)
    matches = [contains_any((*titles, *texts), word) for word in words]
    return queryset.filter(reduce(and_, matches)).annotate(
        score=ExpressionWrapper(score, output_field=IntegerField())
    )


def _occurrences(field_name, word):
    """How many times word appears in the field, ignoring (ASCII) case."""
    lowered = Lower(field_name)
    removed = Length(lowered) - Length(Replace(lowered, Value(word), Value("")))
    return ExpressionWrapper(removed / len(word), output_field=IntegerField())


def postgresql_backend(query, user):
    """Ranked full-text search, best match first; three queries.

    websearch_to_tsquery reads any input without error ("quoted phrases", -not, or);
    input with no words in it matches nothing rather than everything.
    """
    return (
        _ranked_topics(query, user),
        _ranked(Link, query, user),
        _ranked(Snippet, query, user),
    )


# Links and snippets: the first MAX_RESULTS visible rows that match (in no order: ranking
# all of a common word's rows is what MAX_RESULTS prevents), ranked. Written out for the
# reason TOPICS_SQL is; the rows found are the rows listed, not looked up again by id.
RESULTS_SQL = """
SELECT {columns} FROM (
  SELECT {found}, result.id,
    ts_rank(result.search_vector, websearch_to_tsquery(%(config)s::regconfig, %(query)s)) AS rank
  FROM {table} result JOIN glossary_topic topic ON topic.id = result.topic_id
  WHERE {visible} result.search_vector @@ websearch_to_tsquery(%(config)s::regconfig, %(query)s)
  LIMIT %(limit)s
) found
ORDER BY rank DESC, LOWER(title), id
"""


def _ranked(model, query, user):
    own, of_topic = result_fields(model)
    quote = connection.ops.quote_name  # "group" is a keyword
    found = [f"result.{quote(name)}" for name in own]
    found += (f"topic.{quote(name)} AS topic_{name}" for name in of_topic)
    sql = RESULTS_SQL.format(
        columns=", ".join([*map(quote, own), *(f"topic_{name}" for name in of_topic)]),
        found=", ".join(found),
        table=model._meta.db_table,
        visible="" if user.is_staff else "result.is_published AND topic.is_published AND",
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {"config": SEARCH_CONFIG, "query": query, "limit": MAX_RESULTS})
        return as_results(model, cursor.fetchall())


# Topics: the full-text matches, plus topics whose name or an alias looks like the words,
# ranked by text rank, name similarity and being called the words. Written out rather than
# built with the ORM: built anew for every search, its arms and lookups cost more than
# running it. UPPER() so that the trigram indexes serve LIKE (trigrams ignore case).
# Each arm is a query of its own in a UNION: under one OR the planner scans every row.
TOPICS_SQL = """
SELECT {fields}
FROM glossary_topic
WHERE id IN (
  (SELECT id FROM glossary_topic
   WHERE {visible} search_vector @@ websearch_to_tsquery(%(config)s::regconfig, %(query)s)
   LIMIT %(limit)s){arms}
)
ORDER BY
  ts_rank(search_vector, websearch_to_tsquery(%(config)s::regconfig, %(query)s)){score} DESC,
  LOWER(name), id
LIMIT %(limit)s
"""
NAME_ARM = """
  UNION
  SELECT id FROM glossary_topic
  WHERE {visible} (UPPER(name) LIKE UPPER(%(like)s) OR UPPER(aliases) LIKE UPPER(%(like)s)
    OR UPPER(search_aliases) LIKE UPPER(%(like)s))"""
# Trigrams are made of letters and digits: without any, nothing is similar.
TRIGRAM_ARM = """
  UNION
  SELECT id FROM glossary_topic
  WHERE {visible} (UPPER(name) %% %(words)s OR UPPER(name) %%> %(words)s
    OR UPPER(aliases) %%> %(words)s OR UPPER(search_aliases) %%> %(words)s)"""
# How well the words match a part of a name or alias (empty aliases are NULL, which
# GREATEST skips, so pg_trgm is not called on them), plus how much of the name they are:
# "postgress" is in "PostgreSQL" as much as in "distributed PostgreSQL", but only one of
# them is all PostgreSQL. Far above any rank and similarity: a topic called what was asked
# for (its name, or an item of an alias list, as is_alias reads it) is first.
NAME_SCORE = """
  + GREATEST(word_similarity(%(words)s, name),
      word_similarity(%(words)s, NULLIF(aliases, '')),
      word_similarity(%(words)s, NULLIF(search_aliases, '')))
  + similarity(name, %(words)s)
  + CASE WHEN UPPER(name) = UPPER(%(phrase)s)
      OR UPPER(%(phrase)s) = ANY(regexp_split_to_array(UPPER(aliases), ', ?'))
      OR UPPER(%(phrase)s) = ANY(regexp_split_to_array(UPPER(search_aliases), ', ?'))
    THEN 100.0 ELSE 0.0 END"""


def _ranked_topics(query, user):
    """Topics matching the words, plus topics whose name or an alias looks like the words:
    trigram similarity ("postgress", "mongo db") or a plain substring ("gres", "🐘").
    A topic called what was asked for comes first. One query (TOPICS_SQL)."""
    words = " ".join(query_words(query))
    visible = "" if user.is_staff else "is_published AND"
    arms = ""
    if words:
        arms = NAME_ARM
        if any(char.isalnum() for char in words):
            arms += TRIGRAM_ARM
    sql = TOPICS_SQL.format(
        fields=", ".join(TopicResult._fields),
        score=NAME_SCORE if words else "",
        arms=arms.format(visible=visible),
        visible=visible,
    )
    params = {
        "config": SEARCH_CONFIG,
        "query": query,
        "limit": MAX_RESULTS,
        "words": words,
        "like": f"%{connection.ops.prep_for_like_query(words)}%",
        "phrase": " ".join(distinct_words(query)),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(map(TopicResult._make, cursor.fetchall()))
