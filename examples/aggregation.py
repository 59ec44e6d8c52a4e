"""Aggregation: aggregate(), annotate() and GROUP BY

- `aggregate()` reduces a whole QuerySet to a dictionary of numbers (`COUNT`, `AVG`,
  `MAX`…): one row back.
- `annotate()` adds a computed value to every object, here each topic's number of links;
  Django writes the `GROUP BY` for you.
- `values(...).annotate(...)` groups by the fields you name, like `GROUP BY group`.
- Filtering on an annotation becomes `HAVING`; `Count(..., filter=Q(...))` counts only some
  rows (`COUNT(...) FILTER (WHERE ...)`).
- Annotate counts over two different relations in one query and the joins multiply each
  other's rows: count them in separate queries (or subqueries).
"""

from django.db.models import Avg, Count, Max, Min, Q

from glossary.models import Link, Topic


def main():
    print("== aggregate(): one row for the whole table ==")
    totals = Link.objects.aggregate(
        links=Count("pk"), domains=Count("domain", distinct=True), last_title=Max("title")
    )
    print(totals)

    print("\n== annotate(): a value per topic ==")
    busiest = (
        Topic.objects.annotate(link_count=Count("links"))
        .order_by("-link_count", "name")
        .values_list("name", "link_count")[:5]
    )
    for name, link_count in busiest:
        print(f"{link_count:3} links  {name}")

    print("\n== values().annotate(): GROUP BY a column ==")
    per_group = Link.objects.values("group").annotate(n=Count("pk")).order_by("-n", "group")
    for row in per_group:
        print(f"{row['n']:3}  {row['group']}")

    print("\n== Filtering on an annotation: HAVING ==")
    linkless = Topic.objects.annotate(n=Count("links")).filter(n=0).count()
    many = Topic.objects.annotate(n=Count("links")).filter(n__gte=5).count()
    print(f"{linkless} topics have no links, {many} have five or more")

    print("\n== Conditional counts, then an aggregate over them ==")
    docs = Topic.objects.annotate(docs=Count("links", filter=Q(links__group="docs"))).aggregate(
        average=Avg("docs"), fewest=Min("docs"), most=Max("docs")
    )
    print(f"documentation links per topic: average {docs['average']:.2f}, ", end="")
    print(f"from {docs['fewest']} to {docs['most']}")
    runnable = Topic.objects.annotate(
        runnable=Count("snippets", filter=~Q(snippets__runtime=""))
    ).filter(runnable__gt=0)
    print(f"{runnable.count()} topics have at least one runnable snippet")


if __name__ == "__main__":
    main()
