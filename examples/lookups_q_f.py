"""Field lookups, Q objects and F expressions

How `filter()` arguments become a `WHERE` clause:

- **lookups** after a double underscore: `icontains`, `startswith`, `in`, `isnull`,
  `gte`, and lookups across relations (`topic__slug`).
- **Q objects** combine conditions with `|` (OR), `&` (AND) and `~` (NOT), which keyword
  arguments alone cannot express.
- **F expressions** refer to a column instead of a Python value: compare two columns of the
  same row, or update a column from its own value in the database (`position + 1`), with
  no read-modify-write race.
"""

from django.db.models import F, Q

from glossary.models import Link, Topic


def main():
    print("== Lookups ==")
    names = Topic.objects.filter(name__icontains="sql").values_list("name", flat=True)
    print("name__icontains='sql':", ", ".join(names))
    roots = Topic.objects.filter(parent__isnull=True).count()
    print(f"parent__isnull=True: {roots} top-level topics")
    wiki = Link.objects.filter(domain__in=["en.wikipedia.org", "docs.python.org"]).count()
    print(f"domain__in=[...]: {wiki} links to Wikipedia or the Python docs")
    sqlite_docs = Link.objects.filter(topic__slug="sqlite", group="docs")
    print("across a relation, topic__slug='sqlite':", [link.title for link in sqlite_docs])

    print("\n== Q objects: OR, AND, NOT ==")
    either = Q(name__startswith="Post") | Q(aliases__icontains="postgres")
    print("starts with Post OR alias postgres:", Topic.objects.filter(either).count())
    docs_not_postgres = Link.objects.filter(Q(group="docs") & ~Q(domain="postgresql.org"))
    print("documentation links not on postgresql.org:", docs_not_postgres.count())

    print("\n== F expressions ==")
    same_title = Link.objects.filter(title=F("topic__name")).count()
    print(f"links whose title equals their topic's name (column vs column): {same_title}")
    first_link = Link.objects.filter(topic__slug="redis").order_by("pk").first()
    print(f"'{first_link.title}' position before: {first_link.position}")
    Link.objects.filter(pk=first_link.pk).update(position=F("position") + 1)
    first_link.refresh_from_db(fields=["position"])
    print(f"after update(position=F('position') + 1): {first_link.position}")


if __name__ == "__main__":
    main()
