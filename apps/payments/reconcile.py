"""The reconciler: finishes the Stripe calls that a crash, a timeout or an outage left between
their durable record and their answer (DESIGN §12), by asking Stripe what became of them. Beat
runs it in every tenant each minute (apps.payments.tasks.reconcile_all_tenants).

- A Stripe refund still `requested` (a refund through the API, or a payment return) whose lease
  has run out: `apps.payments.refunds.settle` asks Stripe whether it made it (the refund's
  metadata names it) and makes it only if not, then records the answer.
- A Stripe payment attempt recorded without its intent (the request died before Stripe answered,
  and nobody asked for the order's intent again): the intent is made with the attempt's key,
  which hands back the one Stripe made if it did; if the order no longer waits for payment, the
  intent is cancelled.
- A Stripe intent still open for an order that no longer waits for payment (paid another way or
  cancelled), whose cancellation task was lost or gave up: it is cancelled
  (apps.payments.cleanup), so the buyer can no longer pay it.
- A payment return needs nothing of its own: it is recorded as a requested refund when the
  payment is marked unexpected (apps.payments.state.record_return), so the first point makes it.
Confirmations need nothing here: Stripe reports their outcome by webhook, which it repeats for
days until we take it. Records younger than PAYMENTS_RECONCILE_AFTER_SECONDS are left alone (a
request may still be on its way), as are refunds another caller holds."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import stripe
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.common.errors import UserError
from apps.orders.models import OrderStatus
from apps.payments import cleanup, gateway, refunds, selectors, services
from apps.payments.models import Payment, PaymentStatus, Provider, StripeRefund, StripeRefundStatus
from apps.payments.state import RECONCILER

log = logging.getLogger(__name__)

BATCH = 100  # records per run at most: the next minute's run takes the rest


def _due() -> datetime:
    return timezone.now() - timedelta(seconds=settings.PAYMENTS_RECONCILE_AFTER_SECONDS)


def unfinished_refunds() -> list[int]:
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=timezone.now())
    return list(
        StripeRefund.objects.filter(free, status=StripeRefundStatus.REQUESTED, created__lte=_due())
        .order_by("pk")
        .values_list("pk", flat=True)[:BATCH]
    )


def unfinished_intents() -> list[Payment]:
    return list(
        Payment.objects.filter(
            provider=Provider.STRIPE,
            status=PaymentStatus.PENDING,
            stripe_id="",
            created__lte=_due(),
        )
        .select_related("order")
        .order_by("pk")[:BATCH]
    )


def open_intents_of_settled_orders() -> list[int]:
    """Orders no longer waiting for payment that still have an open Stripe intent, left since
    before the due time."""
    return list(
        Payment.objects.filter(
            provider=Provider.STRIPE, status=PaymentStatus.PENDING, updated__lte=_due()
        )
        .exclude(stripe_id="")
        .exclude(order__status=OrderStatus.PENDING)
        .order_by("order_id")
        .values_list("order_id", flat=True)
        .distinct()[:BATCH]
    )


def reconcile() -> dict[str, int]:
    """Finish what is due in this tenant's schema; how many of each were finished and how many
    could not be (Stripe unreachable or refusing: tried again next run, or failed for staff)."""
    done = {"refunds": 0, "intents": 0, "cancelled": 0, "not_finished": 0}
    for refund_id in unfinished_refunds():
        try:
            refunds.settle(refund_id, actor=RECONCILER)
            done["refunds"] += 1
        except UserError as error:
            log.warning("Stripe refund %s not finished: %s", refund_id, error.message)
            done["not_finished"] += 1
    config = selectors.payment_settings()
    if not config.stripe_enabled:
        return done
    intents = unfinished_intents()
    if intents:
        api = gateway.api_for(config, "payment")
        for payment in intents:
            try:
                services.make_intent(api, payment, actor=RECONCILER)
                if payment.order.status != OrderStatus.PENDING:
                    cleanup.cancel_open_intents(order_id=payment.order_id)
                done["intents"] += 1
            except UserError as error:
                log.warning("Intent of payment %s not finished: %s", payment.pk, error.message)
                done["not_finished"] += 1
    for order_id in open_intents_of_settled_orders():
        try:
            done["cancelled"] += len(cleanup.cancel_open_intents(order_id=order_id))
        except (UserError, stripe.StripeError) as error:
            log.warning("Open intents of order %s not cancelled: %s", order_id, error)
            done["not_finished"] += 1
    return done
