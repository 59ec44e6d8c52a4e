"""Markdown and code rendering. Everything stored as HTML goes through here."""

import markdown
import nh3
from django.utils.html import format_html
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

ALLOWED_TAGS = {
    "a",
    "abbr",
    "blockquote",
    "br",
    "code",
    "dd",
    "del",
    "dl",
    "dt",
    "em",
    "h2",
    "h3",
    "h4",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "strong",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}}


class CodeFormatter(HtmlFormatter):
    """Pygments' HTML with each line in a <span class="line">, numbered by CSS: "line 30"
    in a traceback points at something, and copying the code copies no numbers."""

    def wrap(self, source):
        return super().wrap(self._wrap_lines(source))

    @staticmethod
    def _wrap_lines(source):
        for is_line, html in source:
            if is_line:
                # The newline stays outside the span: the code's text is unchanged.
                yield 1, f'<span class="line">{html.removesuffix(chr(10))}</span>\n'
            else:
                yield 0, html


FORMATTER = CodeFormatter(cssclass="highlight", wrapcode=True)


def render_markdown(text):
    """Markdown to HTML that is safe to show: no raw HTML, scripts or odd URL schemes."""
    html = markdown.markdown(text, extensions=["tables", "fenced_code", "sane_lists"])
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


def highlight_code(code, language, label="Code"):
    """The code as highlighted HTML in a <pre> that keyboard users can focus and scroll;
    label names it for screen readers (unique on a page, like a snippet's title)."""
    try:
        lexer = get_lexer_by_name(language, stripnl=False)
    except ClassNotFound:
        lexer = get_lexer_by_name("text")
    html = highlight(code, lexer, FORMATTER)
    attributes = format_html(' tabindex="0" role="region" aria-label="{}"', label)
    return html.replace("<pre>", f"<pre{attributes}>", 1)


def highlight_css():
    return FORMATTER.get_style_defs(".highlight")
