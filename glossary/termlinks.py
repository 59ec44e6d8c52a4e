"""Term links: a text that mentions another topic by name or alias links to it.

Links are added when a page is rendered, never stored with the text: they depend on
other topics (a new, renamed or unpublished topic changes links in texts that were not
edited), so the stored HTML stays what its author wrote. Every topic's names are stored
with the content revision, so they are current after any save, bulk update or fixture
load that bumps the revision, and a page reads them with the revision, for free.

The same matching fills the Mention table behind each topic's "Mentioned in" list.
"""

import re
from dataclasses import dataclass
from html import escape
from html.parser import HTMLParser

from django.db import transaction
from django.urls import reverse
from django.utils.safestring import mark_safe

# Text inside these is never linked: code, existing links and headings.
SKIPPED_TAGS = {"a", "code", "pre", "h1", "h2", "h3", "h4", "h5", "h6"}
# A hyphen counts as part of a word, so "B-tree" never links a topic called "Tree".
WORD = r"[\w-]"
MENTION_KEY = ("target", "topic", "snippet", "link")


def topic_terms():
    """Every topic's [pk, slug, name, aliases, is_published], the rows of a TermIndex
    (one query)."""
    from .models import Topic

    fields = ("pk", "slug", "name", "aliases", "is_published")
    return [list(row) for row in Topic.objects.order_by("pk").values_list(*fields)]


def split_terms(text):
    """Comma-separated names, stripped, without empty ones."""
    return [term.strip() for term in text.split(",") if term.strip()]


@dataclass(frozen=True)
class Target:
    pk: int
    slug: str
    is_published: bool


class TermIndex:
    """Every topic's name and aliases, matched case-insensitively on word boundaries
    (except names in capitals, which match only in capitals).

    Drafts are in the index so that a draft's name is matched like any other (and so
    never lends its words to a shorter published name), but they are never linked.
    """

    def __init__(self, topics):
        self.targets = {}  # casefolded term -> (Target, the exact spelling it needs or None)
        for pk, slug, name, aliases, is_published in topics:
            for term in [name, *split_terms(aliases)]:
                # A name wins over another topic's alias of the same spelling.
                if term.casefold() not in self.targets or term == name:
                    # Capitals (ACID, WITH, CHECK) are acronyms and keywords: they match only
                    # in capitals, so "with" and "check" in a sentence stay plain words.
                    exact = term if term.isupper() else None
                    self.targets[term.casefold()] = (Target(pk, slug, is_published), exact)
        # Longest first: at any position the longest name wins ("connection pool", not "pool").
        terms = sorted(self.targets, key=len, reverse=True)
        alternatives = "|".join(re.escape(term) for term in terms)
        self.pattern = re.compile(rf"(?<!{WORD})(?:{alternatives})(?!{WORD})", re.IGNORECASE)
        self.empty = not terms

    @classmethod
    def from_database(cls):
        """An index of every topic (one query)."""
        return cls(topic_terms())

    _built = (None, None)  # the terms of the last index current() built, and that index

    @classmethod
    def current(cls):
        """The index of the names stored with the current content revision (no query but
        the revision's own; built again in each process only when the names change)."""
        from .models import ContentRevision

        terms = ContentRevision.current_terms()
        built_from, index = cls._built
        if terms != built_from:
            index = cls(terms)
            cls._built = (terms, index)
        return index

    def matches(self, text):
        """(start, end, target) for each name in text, left to right."""
        if self.empty:
            return
        for found in self.pattern.finditer(text):
            target, exact = self.targets.get(found.group().casefold(), (None, None))
            if target is not None and exact in (None, found.group()):
                yield found.start(), found.end(), target


class _Linker(HTMLParser):
    """Re-emits sanitised HTML, linking the first mention of each other topic."""

    def __init__(self, index, owner_pk, suppressed):
        super().__init__(convert_charrefs=True)
        self.index = index
        self.owner_pk = owner_pk
        self.suppressed = suppressed
        self.seen = set()
        self.mentioned = []  # published and drafts alike, in order of first mention
        self.out = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        self.out.append(self.get_starttag_text())
        if tag in SKIPPED_TAGS:
            self.skipping += 1

    def handle_startendtag(self, tag, attrs):
        self.out.append(self.get_starttag_text())

    def handle_endtag(self, tag):
        self.out.append(f"</{tag}>")
        if tag in SKIPPED_TAGS and self.skipping:
            self.skipping -= 1

    def handle_data(self, data):
        if self.skipping:
            self.out.append(escape(data, quote=False))
            return
        position = 0
        for start, end, target in self.index.matches(data):
            term = data[start:end]
            if (
                target.pk == self.owner_pk
                or target.pk in self.seen
                or term.casefold() in self.suppressed
            ):
                continue
            self.seen.add(target.pk)
            self.mentioned.append(target)
            if not target.is_published:
                continue
            href = reverse("glossary:topic-detail", args=[target.slug])
            self.out.append(escape(data[position:start], quote=False))
            self.out.append(f'<a class="term-link" href="{href}">{escape(term, quote=False)}</a>')
            position = end
        self.out.append(escape(data[position:], quote=False))


