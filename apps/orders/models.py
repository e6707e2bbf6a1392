"""Orders of one tenant: lines with a snapshot of what was sold, the status history, refunds."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.common.money import ZERO, MoneyField


class OrderStatus(models.TextChoices):
    PENDING = "pending"
    PAID = "paid"
    FULFILLED = "fulfilled"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class OrderCounter(models.Model):
    """One row: the last order number given out in this tenant (gapless, sequential)."""

    last = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"last order number {self.last}"


class Order(models.Model):
    Status = OrderStatus

    number = models.PositiveBigIntegerField(unique=True)
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    email = models.EmailField(blank=True)
    status = models.CharField(
        max_length=24, choices=OrderStatus.choices, default=OrderStatus.PENDING
    )
    currency = models.CharField(max_length=3)
    subtotal = MoneyField(default=ZERO)
    discount_total = MoneyField(default=ZERO)
    tax_total = MoneyField(default=ZERO)
    shipping_total = MoneyField(default=ZERO)
    total = MoneyField(default=ZERO)
    refunded_total = MoneyField(default=ZERO)
    placed_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-placed_at", "-id"]
        indexes = [
            models.Index(fields=["-placed_at"], name="order_placed"),
            models.Index(fields=["status", "-placed_at"], name="order_status_placed"),
            models.Index(fields=["customer", "-placed_at"], name="order_customer_placed"),
            models.Index(fields=["-total"], name="order_total"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_not_negative"),
            models.CheckConstraint(
                condition=Q(refunded_total__gte=0) & Q(refunded_total__lte=models.F("total")),
                name="order_refunds_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.number}"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    variant = models.ForeignKey(
        "catalog.Variant",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="order_lines",
    )
    product = models.ForeignKey(
        "catalog.Product",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="order_lines",
    )
    # A snapshot of what was sold, so later catalog edits do not rewrite history.
    product_name = models.CharField(max_length=200)
    variant_name = models.CharField(max_length=120, blank=True)
    sku = models.CharField(max_length=64)
    unit_price = MoneyField()
    quantity = models.PositiveIntegerField()
    refunded_quantity = models.PositiveIntegerField(default=0)
    total = MoneyField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="line_quantity_positive"),
            models.CheckConstraint(
                condition=Q(refunded_quantity__lte=models.F("quantity")),
                name="line_refunds_within_quantity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"


class OrderEvent(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=40)
    from_status = models.CharField(max_length=24, blank=True)
    to_status = models.CharField(max_length=24, blank=True)
    data = models.JSONField(default=dict, blank=True)
    actor_email = models.CharField(max_length=254, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return f"{self.type} on {self.order_id}"


class Refund(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="refunds")
    amount = MoneyField()
    reason = models.CharField(max_length=200, blank=True)
    restock = models.BooleanField(default=False)
    actor_email = models.CharField(max_length=254, blank=True)
    # The caller's key for the `refundCreate` request: a retried request finds this refund.
    request_key = models.CharField(max_length=255, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.UniqueConstraint(
                fields=["request_key"],
                condition=~Q(request_key=""),
                name="refund_request_key_unique",
            ),
        ]
        # Analytics rollups find the refunds of a day (apps.analytics.rollups).
        indexes = [models.Index(fields=["created"], name="refund_created")]

    def __str__(self) -> str:
        return f"refund {self.amount} on {self.order_id}"


class RefundLine(models.Model):
    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(OrderLine, on_delete=models.CASCADE, related_name="refund_lines")
    quantity = models.PositiveIntegerField()
    amount = MoneyField()

    def __str__(self) -> str:
        return f"{self.quantity} of line {self.order_line_id}"
