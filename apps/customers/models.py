"""The customers of one tenant, their notes, and the order statistics kept current on them."""

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models

from apps.common.money import ZERO, MoneyField


class Customer(models.Model):
    email = models.EmailField(unique=True)  # stored lower-case
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    addresses = models.JSONField(default=list, blank=True)
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)  # lower-case
    accepts_marketing = models.BooleanField(default=False)
    marketing_consent_at = models.DateTimeField(null=True, blank=True)
    # Kept current by the order services in the same transaction as the order change.
    orders_count = models.PositiveIntegerField(default=0)
    total_spent = MoneyField(default=ZERO)
    first_order_at = models.DateTimeField(null=True, blank=True)
    last_order_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["-total_spent"], name="customer_total_spent"),
            models.Index(fields=["last_order_at"], name="customer_last_order"),
            models.Index(fields=["-created"], name="customer_created"),
            GinIndex(fields=["tags"], name="customer_tags_gin"),
        ]

    def __str__(self) -> str:
        return self.email


class CustomerNote(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="notes")
    body = models.TextField()
    author_id = models.BigIntegerField(null=True, blank=True)
    author_email = models.CharField(max_length=254, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"note on {self.customer_id}"
