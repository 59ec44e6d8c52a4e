"""Subqueries and window functions

- `Subquery(...)` with `OuterRef("pk")` puts a correlated subquery in the `SELECT` list:
  here each topic's most recently added link, fetched with the topics in one query.
- `Exists(...)` is the cheap yes/no version, for filtering or annotating.
- `Window(...)` computes over a partition of rows without collapsing them like `GROUP BY`
  does: a rank within each letter, a row number and a count within each group. Since
  Django 4.2 you can `filter()` on a window function; Django wraps the query in a
  subquery to do it.
"""

from django.db.models import Count, Exists, F, OuterRef, Subquery, Window
from django.db.models.functions import Rank, RowNumber

from glossary.models import Link, Snippet, Topic


def main():
    print("== Subquery + OuterRef: each topic's newest link ==")
    newest = Link.objects.filter(topic=OuterRef("pk")).order_by("-created", "-pk")
    topics = Topic.objects.filter(letter="R").annotate(
        newest_link=Subquery(newest.values("title")[:1])
    )
    for topic in topics:
        print(f"{topic.name}: {topic.newest_link or '(no links)'}")

    print("\n== Exists: topics with a runnable snippet ==")
    runnable = Snippet.objects.filter(topic=OuterRef("pk")).exclude(runtime="")
    with_runnable = Topic.objects.filter(Exists(runnable), letter__in=["S", "T"])
    print(", ".join(topic.name for topic in with_runnable))

    print("\n== Window: rank topics by link count within their letter ==")
    ranked = (
        Topic.objects.annotate(links_count=Count("links"))
        .annotate(rank=Window(Rank(), partition_by=F("letter"), order_by=F("links_count").desc()))
        .filter(rank=1, letter__in=["A", "D", "P", "S"])
        .order_by("letter", "name")
    )
    for topic in ranked:
        print(f"{topic.letter}: {topic.name} ({topic.links_count} links) is ranked first")

    print("\n== Window: number PostgreSQL's links within each group ==")
    links = (
        Link.objects.filter(topic__slug="postgresql")
        .annotate(
            number=Window(RowNumber(), partition_by=F("group"), order_by=F("title").asc()),
            of=Window(Count("pk"), partition_by=F("group")),
        )
        .order_by("group", "number")
    )
    for link in links:
        print(f"{link.group:<8} {link.number} of {link.of}  {link.title}")


if __name__ == "__main__":
    main()
