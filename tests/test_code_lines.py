"""Runnable code is shown with numbered lines, and copies as it was written."""

import html
import re

import pytest

from glossary.models import Snippet


@pytest.mark.django_db
def test_each_line_of_code_is_numbered_and_the_text_is_unchanged(client, topic):
    code = 'import json\n\n"""A docstring\nover two lines"""\nprint(json.dumps([1]))\n'
    Snippet.objects.create(topic=topic, title="Lines", slug="lines", code=code, runtime="python")

    page = client.get("/snippets/lines/").content.decode()

    block = re.search(r"<pre[^>]*><span></span><code>(.*?)</code></pre>", page, re.DOTALL)
    lines = re.findall(r'<span class="line">', block[1])
    assert len(lines) == code.count("\n")
    # What Copy takes (the pre's text) is the code itself: numbers come from CSS.
    assert html.unescape(re.sub(r"<[^>]+>", "", block[1])) == code


@pytest.mark.django_db
def test_the_code_box_is_reachable_by_keyboard_and_named(client, topic):
    Snippet.objects.create(topic=topic, title="Wide", slug="wide", code="x = 1\n", runtime="python")

    page = client.get("/snippets/wide/").content.decode()

    assert '<pre tabindex="0" role="region" aria-label="Code: Wide">' in page
