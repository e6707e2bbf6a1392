"""Analytics of one tenant: the events shops send, the daily rollups the metrics engine reads
(kept exact by apps.analytics.rollups in the transaction of every write that changes them), and
the dashboards' saved widgets and reports.

Days are local days in the tenant's time zone; a rollup row is what happened on that day."""

from __future__ import annotations

from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.common.money import ZERO, MoneyField


class Event(models.Model):
    """Something a shopper did: viewed a product, added to cart, began checkout, purchased, …
    `type` is a lowercase identifier (apps.analytics.events validates it and `properties`)."""

    type = models.CharField(max_length=64)
    time = models.DateTimeField(default=timezone.now)
    session_id = models.CharField(max_length=128, blank=True)  # anonymous visitor or session
    # Plain ids, no foreign keys: events arrive by COPY at high rates and outlive what they name
    # (apps.analytics.events checks the ids on the way in).
    customer_id = models.BigIntegerField(null=True, blank=True)
    product_id = models.BigIntegerField(null=True, blank=True)
    order_id = models.BigIntegerField(null=True, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    received = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            BrinIndex(fields=["time"], name="event_time_brin", autosummarize=True),
            models.Index(fields=["type", "time"], name="event_type_time"),
            models.Index(
                fields=["product_id", "time"],
                name="event_product_time",
                condition=Q(product_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} at {self.time:%Y-%m-%d %H:%M}"


class SalesDay(models.Model):
    """The orders placed on `day` (cancelled ones left out) and the refunds made on it."""

    day = models.DateField(unique=True)
    orders = models.PositiveIntegerField(default=0)
    gross = MoneyField(default=ZERO)  # order totals: what customers were charged
    discounts = MoneyField(default=ZERO)
    tax = MoneyField(default=ZERO)
    shipping = MoneyField(default=ZERO)
    units = models.PositiveIntegerField(default=0)
    refunds = MoneyField(default=ZERO)  # refunds made that day, on orders that count
    refund_count = models.PositiveIntegerField(default=0)
    refunded_units = models.PositiveIntegerField(default=0)
    new_customer_orders = models.PositiveIntegerField(default=0)  # a customer's first counted order
    returning_customer_orders = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["day"]

    def __str__(self) -> str:
        return f"sales of {self.day}"


class ProductDay(models.Model):
    """One product's lines in the orders placed on `day`, and its refunded lines that day."""

    day = models.DateField()
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    units = models.PositiveIntegerField(default=0)
    revenue = MoneyField(default=ZERO)  # line totals (before order-level discount, tax, shipping)
    orders = models.PositiveIntegerField(default=0)
    refunded_units = models.PositiveIntegerField(default=0)
    refunds = MoneyField(default=ZERO)  # refund line amounts

    class Meta:
        ordering = ["day", "product_id"]
        constraints = [
            models.UniqueConstraint(fields=["day", "product"], name="product_day_unique")
        ]
        indexes = [models.Index(fields=["product", "day"], name="product_day_product")]

    def __str__(self) -> str:
        return f"product {self.product_id} on {self.day}"


class EventDay(models.Model):
    """Events of one type on `day`, per product (null: all events of the type without one)."""

    day = models.DateField()
    type = models.CharField(max_length=64)
    product_id = models.BigIntegerField(null=True, blank=True)
    events = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["day", "type"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "type", "product_id"], name="event_day_unique", nulls_distinct=False
            )
        ]

    def __str__(self) -> str:
        return f"{self.events} {self.type} on {self.day}"


class Rollup(models.Model):
    """One row per rollup family: the time zone its days are in (a change of the tenant's time
    zone rebuilds them) and when it was last rebuilt."""

    name = models.CharField(max_length=32, unique=True)
    time_zone = models.CharField(max_length=64)
    rebuilt = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} in {self.time_zone}"


class Widget(models.Model):
    """A saved dashboard widget: a chart of one metric (by one dimension) over a range."""

    class Kind(models.TextChoices):
        KPI = "kpi"
        LINE = "line"
        BAR = "bar"
        PIE = "pie"
        TABLE = "table"

    # Users live in the public schema: a plain id, no cross-schema foreign key.
    user_id = models.BigIntegerField(null=True, blank=True)  # null: the tenant's shared dashboard
    title = models.CharField(max_length=120)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    definition = models.JSONField(default=dict)  # metric, dimension, range, granularity, filters
    position = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.title


class Report(models.Model):
    """A saved custom report: metrics x dimensions x filters x range x granularity."""

    user_id = models.BigIntegerField(null=True, blank=True)  # who saved it
    name = models.CharField(max_length=120)
    definition = models.JSONField(default=dict)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name
