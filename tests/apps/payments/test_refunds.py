"""Stripe refund and dispute webhooks (`charge.refunded`, `refund.updated`,
`charge.dispute.created`) over HTTP, signed with Stripe's scheme, against refunds that exist in
localstripe: applied once, replays and late events change nothing, a refund made in the Stripe
dashboard is recorded as an order refund once, a failed refund is taken off what was refunded."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEntry
from apps.orders.models import Order, OrderEvent, Refund
from apps.payments import refunds, services, webhooks
from apps.payments.models import Payment, StripeRefund, WebhookEvent
from tests.apps.orders import shop
from tests.apps.payments.fixtures import StripeShop, configure, event, post_webhook, sign

CARD = {
    "type": "card",
    "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"},
}


def paid_order(
    fixture, keys: StripeShop, *, price: str = "20.00", quantity: int = 2, shipping: str = "5.00"
) -> Payment:
    """An order (2 x 20.00 + 5.00 shipping = 45.00 by default) paid by card through a real
    intent in localstripe: the order is paid, its payment succeeded."""
    with tenant_context(fixture.tenant):
        order = shop.place(fixture, [(shop.variant(price, stock=10), quantity)], shipping=shipping)
        payment, _ = services.create_intent(actor=shop.actor(fixture), order_id=order.pk)
        method = keys.api().v1.payment_methods.create(params=CARD)
        payment = services.confirm_payment(
            actor=shop.actor(fixture), payment_id=payment.pk, payment_method=method.id
        )
    assert payment.status == "succeeded" and payment.order.status == "paid"
    return payment


def stripe_refunds(keys: StripeShop, payment: Payment) -> list:
    """The refunds localstripe holds for the payment's intent."""
    return list(keys.api().v1.refunds.list(params={"payment_intent": payment.stripe_id}).data)


@pytest.fixture
def keys(alpha, stripe_api):
    return configure(alpha)


@pytest.fixture
def payment(alpha, keys) -> Payment:
    return paid_order(alpha, keys)


def through_api(fixture, payment: Payment, amount: str) -> StripeRefund:
    with tenant_context(fixture.tenant):
        return refunds.create_refund(
            actor=shop.actor(fixture), order_id=payment.order_id, amount=Decimal(amount)
        )


def charge_refunded(payment: Payment, *stripe_refund: dict, event_id: str | None = None) -> bytes:
    refunded = sum(r["amount"] for r in stripe_refund)
    charge = {
        "id": "ch_test",
        "object": "charge",
        "payment_intent": payment.stripe_id,
        "amount": 4500,
        "amount_refunded": refunded,
        "refunded": refunded == 4500,
        "refunds": {"object": "list", "data": list(stripe_refund)},
    }
    return event("charge.refunded", charge, event_id=event_id)


def refund_object(stripe_id: str, payment: Payment, units: int, status: str, **extra) -> dict:
    return {
        "id": stripe_id,
        "object": "refund",
        "amount": units,
        "currency": "usd",
        "status": status,
        "payment_intent": payment.stripe_id,
        "charge": "ch_test",
        **extra,
    }


def deliver(gql, fixture, keys: StripeShop, body: bytes):
    response = post_webhook(gql, fixture, body, sign(body, keys.webhook_secret))
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def snapshot(fixture, payment: Payment) -> dict:
    with tenant_context(fixture.tenant):
        row = Payment.objects.select_related("order").get(pk=payment.pk)
        return {
            "amount_refunded": row.amount_refunded,
            "order_status": row.order.status,
            "order_refunded": row.order.refunded_total,
            "order_refunds": Refund.objects.filter(order_id=row.order_id).count(),
            "stripe_refunds": {
                r.stripe_id: r.status for r in StripeRefund.objects.filter(payment=row)
            },
        }


def test_a_dashboard_refund_is_recorded_as_an_order_refund_once(gql, alpha, keys, payment):
    made = (
        keys.api()
        .v1.refunds.create(params={"payment_intent": payment.stripe_id, "amount": 700})
        .to_dict()
    )
    assert made["status"] == "succeeded" and made["amount"] == 700
    first = deliver(
        gql, alpha, keys, charge_refunded(payment, made, event_id="evt_charge_refunded")
    )
    assert first == {"received": True, "duplicate": False}
    # The same refund again: a replay, another event naming it, a late `pending` report of it.
    assert deliver(
        gql, alpha, keys, charge_refunded(payment, made, event_id="evt_charge_refunded")
    )["duplicate"]
    deliver(gql, alpha, keys, event("refund.updated", made))
    deliver(gql, alpha, keys, event("refund.updated", {**made, "status": "pending"}))
    assert snapshot(alpha, payment) == {
        "amount_refunded": Decimal("7.00"),
        "order_status": "partially_refunded",
        "order_refunded": Decimal("7.00"),
        "order_refunds": 1,
        "stripe_refunds": {made["id"]: "succeeded"},
    }
    with tenant_context(alpha.tenant):
        row = StripeRefund.objects.select_related("order_refund").get()
        assert row.from_dashboard and row.order_refund.amount == Decimal("7.00")
        assert row.order_refund.reason == webhooks.DASHBOARD_REASON
        assert (
            OrderEvent.objects.get(order_id=payment.order_id, type="refunded").actor_email
            == "Stripe webhook"
        )
        assert AuditEntry.objects.filter(action="payment.refund_record").count() == 1
        assert AuditEntry.objects.filter(action="refund.create").count() == 1
        outcomes = sorted(WebhookEvent.objects.values_list("outcome", flat=True))
    assert outcomes == ["applied", "stale", "stale"]


