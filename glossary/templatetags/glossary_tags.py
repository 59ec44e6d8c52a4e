import html
import re

from django import template
from django.conf import settings
from django.utils.html import escape, format_html, strip_tags
from django.utils.safestring import mark_safe

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


@register.filter
def excerpt(text, query):
    """About EXCERPT_LENGTH characters of text, centred on the first match of query."""
    text = str(text)
    if len(text) <= EXCERPT_LENGTH:
        return text
    found = text.lower().find(query.lower()) if query else -1
    start = max(0, found - EXCERPT_LENGTH // 3) if found > 0 else 0
    end = start + EXCERPT_LENGTH
    return f"{'…' if start else ''}{text[start:end].strip()}{'…' if end < len(text) else ''}"


@register.filter
def highlight(text, query):
    """Escape text, then wrap case-insensitive matches of query in <mark>.

    Each piece is escaped before it is joined, so neither text nor query can inject markup.
    """
    text = str(text)
    if not query:
        return escape(text)
    pieces = []
    last = 0
    for match in re.finditer(re.escape(query), text, flags=re.IGNORECASE):
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
