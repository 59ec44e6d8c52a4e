"""get_or_create(), update_or_create() and the race they survive

`Tag.objects.get_or_create(name=...)` is a `SELECT`, then an `INSERT` if nothing was found.
Between the two, another request can insert the same name. Django's answer relies on the
database: `Tag.name` is **unique**, so the second `INSERT` fails with `IntegrityError`;
Django catches it (inside a savepoint) and fetches the row the other request created.
Without a unique constraint both inserts would succeed and you would have duplicates.

- `get_or_create()` returns `(object, created)`.
- `update_or_create()` updates the fields in `defaults` when the row exists, and creates it
  with `create_defaults` (or `defaults`) when it does not.
- The race is replayed below for real: an execute wrapper lets a second connection insert
  the same tag just before our `INSERT` reaches the database.
"""

from django.db import IntegrityError, connection, connections, transaction

from examples.models import Tag


def main():
    print("== get_or_create() ==")
    tag, created = Tag.objects.get_or_create(name="sql")
    print(f"first call: {tag}, created={created}")
    tag, created = Tag.objects.get_or_create(name="sql")
    print(f"second call: {tag}, created={created} (found, not inserted)")

    print("\n== update_or_create() ==")
    for _ in range(2):
        tag, created = Tag.objects.update_or_create(
            name="orm", defaults={"uses": 5}, create_defaults={"uses": 1}
        )
        print(f"{tag}: uses={tag.uses}, created={created}")

    print("\n== Inserting a duplicate by hand ==")
    try:
        with transaction.atomic():
            Tag.objects.create(name="sql")
    except IntegrityError as error:
        print("IntegrityError:", str(error).splitlines()[0])

    print("\n== The race: someone else inserts between our SELECT and INSERT ==")

    def other_request_first(execute, sql, params, many, context):
        if sql.startswith('INSERT INTO "examples_tag"'):
            other = connections.create_connection("default")  # a second connection
            with other.cursor() as cursor:
                cursor.execute('INSERT INTO "examples_tag" (name, uses) VALUES (%s, 0)', params[:1])
            other.close()
            print("  (another connection just inserted 'postgres')")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(other_request_first):
        tag, created = Tag.objects.get_or_create(name="postgres")
    print(f"get_or_create() returned {tag} with created={created}: it lost the race,")
    print("caught the IntegrityError and fetched the other request's row")
    print("tags named postgres:", Tag.objects.filter(name="postgres").count())


if __name__ == "__main__":
    main()
