import html
import re

from django import template
from django.conf import settings
from django.utils.html import escape, format_html, strip_tags
from django.utils.safestring import mark_safe

from glossary import playground, runner
from glossary.rendering import highlight_code
from glossary.search import STEMMER, query_words

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


def marked_words(text, query):
    """The matches of whole words in text to mark for a query: words that contain a query
    word ("postgres" marks all of "PostgreSQL") or share its stem (full-text search finds
    "replication" for "replicating")."""
    terms = query_terms(query) if query else []
    if not terms:
        return
    stems = set(STEMMER.stemWords(term.lower() for term in terms))
    alternatives = "|".join(re.escape(term) for term in terms)
    words = re.compile(rf"(?P<term>\w*(?:{alternatives})\w*)|\w+", flags=re.IGNORECASE)
    for match in words.finditer(text):
        if match["term"] is not None or STEMMER.stemWord(match.group().lower()) in stems:
            yield match


@register.filter
def excerpt(text, query):
    """About EXCERPT_LENGTH characters of text around the first word to mark, starting and
    ending at word boundaries."""
    text = str(text)
    if len(text) <= EXCERPT_LENGTH:
        return text
    found = next(marked_words(text, query), None)
    start = max(0, found.start() - EXCERPT_LENGTH // 3) if found else 0
    end = max(start + EXCERPT_LENGTH, found.end() if found else 0)
    # Cut at a line break if there is one (code reads best in whole lines), else at a space.
    first, last = (found.start(), found.end()) if found else (start, start)
    if start and text[start - 1] != "\n":
        breaks = [text.find(char, start, first) for char in ("\n", " ")]
        start = next((cut + 1 for cut in breaks if cut != -1), start)
    if end < len(text) and not text[end].isspace():
        breaks = [text.rfind(char, last, end) for char in ("\n", " ")]
        end = next((cut for cut in breaks if cut != -1), end)
    return f"{'…' if start else ''}{text[start:end].strip()}{'…' if end < len(text) else ''}"


@register.filter
def highlight(text, query):
    """Escape text, then wrap each of its marked_words() in <mark>.

    Each piece is escaped before it is joined, so neither text nor query can inject markup.
    """
    text = str(text)
    pieces = []
    last = 0
    for match in marked_words(text, query):
        pieces.append(escape(text[last : match.start()]))
        pieces.append(format_html("<mark>{}</mark>", match.group()))
        last = match.end()
    pieces.append(escape(text[last:]))
    return mark_safe("".join(pieces))


def describe_limits(limits):
    return (
        f"{limits.wall_seconds} s wall time, {limits.cpu_seconds} s CPU, "
        f"{limits.memory_mb} MB memory, {limits.processes} processes, "
        f"{limits.output_kb} KiB of output, no network"
    )


@register.simple_tag
def run_limits(runtime=None):
    """The sandbox limits of runtime's runs, in words, for the text next to the Run button."""
    return describe_limits(runner.Limits.from_settings(runtime))


@register.simple_tag
def reader_limits(runtime=None):
    """The limits of readers' own code in runtime, in words, next to the Run button."""
    limits = playground.reader_limits(runtime)
    if limits == runner.Limits.from_settings(runtime):
        return "it runs under the same limits."
    return f"it runs under these limits: {describe_limits(limits)}."


@register.simple_tag
def reader_code_on():
    return settings.SNIPPET_READER_CODE


@register.simple_tag
def reader_run_limits(runtime=None):
    """The limits of readers' own code, in words, in the playground."""
    return describe_limits(playground.reader_limits(runtime))


@register.simple_tag
def runtime_unavailable(runtime):
    """Why runtime's snippets cannot run on this server (its software is missing), or ""."""
    return runner.unavailable(runtime) or ""


@register.simple_tag
def highlighted(code, language, label):
    """Code laid out like a snippet's listing, for text that keeps no highlighted copy."""
    return mark_safe(highlight_code(code, language, label))
