"""Full-text search: icontains versus PostgreSQL's SearchVector

`icontains` matches a substring: it finds "index" inside "indexing" but not "indexes",
knows nothing of word forms or relevance, and (with a leading wildcard) cannot use a plain
B-tree index, so it scans every row.

Full-text search turns text into normalised words (lexemes) and matches queries against
them, ranked by relevance. On PostgreSQL, `django.contrib.postgres.search` wraps it:

- `SearchVector("name", "summary")` builds a `tsvector` (weights A/B rank the name higher);
- `SearchQuery("indexes")` is parsed with the same stemming, so it matches "index" too;
- `SearchRank(vector, query)` orders by relevance.

On SQLite this example runs the `icontains` part and shows what PostgreSQL would do; SQLite
has its own engine, the FTS5 virtual table (see the SQLite FTS5 snippet in the glossary).
"""

from django.db import connection
from django.db.models import Q

from glossary.models import Topic

WORDS = "indexes"


def main():
    print(f"== icontains: the substring {WORDS!r} ==")
    substring = Topic.objects.filter(Q(name__icontains=WORDS) | Q(summary__icontains=WORDS))
    print(f"{substring.count()} topics contain {WORDS!r} literally:")
    print(", ".join(topic.name for topic in substring))

    print(f"\n== Full-text search for {WORDS!r} ==")
    if connection.vendor != "postgresql":
        print(f"This is {connection.display_name}: no SearchVector here. On PostgreSQL,")
        print("  Topic.objects.annotate(rank=SearchRank(vector, SearchQuery('indexes')))")
        print("would also match 'index' and 'indexing' (same stem: index) and rank the")
        print("topics that say it in their name first.")
        return

    from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

    vector = SearchVector("name", weight="A", config="english") + SearchVector(
        "summary", weight="B", config="english"
    )
    query = SearchQuery(WORDS, config="english")
    ranked = (
        Topic.objects.annotate(search=vector, rank=SearchRank(vector, query))
        .filter(search=query)  # the @@ match operator
        .order_by("-rank", "name")
    )
    found = list(ranked[:8])
    print(f"{ranked.count()} topics match the stem of {WORDS!r}; the best:")
    for topic in found:
        print(f"{topic.rank:.3f}  {topic.name}")


if __name__ == "__main__":
    main()
