"""Payments of one tenant: its provider settings (Stripe secrets encrypted at rest), one Payment
per attempt to collect an order's total, and every Stripe webhook event received (once)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.common import crypto
from apps.common.money import ZERO, MoneyField


class PaymentSettings(models.Model):
    """One row (pk 1): which providers the tenant takes payments with, and its Stripe keys."""

    SINGLETON = 1

    stripe_enabled = models.BooleanField(default=False)
    manual_enabled = models.BooleanField(default=False)
    stripe_publishable_key = models.CharField(max_length=255, blank=True)
    # Fernet tokens (apps.common.crypto), never the secrets themselves.
    stripe_secret_key_encrypted = models.TextField(blank=True)
    stripe_webhook_secret_encrypted = models.TextField(blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="payment_settings_singleton")]

    def __str__(self) -> str:
        return "payment settings"

    @property
    def stripe_secret_key(self) -> str:
        return crypto.decrypt(self.stripe_secret_key_encrypted)

    @property
    def stripe_webhook_secret(self) -> str:
        return crypto.decrypt(self.stripe_webhook_secret_encrypted)


class Provider(models.TextChoices):
    STRIPE = "stripe"
    MANUAL = "manual"


class PaymentStatus(models.TextChoices):
    PENDING = "pending"
    FAILED = "failed"
    CANCELED = "canceled"
    SUCCEEDED = "succeeded"


class Payment(models.Model):
    Status = PaymentStatus

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="payments")
    provider = models.CharField(max_length=16, choices=Provider.choices)
    stripe_id = models.CharField(
        max_length=255, blank=True
    )  # the PaymentIntent id; empty until Stripe made it
    amount = MoneyField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    failure_code = models.CharField(max_length=100, blank=True)
    failure_message = models.TextField(blank=True)
    attempt = models.PositiveIntegerField()
    amount_refunded = MoneyField(default=ZERO)
    # The kind of method it was made with ("card", "sepa_debit", …; empty until Stripe says),
    # for payment analytics by method.
    method_type = models.CharField(max_length=32, blank=True, default="")
    # Set by charge.dispute.created (apps.payments.refunds); a dispute never changes `status`.
    dispute_id = models.CharField(max_length=255, blank=True)
    dispute_reason = models.CharField(max_length=100, blank=True)
    disputed_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["order", "-created"], name="payment_order_created"),
            # apps.payments.reconcile: the pending ones, read every minute
            models.Index(fields=["created"], name="payment_pending", condition=Q(status="pending")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "attempt"], name="payment_order_attempt_unique"
            ),
            models.UniqueConstraint(
                fields=["stripe_id"], condition=~Q(stripe_id=""), name="payment_stripe_id_unique"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0) & Q(amount_refunded__lte=models.F("amount")),
                name="payment_refunds_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} payment {self.attempt} of order {self.order_id}"


class StripeRefundStatus(models.TextChoices):
    # Recorded here, about to be asked of Stripe (or asked, and the answer not yet applied): the
    # durable record of the call (apps.payments.refunds), finished by a retry or the reconciler.
    REQUESTED = "requested"
    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class StripeRefund(models.Model):
    """A Stripe refund of a payment: one made through `refundCreate` (with the order refund it
    carries out), one made in the Stripe dashboard and learnt from a webhook (with the order
    refund recorded for it then), or the return of money taken for an order that no longer
    waited for it (no order refund). apps.payments.refunds keeps them."""

    Status = StripeRefundStatus

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="stripe_refunds")
    order_refund = models.OneToOneField(
        "orders.Refund",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="stripe_refund",
    )
    stripe_id = models.CharField(max_length=255, blank=True)  # re_…; empty while requested
    amount = MoneyField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=StripeRefundStatus.choices)
    failure_reason = models.CharField(max_length=100, blank=True)
    from_dashboard = models.BooleanField(default=False)
    # The call to Stripe, while requested: how many times it was made (after the first, Stripe is
    # asked whether it made the refund before it is asked again), and until when one caller holds
    # it (a lease: two callers never ask Stripe for the same refund at once).
    attempts = models.PositiveIntegerField(default=0)
    claimed_until = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="stripe_refund_amount_positive"),
            models.UniqueConstraint(
                fields=["stripe_id"], condition=~Q(stripe_id=""), name="stripe_refund_id_unique"
            ),
            # Only a refund not yet made, or one Stripe refused, has no Stripe id.
            models.CheckConstraint(
                condition=Q(status__in=["requested", "failed"]) | ~Q(stripe_id=""),
                name="stripe_refund_id_once_made",
            ),
        ]
        indexes = [
            models.Index(
                fields=["status"], condition=Q(status="requested"), name="stripe_refund_requested"
            )
        ]

    def __str__(self) -> str:
        return f"stripe refund {self.stripe_id} of payment {self.payment_id}"


class WebhookEvent(models.Model):
    """A Stripe event, stored once by its id: a replay finds it and changes nothing."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    outcome = models.CharField(max_length=40)  # applied | stale | unknown_payment | ignored
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    received = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received", "-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class StripeCustomer(models.Model):
    """The Stripe Customer that holds a shop customer's saved payment methods (created on first
    need by apps.payments.methods); the methods themselves stay at Stripe."""

    customer = models.OneToOneField(
        "customers.Customer", on_delete=models.CASCADE, related_name="stripe_customer"
    )
    stripe_customer_id = models.CharField(max_length=255, unique=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.stripe_customer_id
