"""Raw SQL: Manager.raw(), cursors and parameters

When the ORM cannot say it, write SQL, but pass values as **parameters**, never by
formatting them into the string. Django's placeholder is `%s` on every database (it
converts to SQLite's `?` for you); the driver sends values separately from the SQL, so a
value can never change the statement.

- `Topic.objects.raw(sql, params)` maps rows back onto model instances (it needs the
  primary key column).
- `connection.cursor()` gives plain rows; `cursor.description` names the columns.
- The injection attempt below is harmless with parameters: the whole string is one value.
"""

from django.db import connection

from glossary.models import Topic


def dictfetchall(cursor):
    """Rows as dictionaries keyed by column name."""
    columns = [column[0] for column in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def main():
    print("== Manager.raw(): SQL in, model instances out ==")
    topics = Topic.objects.raw(
        "SELECT id, name, slug FROM glossary_topic WHERE letter = %s ORDER BY name", ["M"]
    )
    for topic in topics:
        print(f"{topic.name} -> {topic.get_absolute_url()}")

    print("\n== A cursor: plain rows ==")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.name, COUNT(l.id) AS links
            FROM glossary_topic t JOIN glossary_link l ON l.topic_id = t.id
            WHERE l.domain = %s
            GROUP BY t.name
            ORDER BY links DESC, t.name
            """,
            ["github.com"],
        )
        for row in dictfetchall(cursor)[:5]:
            print(f"{row['links']} GitHub links  {row['name']}")

    print("\n== Parameters make injection harmless ==")
    hostile = "x' OR '1'='1"
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM glossary_topic WHERE slug = %s", [hostile])
        print(f"slug = {hostile!r} as a parameter matches {cursor.fetchone()[0]} topics")
        # Never do this: the quote in the value ends the string and rewrites the WHERE.
        cursor.execute(f"SELECT COUNT(*) FROM glossary_topic WHERE slug = '{hostile}'")
        print(f"the same value formatted into the SQL matches {cursor.fetchone()[0]} topics")


if __name__ == "__main__":
    main()
