"""Bulk writes: bulk_create(), bulk_update() and update()

Saving objects one by one costs a round trip per row. The bulk methods send few
statements for many rows; the query counts below are measured, not assumed (Django counts
the `BEGIN` and `COMMIT` of the transaction a bulk method opens, too).

- `bulk_create(objs, batch_size=...)`: one multi-row `INSERT` per batch.
- `bulk_update(objs, fields)`: one `UPDATE ... SET col = CASE id WHEN ... END` per batch.
- `QuerySet.update()`: one `UPDATE` with no objects loaded at all, when every row gets the
  same change (or a change computed by an `F()` expression).

The catch: bulk methods skip `save()` and the `pre_save`/`post_save` signals, so anything
a model computes in `save()` is not computed. Here that is fine: `PageView` has no such
fields (the glossary's `Link` derives its domain in `save()`, so it would be a bad fit).
"""

from datetime import UTC, datetime, timedelta
from itertools import groupby

from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from examples.models import PageView
from glossary.models import Topic

ROWS = 30


def statements(captured):
    """What a CaptureQueriesContext saw, e.g. "BEGIN, INSERT x3, COMMIT"."""
    words = [query["sql"].split()[0].upper() for query in captured.captured_queries]
    runs = [(word, len(list(group))) for word, group in groupby(words)]
    return ", ".join(word if n == 1 else f"{word} x{n}" for word, n in runs)


def new_views(topics, start):
    return [
        PageView(
            topic=topics[i % len(topics)],
            referrer="news.ycombinator.com" if i % 3 else "",
            seconds=10 + i,
            viewed_at=start + timedelta(minutes=i),
        )
        for i in range(ROWS)
    ]


def main():
    topics = list(Topic.objects.filter(letter="S"))
    start = datetime(2025, 1, 1, tzinfo=UTC)

    print(f"== {ROWS} rows saved one by one ==")
    with CaptureQueriesContext(connection) as one_by_one:
        for view in new_views(topics, start):
            view.save()
    print(f"-> {len(one_by_one)} queries with save() in a loop: {statements(one_by_one)}")

    print(f"\n== {ROWS} rows with bulk_create(batch_size=10) ==")
    with CaptureQueriesContext(connection) as bulk:
        created = PageView.objects.bulk_create(new_views(topics, start), batch_size=10)
    print(f"-> {len(bulk)} queries for {len(created)} rows: {statements(bulk)}")
    print(f"   the new ids came back too: {[view.pk for view in created[:3]]}...")

    print("\n== bulk_update(): a different value per row ==")
    for view in created:
        view.seconds *= 2
    with CaptureQueriesContext(connection) as updated:
        rows = PageView.objects.bulk_update(created, ["seconds"], batch_size=ROWS)
    print(f"-> {len(updated)} queries updated {rows} rows: {statements(updated)}")

    print("\n== update(): the same change for every matching row ==")
    with CaptureQueriesContext(connection) as in_place:
        rows = PageView.objects.filter(referrer="").update(seconds=F("seconds") + 1)
    print(
        f"-> {len(in_place)} query updated {rows} rows without loading them: {statements(in_place)}"
    )

    print(f"\nPageView rows now: {PageView.objects.count()}")


if __name__ == "__main__":
    main()
