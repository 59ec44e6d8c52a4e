"""Transactions: atomic(), rollback on error and savepoints

A money transfer is two `UPDATE`s that must both happen or neither (the A in ACID). Inside
`transaction.atomic()` Django opens a transaction; leaving the block normally commits it,
an exception rolls everything back.

- The balances are updated with `F("balance") - amount` in the database, not in Python.
- The `Account` model has a `CheckConstraint` (balance >= 0), so an overdraft makes the
  *database* raise `IntegrityError`: the credit already made in the same transaction is
  rolled back with it.
- A nested `atomic()` is a **savepoint**: its failure undoes only the inner block, and
  the outer transaction carries on.
- `transaction.on_commit()` runs code only once the data is really committed.
"""

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F

from examples.models import Account


def transfer(source, target, amount):
    """Move amount between two accounts: both updates or neither."""
    with transaction.atomic():
        Account.objects.filter(owner=target).update(balance=F("balance") + amount)
        Account.objects.filter(owner=source).update(balance=F("balance") - amount)
        transaction.on_commit(lambda: print(f"  (on_commit: notify {target} of {amount})"))


def balances():
    return ", ".join(f"{a.owner} {a.balance}" for a in Account.objects.all())


def main():
    Account.objects.bulk_create(
        [Account(owner="alice", balance=Decimal("100.00")), Account(owner="bob", balance=0)]
    )
    print("start:", balances())

    print("\n== A transfer that succeeds: committed ==")
    transfer("alice", "bob", Decimal("30.00"))
    print("after:", balances())

    print("\n== A transfer that overdraws: rolled back ==")
    try:
        transfer("alice", "bob", Decimal("500.00"))
    except IntegrityError as error:
        print("IntegrityError from the database:", str(error).splitlines()[0])
    print("after:", balances(), "(bob's credit was rolled back too)")

    print("\n== Savepoints: a nested atomic() fails, the outer one commits ==")
    with transaction.atomic():
        Account.objects.create(owner="carol", balance=Decimal("10.00"))
        try:
            with transaction.atomic():  # SAVEPOINT
                Account.objects.create(owner="alice", balance=0)  # duplicate owner
        except IntegrityError:
            print("the inner block failed: rolled back to the savepoint")
        Account.objects.filter(owner="carol").update(balance=F("balance") + 5)
    print("after:", balances(), "(carol kept, the duplicate alice never existed)")

    print("\n== An exception of your own rolls back just the same ==")
    try:
        with transaction.atomic():
            Account.objects.filter(owner="bob").update(balance=0)
            raise RuntimeError("payment provider said no")
    except RuntimeError as error:
        print(f"RuntimeError({str(error)!r}) left the block")
    print("after:", balances())


if __name__ == "__main__":
    main()
