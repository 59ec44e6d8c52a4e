"""Create, read, update and delete with the Django ORM

The four basic operations on the glossary's own `Topic` model, and the SQL each one sends:

- **create**: `Topic.objects.create()` is one `INSERT`; `save()` on a new object too.
- **read**: `get()` for exactly one row (and `DoesNotExist` when there is none),
  `filter()` for many. A QuerySet is lazy: no query runs until you iterate, slice or count.
- **update**: `save(update_fields=[...])` writes only the columns you name;
  `QuerySet.update()` changes many rows in one `UPDATE` without loading them.
- **delete**: `delete()` returns how many rows went, per model, cascades included.
"""

from glossary.models import Link, Snippet, Topic


def main():
    print("== Create ==")
    topic = Topic.objects.create(
        name="Bloom filter",
        slug="bloom-filter",
        summary='A compact set that answers "definitely not" or "probably yes".',
    )
    print(f"created {topic} with id {topic.pk}, filed under the letter {topic.letter}")
    Link.objects.create(
        topic=topic, url="https://en.wikipedia.org/wiki/Bloom_filter", title="Bloom filter"
    )

    print("\n== Read ==")
    same = Topic.objects.get(slug="bloom-filter")
    print(f"get(slug=...) found: {same.name!r}, {same.links.count()} link")
    try:
        Topic.objects.get(slug="no-such-topic")
    except Topic.DoesNotExist:
        print("get() of a missing slug raised Topic.DoesNotExist")
    lazy = Topic.objects.filter(letter="P").order_by("name")
    print("a QuerySet is lazy: nothing has run yet for letter P")
    print("first three under P:", [t.name for t in lazy[:3]])

    print("\n== Update ==")
    topic.summary = "A bit array and a few hashes: no false negatives, some false positives."
    topic.save(update_fields=["summary"])
    print("saved only the summary (and the HTML derived from it)")
    moved = Snippet.objects.filter(topic__slug="sqlite").update(position=0)
    print(f"QuerySet.update() changed {moved} SQLite snippet rows in one statement")

    print("\n== Delete ==")
    total, per_model = topic.delete()
    print(f"delete() removed {total} rows: {per_model}")
    print("still there?", Topic.objects.filter(slug="bloom-filter").exists())


if __name__ == "__main__":
    main()
