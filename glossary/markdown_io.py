"""The link directory as an awesome-list style Markdown file, in and out.

    # DB Glossary                                  the title (ignored on import)
    ## PostgreSQL                                  a topic
    > An open-source relational database.         its summary (Markdown, quoted)
    **Sync drivers**                               a link group (a LinkGroup label or value)
    - [psycopg](https://www.psycopg.org/) - The PostgreSQL adapter.
    ### JSONB                                      a heading one level down: a child topic

A sub-heading named like a group ("### Async") is a group too, as awesome lists have them.
Importing adds and updates, never deletes; new topics and links arrive as drafts.
Importing what `export()` wrote changes nothing. Markdown has six heading levels, so a
topic nested deeper than five is exported as a top-level heading, which keeps its parent.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from .models import Link, LinkGroup, Topic, http_url_validator, normalize_url

HEADING = re.compile(r"^(#{1,6})(?:\s+(.*?))?(?:\s+#+)?\s*$")
ITEM = re.compile(r"^\s*[-*+]\s+")
# - [title](url) - description; the URL may hold balanced parentheses (Wikipedia's do).
LINK_ITEM = re.compile(
    r"^\s*[-*+]\s+\[(?P<title>(?:\\.|[^\]\\])+)\]"
    r"\((?P<url>[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)\)"
    r"(?:\s+[-–—:]\s+(?P<description>.*?))?\s*$"
)
LABEL = re.compile(r"^\s*(?:\*\*(?P<bold>[^*]+)\*\*|(?P<colon>[^:*#>\[\]]+):)\s*$")
GROUP_NAMES = {
    **{group.value: group for group in LinkGroup},
    **{group.label.lower(): group for group in LinkGroup},
    **{f"{group.value} drivers": group for group in (LinkGroup.SYNC, LinkGroup.ASYNC)},
}


def group_named(text):
    return GROUP_NAMES.get(text.strip().lower())


def one_line(text):
    return " ".join(text.split())


def escape_title(title):
    return re.sub(r"([\[\]\\])", r"\\\1", one_line(title))


def unescape_title(title):
    return re.sub(r"\\(.)", r"\1", title)


@dataclass
class ParsedLink:
    line: int
    title: str
    url: str
    description: str
    group: str


@dataclass
class ParsedTopic:
    line: int
    name: str
    level: int
    parent: "ParsedTopic | None"
    summary_lines: list = field(default_factory=list)
    links: list = field(default_factory=list)

    @property
    def summary(self):
        return "\n".join(self.summary_lines).strip()


class MarkdownError(Exception):
    """Everything wrong with a file, one "line N: …" message per problem."""

    def __init__(self, problems):
        self.problems = problems
        super().__init__("\n".join(problems))


def parse(text):
    """The topics of a Markdown file, in order; raises MarkdownError listing every problem."""
    topics, problems = [], []
    stack = []  # open topics, outermost first
    group = None
    seen_topics, seen_urls = {}, {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        current = stack[-1] if stack else None
        if match := HEADING.match(line):
            level, name = len(match[1]), (match[2] or "").strip()
            if level == 1:
                continue  # the document's title
            if not name:
                problems.append(f"line {number}: a heading without text")
                continue
            while stack and stack[-1].level >= level:
                stack.pop()
            if (as_group := group_named(name)) and stack:
                group = as_group
                continue
            if not (key := slugify(name)):
                problems.append(f"line {number}: {name!r} has no letters or digits for a slug")
                continue
            if key in seen_topics:
                first = seen_topics[key]
                problems.append(f"line {number}: the topic {name!r} appears twice (line {first})")
                continue
            seen_topics[key] = number
            topic = ParsedTopic(number, name, level, stack[-1] if stack else None)
            topics.append(topic)
            stack.append(topic)
            group = None
        elif ITEM.match(line):
            if current is None:
                problems.append(f"line {number}: a list item outside any topic")
            elif not (match := LINK_ITEM.match(line)):
                problems.append(f"line {number}: expected '- [title](https://…) - description'")
            else:
                url = match["url"]
                try:
                    http_url_validator(url)
                except ValidationError:
                    problems.append(f"line {number}: {url!r} is not an http(s) URL")
                    continue
                key = (current.name.lower(), normalize_url(url))
                if key in seen_urls:
                    problems.append(
                        f"line {number}: {url} is already under {current.name} "
                        f"(line {seen_urls[key]})"
                    )
                    continue
                seen_urls[key] = number
                current.links.append(
                    ParsedLink(
                        number,
                        unescape_title(match["title"]).strip(),
                        url,
                        (match["description"] or "").strip(),
                        group or LinkGroup.DOCS,
                    )
                )
        elif (match := LABEL.match(line)) and group_named(match["bold"] or match["colon"]):
            group = group_named(match["bold"] or match["colon"])
        elif line.startswith(">") and current is not None:
            current.summary_lines.append(line[2:] if line.startswith("> ") else line[1:])
        elif line.strip() and current is not None and not current.links:
            current.summary_lines.append(line)
    if problems:
        raise MarkdownError(problems)
    return topics


@dataclass
class Change:
    text: str  # "" for a topic that stays as it is (its links may still change)
    apply: Callable[[dict], None]  # given the topics by lower-case name, made so far


def plan(parsed_topics):
    """What importing would change, in order: topics first, then their links."""
    topics = list(Topic.objects.select_related("parent").prefetch_related("links"))
    by_name = {topic.name.lower(): topic for topic in topics}
    by_slug = {topic.slug: topic for topic in topics}
    matches = {
        parsed.name: by_name.get(parsed.name.lower()) or by_slug.get(slugify(parsed.name))
        for parsed in parsed_topics
    }
    changes = []
    for parsed in parsed_topics:
        changes += plan_topic(parsed, matches[parsed.name])
    for parsed in parsed_topics:
        topic = matches[parsed.name]
        links = {link.normalized_url: link for link in topic.links.all()} if topic else {}
        for position, parsed_link in enumerate(parsed.links, start=1):
            link = links.get(normalize_url(parsed_link.url))
            changes += plan_link(parsed, parsed_link, link, position)
    return changes


def plan_topic(parsed, topic):
    parent_name = parsed.parent.name if parsed.parent else None
    if topic is None:

        def create(topics, parsed=parsed):
            topics[parsed.name.lower()] = Topic.objects.create(
                name=parsed.name,
                slug=slugify(parsed.name),
                summary=parsed.summary,
                parent=topics.get(parent_name.lower()) if parent_name else None,
                is_published=False,
            )

        where = f" under {parent_name}" if parent_name else ""
        return [Change(f"+ topic {parsed.name}{where} (new, a draft)", create)]
    updates = {}
    if parsed.summary and parsed.summary != topic.summary.strip():
        updates["summary"] = parsed.summary
    # A top-level heading leaves an existing parent alone: import adds, never removes.
    if parent_name and (topic.parent is None or topic.parent.name.lower() != parent_name.lower()):
        updates["parent"] = parent_name

    def update(topics, topic=topic, updates=updates):
        topics[parsed.name.lower()] = topic
        for name, value in updates.items():
            setattr(topic, name, topics[value.lower()] if name == "parent" else value)
        if updates:
            topic.save()

    text = f"~ topic {topic.name}: {', '.join(updates)}" if updates else ""
    return [Change(text, update)]


def plan_link(parsed_topic, parsed, link, position):
    if link is None:

        def create(topics, parsed=parsed, position=position):
            Link.objects.create(
                topic=topics[parsed_topic.name.lower()],
                url=parsed.url,
                title=parsed.title,
                description=parsed.description,
                group=parsed.group,
                position=position,
                is_published=False,
            )

        label = LinkGroup(parsed.group).label
        return [Change(f"+ link {parsed.url} under {parsed_topic.name} ({label}), a draft", create)]
    updates = {}
    if parsed.title != one_line(link.title):
        updates["title"] = parsed.title
    if parsed.description and parsed.description != one_line(link.description):
        updates["description"] = parsed.description
    if parsed.group != link.group:
        updates["group"] = parsed.group
    if not updates:
        return []

    def update(topics, link=link, updates=updates):
        for name, value in updates.items():
            setattr(link, name, value)
        link.save()

    return [Change(f"~ link {link.url}: {', '.join(updates)}", update)]


@transaction.atomic
def apply(changes):
    topics = {}
    for change in changes:
        change.apply(topics)


def export():
    """The published directory as Markdown that `parse()` reads back unchanged."""
    topics = list(Topic.objects.for_export())
    children = {}
    for topic in topics:
        children.setdefault(topic.parent_id, []).append(topic)
    published = {topic.pk for topic in topics}
    roots = [topic for topic in topics if topic.parent_id not in published]
    lines = ["# DB Glossary", ""]
    # Topics nested deeper than the headings go (the seventh level on) start a tree of
    # their own at the top: a top-level heading leaves an existing parent alone on import.
    too_deep = []

    def write(topic, level):
        if level > 6:
            too_deep.append(topic)
            return
        lines.extend([f"{'#' * level} {topic.name}", ""])
        if summary := topic.summary.strip():
            lines.extend(f"> {line}".rstrip() for line in summary.splitlines())
            lines.append("")
        by_group = {}
        for link in sorted(topic.links.all(), key=lambda link: (link.position, link.title)):
            by_group.setdefault(link.group, []).append(link)
        for group in LinkGroup:
            if group.value in by_group:
                # A label, not a heading: headings are kept for five levels of topics.
                lines.extend([f"**{group.label}**", ""])
                for link in by_group[group.value]:
                    description = one_line(link.description)
                    suffix = f" - {description}" if description else ""
                    lines.append(f"- [{escape_title(link.title)}]({link.url}){suffix}")
                lines.append("")
        for child in children.get(topic.pk, []):
            write(child, level + 1)

    for root in roots:
        write(root, 2)
    while too_deep:
        write(too_deep.pop(0), 2)
    return "\n".join(lines).rstrip() + "\n"
