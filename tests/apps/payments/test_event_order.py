"""Out-of-order safety as a property: whatever order (and however many times) Stripe delivers a
payment's events, the payment ends in the highest-ranked state reported (succeeded > canceled >
failed > pending), and its order is paid exactly once when a success is among them."""

from __future__ import annotations

import itertools

from django_tenants.utils import tenant_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.orders.models import OrderEvent
from apps.payments import webhooks
from apps.payments.models import Payment, Provider
from tests.apps.orders import shop

KINDS = ["payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled"]
EXPECTED = ["pending", "failed", "canceled", "succeeded"]  # the ranks, written out independently
STATE_OF = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
    "payment_intent.canceled": "canceled",
}
_serial = itertools.count(1)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    deliveries=st.lists(
        st.tuples(st.sampled_from(KINDS), st.integers(0, 2)), min_size=1, max_size=8
    )
)
def test_final_state_is_the_highest_reported_whatever_the_order(alpha, deliveries):
    """`deliveries`: (event type, which of 3 event ids) — the same id again is a replay."""
    with tenant_context(alpha.tenant):
        order = shop.place(alpha, [(shop.variant("15.00", stock=1), 1)])
        intent_id = f"pi_prop_{next(_serial)}"
        payment = Payment.objects.create(
            order=order,
            provider=Provider.STRIPE,
            stripe_id=intent_id,
            amount=order.total,
            currency=order.currency,
            attempt=1,
        )
        first_kind: dict[str, str] = {}
        for kind, slot in deliveries:
            event_id = f"evt_{intent_id}_{slot}"
            first_kind.setdefault(event_id, kind)  # a replayed id carries what it carried first
            webhooks.receive_event(
                event={
                    "id": event_id,
                    "type": first_kind[event_id],
                    "data": {
                        "object": {
                            "id": intent_id,
                            "metadata": {"tenant": alpha.tenant.schema_name},
                        }
                    },
                }
            )
        payment.refresh_from_db()
        order.refresh_from_db()
        paid = OrderEvent.objects.filter(order=order, to_status="paid").count()
    reported = {STATE_OF[kind] for kind in first_kind.values()}
    expected = max(reported, key=EXPECTED.index)
    assert payment.status == expected
    assert (order.status, paid) == (("paid", 1) if expected == "succeeded" else ("pending", 0))
