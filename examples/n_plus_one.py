"""Relations and the N+1 query problem

Following a relation in a loop runs one query for the list and one more per row: N+1
queries. Django's `CaptureQueriesContext` counts them (it is what `assertNumQueries` uses).

- A **reverse foreign key** (a topic's links) or a **many-to-many** (a topic's "see also")
  is fixed with `prefetch_related()`: one extra query for all rows, joined in Python.
- A **forward foreign key** (a link's topic) is fixed with `select_related()`: a SQL `JOIN`,
  so the list comes back in a single query.
- `Prefetch()` narrows or orders what is prefetched.
"""

from django.db import connection
from django.db.models import Prefetch
from django.test.utils import CaptureQueriesContext

from glossary.models import Link, Topic

TOPICS = 10


def main():
    print(f"== {TOPICS} topics and their links, the naive way ==")
    with CaptureQueriesContext(connection) as naive:
        for topic in Topic.objects.order_by("name")[:TOPICS]:
            titles = [link.title for link in topic.links.all()]  # one query per topic
            print(f"{topic.name}: {len(titles)} link(s)")
    print(f"-> {len(naive)} queries for {TOPICS} topics (N+1)")

    print("\n== The same with prefetch_related('links') ==")
    with CaptureQueriesContext(connection) as prefetched:
        for topic in Topic.objects.order_by("name").prefetch_related("links")[:TOPICS]:
            titles = [link.title for link in topic.links.all()]  # already loaded
            print(f"{topic.name}: {len(titles)} link(s)")
    print(f"-> {len(prefetched)} queries for {TOPICS} topics (prefetch_related)")

    print(f"\n== {TOPICS} links and their topic: forward foreign key ==")
    with CaptureQueriesContext(connection) as lazy:
        pairs = [(link.title, link.topic.name) for link in Link.objects.order_by("pk")[:TOPICS]]
    with CaptureQueriesContext(connection) as joined:
        links = Link.objects.select_related("topic").order_by("pk")[:TOPICS]
        assert [(link.title, link.topic.name) for link in links] == pairs
    print(f"-> {len(lazy)} queries without select_related")
    print(f"-> {len(joined)} query with select_related('topic') (a JOIN)")

    print("\n== Prefetch(): only the documentation links, and the see-also topics ==")
    with CaptureQueriesContext(connection) as custom:
        topics = Topic.objects.filter(slug__in=["postgresql", "sqlite"]).prefetch_related(
            Prefetch("links", queryset=Link.objects.filter(group="docs"), to_attr="docs"),
            "see_also",
        )
        for topic in topics:
            see_also = ", ".join(other.name for other in topic.see_also.all())
            print(f"{topic.name}: {len(topic.docs)} documentation links; see also {see_also}")
    print(f"-> {len(custom)} queries: topics, their docs links, their see-also topics")


if __name__ == "__main__":
    main()
