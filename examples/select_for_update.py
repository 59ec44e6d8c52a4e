"""Row locks with select_for_update()

Two requests that read a balance, subtract in Python and save can both read 100 and both
write 70: a **lost update**. `select_for_update()` locks the rows it reads until the
transaction ends, so the second request waits (or, with `nowait=True`, fails at once).

- It only works inside `transaction.atomic()`; outside one, on a database with row locks,
  Django raises `TransactionManagementError` before sending anything.
- **PostgreSQL** (and MySQL, Oracle) add `FOR UPDATE` to the `SELECT`; look for it in the
  SQL below when this runs on PostgreSQL. `skip_locked=True` and `of=(...)` refine it.
- **SQLite** has no row locks: Django leaves `FOR UPDATE` out, and a writer locks the whole
  database file instead. The code still runs; it just does not lock rows.

A second thread with its own database connection plays the competing request.
"""

import threading
from decimal import Decimal

from django.db import DatabaseError, connection, transaction
from django.db.transaction import TransactionManagementError

from examples.models import Account


def competing_request(results):
    """Another connection tries to lock alice's row without waiting."""
    try:
        with transaction.atomic():
            Account.objects.select_for_update(nowait=True).get(owner="alice")
            results.append("the other connection got the row: nothing was locked")
    except DatabaseError as error:
        results.append(f"the other connection was refused: {str(error).strip()}")
    finally:
        connection.close()  # this thread's own connection


def main():
    Account.objects.create(owner="alice", balance=Decimal("100.00"))
    print(f"database: {connection.vendor}")

    print("\n== Outside a transaction ==")
    try:
        Account.objects.select_for_update().get(owner="alice")
        print(f"no error on {connection.vendor}: without row locks there is nothing to check")
    except TransactionManagementError as error:
        print(f"TransactionManagementError: {error}")

    print("\n== Inside atomic(): lock, read, write ==")
    with transaction.atomic():
        account = Account.objects.select_for_update().get(owner="alice")
        print(f"locked {account}")
        results = []
        other = threading.Thread(target=competing_request, args=(results,))
        other.start()
        other.join()
        print(results[0])
        account.balance -= Decimal("30.00")
        account.save(update_fields=["balance"])
    print("committed: the lock is released;", Account.objects.get(owner="alice"))

    if connection.features.has_select_for_update:
        print("\nThis database locks rows: the SELECT above ends in FOR UPDATE.")
    else:
        print(f"\n{connection.display_name} has no row locks, so Django sent a plain SELECT.")
        print("PostgreSQL would get the same SELECT followed by FOR UPDATE (NOWAIT for the")
        print("other connection) and refuse it: could not obtain lock on row.")


if __name__ == "__main__":
    main()
