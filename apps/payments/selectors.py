"""Reads for payments."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.payments.models import Payment, PaymentSettings


def payment_settings() -> PaymentSettings:
    """The tenant's settings; unsaved defaults (no provider on) before the owner sets any."""
    return PaymentSettings.objects.filter(pk=PaymentSettings.SINGLETON).first() or PaymentSettings(
        pk=PaymentSettings.SINGLETON
    )


def stripe_webhook_secret_token() -> str:
    """The tenant's Stripe webhook signing secret as stored (encrypted; apps.common.crypto
    decrypts it), empty when none is set: the one column a webhook delivery needs."""
    token = (
        PaymentSettings.objects.filter(pk=PaymentSettings.SINGLETON)
        .values_list("stripe_webhook_secret_encrypted", flat=True)
        .first()
    )
    return token or ""


def payments(
    *, order_id: int | None = None, statuses: list[str] | None = None
) -> QuerySet[Payment]:
    queryset = Payment.objects.all()
    if order_id is not None:
        queryset = queryset.filter(order_id=order_id)
    if statuses:
        queryset = queryset.filter(status__in=statuses)
    return queryset