def test_a_refund_made_through_us_is_not_recorded_again_by_its_webhooks(gql, alpha, keys, payment):
    ours = through_api(alpha, payment, "10.00")
    (in_stripe,) = stripe_refunds(keys, payment)
    assert (in_stripe.id, in_stripe.amount) == (ours.stripe_id, 1000)
    deliver(gql, alpha, keys, charge_refunded(payment, in_stripe.to_dict()))
    deliver(gql, alpha, keys, event("refund.updated", in_stripe.to_dict()))
    assert snapshot(alpha, payment) == {
        "amount_refunded": Decimal("10.00"),
        "order_status": "partially_refunded",
        "order_refunded": Decimal("10.00"),
        "order_refunds": 1,
        "stripe_refunds": {ours.stripe_id: "succeeded"},
    }


def test_a_failed_refund_is_taken_off_and_late_reports_never_move_it_back(
    gql, alpha, keys, payment
):
    ours = through_api(alpha, payment, "10.00")
    failed = refund_object(
        ours.stripe_id, payment, 1000, "failed", failure_reason="expired_or_canceled_card"
    )
    assert deliver(gql, alpha, keys, event("refund.updated", failed))["duplicate"] is False
    # Earlier states delivered late: pending, then succeeded (charge.refunded).
    deliver(
        gql,
        alpha,
        keys,
        event("refund.updated", refund_object(ours.stripe_id, payment, 1000, "pending")),
    )
    deliver(
        gql,
        alpha,
        keys,
        charge_refunded(payment, refund_object(ours.stripe_id, payment, 1000, "succeeded")),
    )
    state = snapshot(alpha, payment)
    assert state["stripe_refunds"] == {ours.stripe_id: "failed"}
    assert state["amount_refunded"] == Decimal("0.00")
    # The order keeps its refund record (no way back from refunded) and says it failed, once.
    assert (state["order_refunds"], state["order_refunded"]) == (1, Decimal("10.00"))
    with tenant_context(alpha.tenant):
        (failure,) = OrderEvent.objects.filter(order_id=payment.order_id, type="refund_failed")
        assert (
            failure.data["stripeRefund"] == ours.stripe_id
            and failure.data["reason"] == "expired_or_canceled_card"
        )
        assert list(
            AuditEntry.objects.filter(action="payment.refund_update")
            .order_by("id")
            .values_list("changes", flat=True)
        ) == [
            {
                "status": ["requested", "succeeded"],
                "stripeId": ours.stripe_id,
            },  # Stripe's answer to refundCreate
            {"status": ["succeeded", "failed"], "failureReason": "expired_or_canceled_card"},
        ]
        assert sorted(WebhookEvent.objects.values_list("outcome", flat=True)) == [
            "applied",
            "stale",
            "stale",
        ]


def test_out_of_order_reports_of_a_dashboard_refund_end_in_its_latest_state(
    gql, alpha, keys, payment
):
    made = (
        keys.api()
        .v1.refunds.create(params={"payment_intent": payment.stripe_id, "amount": 4500})
        .to_dict()
    )
    deliver(gql, alpha, keys, event("refund.updated", made))  # succeeded, first to arrive
    deliver(
        gql, alpha, keys, charge_refunded(payment, {**made, "status": "pending"})
    )  # sent earlier
    assert snapshot(alpha, payment) == {
        "amount_refunded": Decimal("45.00"),
        "order_status": "refunded",
        "order_refunded": Decimal("45.00"),
        "order_refunds": 1,
        "stripe_refunds": {made["id"]: "succeeded"},
    }


def test_a_dashboard_refund_first_seen_failed_refunds_nothing(gql, alpha, keys, payment):
    failed = refund_object(
        "re_failed_in_dashboard", payment, 500, "failed", failure_reason="unknown"
    )
    deliver(gql, alpha, keys, event("refund.updated", failed))
    assert snapshot(alpha, payment) == {
        "amount_refunded": Decimal("0.00"),
        "order_status": "paid",
        "order_refunded": Decimal("0.00"),
        "order_refunds": 0,
        "stripe_refunds": {"re_failed_in_dashboard": "failed"},
    }


