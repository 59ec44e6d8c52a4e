import html
import re

from django import template
from django.conf import settings
from django.utils.html import escape, format_html, strip_tags
from django.utils.safestring import mark_safe

from glossary.search import query_words

register = template.Library()

EXCERPT_LENGTH = 200


@register.filter
def plain_text(value):
    """Stored, sanitised HTML as plain text (escaped again on output)."""
    return html.unescape(strip_tags(str(value)))


@register.filter
def lead(value):
    """The first paragraph of stored, sanitised HTML as plain text."""
    first = re.search(r"<p>(.*?)</p>", str(value), flags=re.DOTALL)
    return plain_text(first.group(1) if first else value)


SENTENCE_END = re.compile(r"[.!?](?=\s)")


@register.filter
def shorten(text, limit=180):
    """Text cut to at most about limit characters: after the last whole sentence that fits,
    or, when the first sentence alone is too long, after a whole word, with an ellipsis."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    ends = [match.end() for match in SENTENCE_END.finditer(text, 0, limit)]
    if ends and ends[-1] >= limit // 2:
        return text[: ends[-1]]
    cut = text.rfind(" ", 0, limit + 1)
    return text[: cut if cut > 0 else limit].rstrip(",;:–—- ") + "…"


def query_terms(query):
    """The words of a search query to mark, longest first: full-text search matches words
    wherever they are, so each is marked on its own."""
    return sorted(set(query_words(str(query))), key=lambda term: (-len(term), term))


def terms_pattern(query):
    terms = query_terms(query) if query else []
    if not terms:
        return None
    return re.compile("|".join(re.escape(term) for term in terms), flags=re.IGNORECASE)


@register.filter
def excerpt(text, query):
    """About EXCERPT_LENGTH characters of text, centred on the first match of a query word."""
    text = str(text)
    if len(text) <= EXCERPT_LENGTH:
        return text
    pattern = terms_pattern(query)
    found = pattern.search(text) if pattern else None
    start = max(0, found.start() - EXCERPT_LENGTH // 3) if found else 0
    end = start + EXCERPT_LENGTH
    return f"{'…' if start else ''}{text[start:end].strip()}{'…' if end < len(text) else ''}"


@register.filter
def highlight(text, query):
    """Escape text, then wrap case-insensitive matches of the query's words in <mark>.

    Each piece is escaped before it is joined, so neither text nor query can inject markup.
    """
    text = str(text)
    pattern = terms_pattern(query)
    if pattern is None:
        return escape(text)
    pieces = []
    last = 0
    for match in pattern.finditer(text):
        pieces.append(escape(text[last : match.start()]))
        pieces.append(format_html("<mark>{}</mark>", match.group()))
        last = match.end()
    pieces.append(escape(text[last:]))
    return mark_safe("".join(pieces))


@register.simple_tag
def run_limits():
    """The sandbox limits in force, in words, for the text next to the Run button."""
    limits = settings.SNIPPET_LIMITS
    return (
        f"{limits['wall_seconds']} s wall time, {limits['cpu_seconds']} s CPU, "
        f"{limits['memory_mb']} MB memory, {limits['processes']} processes, "
        f"{limits['output_kb']} KiB of output, no network"
    )
