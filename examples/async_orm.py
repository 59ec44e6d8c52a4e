"""The async ORM: aget(), acount(), async for and friends

In `async def` code (an ASGI view, a Channels consumer) the blocking ORM methods raise
`SynchronousOnlyOperation`. Every QuerySet method that runs a query has an `a`-prefixed
twin to `await` instead: `aget()`, `acount()`, `aexists()`, `acreate()`, `adelete()`,
`aupdate()`, and `async for` over a QuerySet (`aiterator()` for big ones).

Under the hood Django still uses its synchronous database drivers: each call runs in a
worker thread through `sync_to_async`. That keeps the event loop free while the database
works, but it does not make a single query faster. For your own blocking code, wrap it in
`sync_to_async` yourself.
"""

import asyncio

from asgiref.sync import sync_to_async
from django.core.exceptions import SynchronousOnlyOperation

from examples.models import Tag
from glossary.models import Link, Topic


def busiest_topic_names():
    """Ordinary blocking ORM code."""
    return [topic.name for topic in Topic.objects.for_index().order_by("-link_count")[:3]]


async def main():
    print("== Awaiting queries ==")
    topic = await Topic.objects.aget(slug="async-database-access")
    print(f"aget(): {topic.name}")
    print(f"acount(): {await Link.objects.filter(group='async').acount()} async drivers")
    print(f"aexists(): {await Topic.objects.filter(letter='Z').aexists()} for topics under Z")

    print("\n== async for over a QuerySet ==")
    async for link in Link.objects.filter(topic=topic).order_by("title"):
        print(f"- {link.title} ({link.domain})")
    titles = [link.title async for link in Link.objects.filter(group="async").aiterator()]
    print(f"aiterator() streamed {len(titles)} async driver links")

    print("\n== Writes ==")
    tag = await Tag.objects.acreate(name="asyncio")
    updated = await Tag.objects.filter(pk=tag.pk).aupdate(uses=3)
    deleted, _ = await Tag.objects.filter(pk=tag.pk).adelete()
    print(f"acreate() {tag}, aupdate() {updated} row, adelete() {deleted} row")

    print("\n== The blocking API in async code ==")
    try:
        Topic.objects.count()
    except SynchronousOnlyOperation:
        print("Topic.objects.count() raised SynchronousOnlyOperation")
    names = await sync_to_async(busiest_topic_names)()
    print(f"sync_to_async(busiest_topic_names)() -> {names}")

    print("\n== Several queries at once with asyncio.gather ==")
    topics, links = await asyncio.gather(Topic.objects.acount(), Link.objects.acount())
    print(f"{topics} topics, {links} links")


if __name__ == "__main__":
    asyncio.run(main())
