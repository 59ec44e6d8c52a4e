"""Small models that some examples need besides the glossary's own."""

from django.db import models
from django.db.models import Q


class Account(models.Model):
    """A bank account for the money-transfer examples."""

    owner = models.CharField(max_length=100, unique=True)
    balance = models.DecimalField(max_digits=12, decimal_places=2, default=0)

    class Meta:
        ordering = ["owner"]
        constraints = [
            # The database refuses an overdraft, whatever the Python code forgets to check.
            models.CheckConstraint(
                condition=Q(balance__gte=0), name="account_balance_not_negative"
            ),
        ]

    def __str__(self):
        return f"{self.owner}: {self.balance}"


class Tag(models.Model):
    """A label with a unique name, for get_or_create() and update_or_create()."""

    name = models.CharField(max_length=50, unique=True)
    uses = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class PageView(models.Model):
    """One reader looking at a topic page: many rows, for bulk writes and query plans."""

    topic = models.ForeignKey("glossary.Topic", on_delete=models.CASCADE, related_name="page_views")
    referrer = models.CharField(max_length=100, blank=True)
    seconds = models.PositiveIntegerField(default=0)
    viewed_at = models.DateTimeField()

    class Meta:
        ordering = ["viewed_at"]

    def __str__(self):
        return f"{self.topic_id} at {self.viewed_at:%Y-%m-%d %H:%M}"