def link_terms(html, owner, index):
    """Sanitised HTML with mentions of other published topics linked, and every topic
    it mentions (drafts too). owner is the topic the text belongs to: it is never
    linked to itself, and its unlinked_terms stay plain text."""
    suppressed = {term.casefold() for term in split_terms(owner.unlinked_terms)}
    linker = _Linker(index, owner.pk, suppressed)
    linker.feed(html)
    linker.close()
    return "".join(linker.out), linker.mentioned


def link_topic_page(topic, index):
    """Link the texts a topic page shows: its summary, its snippets' and links'
    descriptions (prefetched). Changes the objects in memory only."""
    topic.summary_html = mark_safe(link_terms(topic.summary_html, topic, index)[0])
    for snippet in topic.snippets.all():
        link_snippet(snippet, topic, index)
    for link in topic.links.all():
        # Link descriptions are plain text: escaped here, then shown as they are.
        html, _ = link_terms(escape(link.description, quote=False), topic, index)
        link.description = mark_safe(html)


def link_snippet(snippet, topic, index):
    snippet.description_html = mark_safe(link_terms(snippet.description_html, topic, index)[0])


def mentions_in(source, index):
    """The Mention rows (unsaved) for one topic, snippet or link."""
    from .models import Link, Mention, Snippet, Topic

    if isinstance(source, Topic):
        owner, html, fields = source, source.summary_html, {}
    elif isinstance(source, Snippet):
        owner, html, fields = source.topic, source.description_html, {"snippet": source}
    elif isinstance(source, Link):
        owner, html = source.topic, escape(source.description, quote=False)
        fields = {"link": source}
    else:
        raise TypeError(f"Only topics, snippets and links mention topics, not {source!r}.")
    _, targets = link_terms(html, owner, index)
    return [Mention(target_id=target.pk, topic=owner, **fields) for target in targets]


def refresh_mentions(source):
    """Bring one topic's summary, snippet's or link's Mention rows up to date."""
    from .models import Link, Mention, Snippet

    if isinstance(source, Snippet):
        existing = Mention.objects.filter(snippet=source)
    elif isinstance(source, Link):
        existing = Mention.objects.filter(link=source)
    else:
        existing = Mention.objects.filter(topic=source, snippet=None, link=None)
    _sync(existing, mentions_in(source, TermIndex.from_database()))


def rebuild_mentions():
    """Bring every Mention row up to date with every text; the number of rows."""
    from .models import Link, Mention, Snippet, Topic

    index = TermIndex.from_database()
    topics = list(Topic.objects.only("summary_html", "unlinked_terms"))
    by_pk = {topic.pk: topic for topic in topics}
    snippets = Snippet.objects.exclude(description="").only("topic", "description_html")
    links = Link.objects.exclude(description="").only("topic", "description")
    rows = []
    for source in [*topics, *snippets, *links]:
        if not isinstance(source, Topic):
            source.topic = by_pk[source.topic_id]
        rows.extend(mentions_in(source, index))
    _sync(Mention.objects.all(), rows)
    return len(rows)


def _sync(existing, rows):
    """Make the existing QuerySet hold just these rows, writing only the differences (a
    save usually changes nothing here, and the ORM examples show every query)."""
    from .models import Mention

    wanted = {(row.target_id, row.topic_id, row.snippet_id, row.link_id): row for row in rows}
    have = {tuple(key): pk for pk, *key in existing.values_list("pk", *MENTION_KEY)}
    with transaction.atomic():
        if stale := [pk for key, pk in have.items() if key not in wanted]:
            Mention.objects.filter(pk__in=stale).delete()
        if new := [row for key, row in wanted.items() if key not in have]:
            Mention.objects.bulk_create(new)


def first_sentences(html, count=2, limit=280):
    """The first count sentences of sanitised HTML's first paragraph, as plain text."""
    from .templatetags.glossary_tags import lead

    text = " ".join(lead(html).split())
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9“\"(])", text)
    text = " ".join(sentences[:count])
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