def test_a_dashboard_refund_the_order_cannot_take_is_kept_and_noted(gql, alpha, keys, payment):
    with tenant_context(alpha.tenant):  # the order was refunded in full by hand already
        shop_refund = {
            "actor": shop.actor(alpha),
            "order_id": payment.order_id,
            "amount": Decimal("45.00"),
        }
        from apps.orders import services as orders

        orders.create_refund(**shop_refund)
    made = (
        keys.api()
        .v1.refunds.create(params={"payment_intent": payment.stripe_id, "amount": 300})
        .to_dict()
    )
    deliver(gql, alpha, keys, event("refund.updated", made))
    state = snapshot(alpha, payment)
    assert (state["order_refunds"], state["order_refunded"], state["amount_refunded"]) == (
        1,
        Decimal("45.00"),
        Decimal("3.00"),
    )
    with tenant_context(alpha.tenant):
        assert StripeRefund.objects.get().order_refund is None
        assert (
            OrderEvent.objects.filter(
                order_id=payment.order_id, type="stripe_refund_unmatched"
            ).count()
            == 1
        )


def test_a_dispute_marks_the_payment_once(gql, alpha, keys, payment):
    dispute = {
        "id": "dp_test_1",
        "object": "dispute",
        "amount": 4500,
        "currency": "usd",
        "reason": "fraudulent",
        "status": "needs_response",
        "charge": "ch_test",
        "payment_intent": payment.stripe_id,
    }
    body = event("charge.dispute.created", dispute, event_id="evt_dispute")
    assert deliver(gql, alpha, keys, body)["duplicate"] is False
    assert deliver(gql, alpha, keys, body)["duplicate"] is True
    deliver(
        gql, alpha, keys, event("charge.dispute.created", dispute)
    )  # another delivery id, same dispute
    with tenant_context(alpha.tenant):
        row = Payment.objects.select_related("order").get(pk=payment.pk)
        (disputed,) = OrderEvent.objects.filter(order_id=payment.order_id, type="disputed")
        audited = AuditEntry.objects.filter(action="payment.dispute").count()
        outcomes = sorted(WebhookEvent.objects.values_list("outcome", flat=True))
    assert (row.dispute_id, row.dispute_reason, row.status, row.order.status) == (
        "dp_test_1",
        "fraudulent",
        "succeeded",
        "paid",
    )
    assert row.disputed_at is not None
    assert disputed.data == {"dispute": "dp_test_1", "reason": "fraudulent", "amount": "45.00"}
    assert disputed.actor_email == "Stripe webhook" and audited == 1
    assert outcomes == ["applied", "stale"]


def test_refund_events_for_payments_we_do_not_have_are_stored_and_change_nothing(
    gql, alpha, keys, payment
):
    stranger = {
        "id": "re_unknown",
        "object": "refund",
        "amount": 100,
        "currency": "usd",
        "status": "succeeded",
        "payment_intent": "pi_not_ours",
    }
    deliver(gql, alpha, keys, event("refund.updated", stranger))
    deliver(
        gql,
        alpha,
        keys,
        event("charge.dispute.created", {"id": "dp_x", "payment_intent": "pi_not_ours"}),
    )
    foreign = refund_object("re_foreign", payment, 100, "succeeded", metadata={"tenant": "beta"})
    deliver(gql, alpha, keys, event("refund.updated", foreign))
    with tenant_context(alpha.tenant):
        assert sorted(WebhookEvent.objects.values_list("outcome", flat=True)) == [
            "foreign",
            "unknown_payment",
            "unknown_payment",
        ]
        assert not StripeRefund.objects.exists()
        assert Payment.objects.get(pk=payment.pk).dispute_id == ""


def test_a_forged_refund_event_is_refused_and_writes_nothing(gql, alpha, keys, payment):
    made = (
        keys.api()
        .v1.refunds.create(params={"payment_intent": payment.stripe_id, "amount": 700})
        .to_dict()
    )
    body = charge_refunded(payment, made)
    response = post_webhook(gql, alpha, body, sign(body, "whsec_not_the_shops"))
    assert response.status_code == 400
    with tenant_context(alpha.tenant):
        assert not WebhookEvent.objects.exists() and not StripeRefund.objects.exists()
        assert Order.objects.get(pk=payment.order_id).status == "paid"


@pytest.mark.parametrize("kind", ["refund.created", "charge.refund.updated"])
def test_the_other_refund_events_record_a_dashboard_refund_too(gql, alpha, keys, payment, kind):
    made = (
        keys.api()
        .v1.refunds.create(params={"payment_intent": payment.stripe_id, "amount": 250})
        .to_dict()
    )
    deliver(gql, alpha, keys, event(kind, made))
    deliver(gql, alpha, keys, event(kind, made))
    state = snapshot(alpha, payment)
    assert (state["order_refunds"], state["amount_refunded"], state["stripe_refunds"]) == (
        1,
        Decimal("2.50"),
        {made["id"]: "succeeded"},
    )
