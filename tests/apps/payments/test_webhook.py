"""The Stripe webhook over HTTP on the tenant host, signed with Stripe's scheme: valid, forged,
stale, replayed, out of order, unknown, another tenant's, and an internal failure."""

from __future__ import annotations

import json
import logging
import time
from types import SimpleNamespace

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEntry
from apps.orders.models import Order, OrderEvent
from apps.payments.models import Payment, WebhookEvent
from tests.apps.orders import shop
from tests.apps.payments.fixtures import configure, event, post_webhook, sign


@pytest.fixture
def keys(alpha, stripe_api):
    return configure(alpha)


@pytest.fixture
def payment(alpha, keys) -> Payment:
    """A pending Stripe payment (a real intent in localstripe) of a pending 25.00 order."""
    from apps.payments import services

    with tenant_context(alpha.tenant):
        order = shop.place(alpha, [(shop.variant("25.00", stock=3), 1)])
        made, _ = services.create_intent(actor=shop.actor(alpha), order_id=order.pk)
    return made


def intent(payment: Payment, tenant, status: str = "succeeded", **extra) -> dict:
    return {
        "id": payment.stripe_id,
        "object": "payment_intent",
        "amount": 2500,
        "currency": "usd",
        "status": status,
        "metadata": {"tenant": tenant.schema_name, "order_id": str(payment.order_id)},
        **extra,
    }


DECLINED = {
    "last_payment_error": {
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
    }
}


def state(fixture, payment: Payment) -> tuple[str, str, int, int]:
    """(payment status, order status, webhook events stored, status changes audited)."""
    with tenant_context(fixture.tenant):
        row = Payment.objects.select_related("order").get(pk=payment.pk)
        return (
            row.status,
            row.order.status,
            WebhookEvent.objects.count(),
            AuditEntry.objects.filter(action="payment.update_status").count(),
        )


def test_a_signed_success_pays_the_order_once(gql, alpha, keys, payment, caplog):
    caplog.set_level(logging.DEBUG)
    body = event("payment_intent.succeeded", intent(payment, alpha.tenant), event_id="evt_paid_1")
    response = post_webhook(gql, alpha, body, sign(body, keys.webhook_secret))
    assert response.status_code == 200 and json.loads(response.content) == {
        "received": True,
        "duplicate": False,
    }
    assert state(alpha, payment) == ("succeeded", "paid", 1, 1)
    with tenant_context(alpha.tenant):
        stored = WebhookEvent.objects.get()
        order_event = OrderEvent.objects.get(order_id=payment.order_id, to_status="paid")
        assert Order.objects.get(pk=payment.order_id).paid_at is not None
    assert (stored.event_id, stored.type, stored.outcome, stored.payment_id) == (
        "evt_paid_1",
        "payment_intent.succeeded",
        "applied",
        payment.pk,
    )
    assert order_event.actor_email == "Stripe webhook"
    assert keys.webhook_secret not in caplog.text and keys.secret_key not in caplog.text


def test_a_replay_is_acknowledged_and_changes_nothing(gql, alpha, keys, payment):
    body = event("payment_intent.succeeded", intent(payment, alpha.tenant), event_id="evt_replayed")
    first = post_webhook(gql, alpha, body, sign(body, keys.webhook_secret))
    again = post_webhook(gql, alpha, body, sign(body, keys.webhook_secret))
    assert first.status_code == again.status_code == 200
    assert json.loads(again.content)["duplicate"] is True
    assert state(alpha, payment) == ("succeeded", "paid", 1, 1)
    with tenant_context(alpha.tenant):
        assert OrderEvent.objects.filter(order_id=payment.order_id, to_status="paid").count() == 1


@pytest.mark.parametrize(
    "forgery", ["wrong secret", "tampered body", "no header", "garbage header", "stale", "no v1"]
)
def test_forged_or_stale_deliveries_are_refused_and_write_nothing(
    gql, alpha, keys, payment, forgery
):
    body = event("payment_intent.succeeded", intent(payment, alpha.tenant))
    signature = sign(body, keys.webhook_secret)
    if forgery == "wrong secret":
        signature = sign(body, "whsec_not_the_shops")
    elif forgery == "tampered body":
        body = body.replace(b'"succeeded"', b'"succeeded" ')
    elif forgery == "no header":
        signature = None
    elif forgery == "garbage header":
        signature = "this is not a signature"
    elif forgery == "stale":  # signed correctly, but 6 minutes ago (tolerance: 5)
        signature = sign(body, keys.webhook_secret, timestamp=int(time.time()) - 360)
    elif forgery == "no v1":
        signature = signature.replace("v1=", "v0=")
    response = post_webhook(gql, alpha, body, signature)
    assert response.status_code == 400
    assert json.loads(response.content)["errors"][0]["extensions"] == {"code": "BAD_REQUEST"}
    assert state(alpha, payment) == ("pending", "pending", 0, 0)


def test_a_recent_timestamp_within_the_tolerance_is_accepted(gql, alpha, keys, payment):
    body = event("payment_intent.succeeded", intent(payment, alpha.tenant))
    response = post_webhook(
        gql, alpha, body, sign(body, keys.webhook_secret, timestamp=int(time.time()) - 240)
    )
    assert response.status_code == 200
    assert state(alpha, payment)[0] == "succeeded"


def test_another_tenants_secret_is_refused_and_its_events_do_not_reach_this_tenant(
    gql, alpha, beta, keys, payment
):
    beta_keys = configure(beta)
    body = event("payment_intent.succeeded", intent(payment, alpha.tenant))
    refused = post_webhook(gql, alpha, body, sign(body, beta_keys.webhook_secret))
    assert refused.status_code == 400
    # Signed for beta and sent to beta: beta has no such payment, and alpha is untouched.
    on_beta = post_webhook(gql, beta, body, sign(body, beta_keys.webhook_secret))
    assert on_beta.status_code == 200
    with tenant_context(beta.tenant):
        assert WebhookEvent.objects.get().outcome == "foreign"
    assert state(alpha, payment) == ("pending", "pending", 0, 0)


def test_a_shop_without_a_webhook_secret_refuses_everything(gql, beta, stripe_api):
    body = event("payment_intent.succeeded", {"id": "pi_nothing"})
    response = post_webhook(gql, beta, body, sign(body, ""))
    assert response.status_code == 400
    with tenant_context(beta.tenant):
        assert not WebhookEvent.objects.exists()


def test_success_then_a_late_failure_stays_succeeded(gql, alpha, keys, payment):
    for kind, extra in (
        ("payment_intent.succeeded", {}),
        ("payment_intent.payment_failed", DECLINED),
    ):
        body = event(kind, intent(payment, alpha.tenant, **extra))
        assert post_webhook(gql, alpha, body, sign(body, keys.webhook_secret)).status_code == 200
    assert state(alpha, payment) == ("succeeded", "paid", 2, 1)
    with tenant_context(alpha.tenant):
        outcomes = list(WebhookEvent.objects.order_by("id").values_list("outcome", flat=True))
        assert Payment.objects.get(pk=payment.pk).failure_code == ""
    assert outcomes == ["applied", "stale"]


def test_failure_then_success_of_a_retry_and_a_late_cancel(gql, alpha, keys, payment):
    events = [
        ("payment_intent.payment_failed", DECLINED),
        ("payment_intent.succeeded", {}),
        ("payment_intent.canceled", {}),
    ]
    for kind, extra in events[:1]:
        body = event(kind, intent(payment, alpha.tenant, status="requires_payment_method", **extra))
        assert post_webhook(gql, alpha, body, sign(body, keys.webhook_secret)).status_code == 200
    with tenant_context(alpha.tenant):
        failed = Payment.objects.get(pk=payment.pk)
    assert (failed.status, failed.failure_code, failed.failure_message) == (
        "failed",
        "insufficient_funds",
        "Your card has insufficient funds.",
    )
    for kind, extra in events[1:]:
        body = event(kind, intent(payment, alpha.tenant, **extra))
        assert post_webhook(gql, alpha, body, sign(body, keys.webhook_secret)).status_code == 200
    assert state(alpha, payment) == ("succeeded", "paid", 3, 2)


def test_a_cancel_leaves_the_order_pending(gql, alpha, keys, payment):
    body = event("payment_intent.canceled", intent(payment, alpha.tenant, status="canceled"))
    assert post_webhook(gql, alpha, body, sign(body, keys.webhook_secret)).status_code == 200
    assert state(alpha, payment) == ("canceled", "pending", 1, 1)


@pytest.mark.parametrize(
    "kind", ["customer.created", "payment_intent.created", "charge.dispute.funds_reinstated"]
)
def test_unknown_types_are_acknowledged_and_stored(gql, alpha, keys, payment, kind):
    body = event(kind, {"id": payment.stripe_id, "object": "whatever"})
    response = post_webhook(gql, alpha, body, sign(body, keys.webhook_secret))
    assert response.status_code == 200
    with tenant_context(alpha.tenant):
        stored = WebhookEvent.objects.get()
    assert (stored.type, stored.outcome) == (kind, "ignored")
    assert state(alpha, payment)[:2] == ("pending", "pending")


def test_an_unknown_payment_intent_is_stored_and_changes_nothing(gql, alpha, keys, payment):
    body = event("payment_intent.succeeded", {"id": "pi_from_elsewhere", "metadata": {}})
    assert post_webhook(gql, alpha, body, sign(body, keys.webhook_secret)).status_code == 200
    with tenant_context(alpha.tenant):
        assert WebhookEvent.objects.get().outcome == "unknown_payment"
    assert state(alpha, payment)[:2] == ("pending", "pending")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"id": 5, "type": "x"}',
        b'{"id": "evt_1"}',
        b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": []}}',
    ],
)
def test_a_signed_body_that_is_not_an_event_is_refused(gql, alpha, keys, payment, body):
    assert post_webhook(gql, alpha, body, sign(body, keys.webhook_secret)).status_code == 400
    assert state(alpha, payment) == ("pending", "pending", 0, 0)


def test_get_is_not_allowed_and_the_platform_host_has_no_webhook(gql, alpha, keys):
    assert gql.get("/webhooks/stripe/", host=alpha.host).status_code == 405
    body = event("payment_intent.succeeded", {"id": "pi_x"})
    platform = SimpleNamespace(host="localhost")
    assert post_webhook(gql, platform, body, sign(body, keys.webhook_secret)).status_code == 404


def test_an_internal_failure_answers_500_and_writes_nothing(gql, alpha, keys, payment):
    """Paying the order fails in the database (a trigger, in this test's transaction only): the
    event is not stored, the payment not moved, so Stripe's retry can apply it later."""
    with tenant_context(alpha.tenant), connection.cursor() as cursor:
        cursor.execute("""
            CREATE FUNCTION refuse_order_update() RETURNS trigger LANGUAGE plpgsql AS
              $$ BEGIN RAISE EXCEPTION 'orders are read-only right now'; END $$;
            CREATE TRIGGER refuse_order_update BEFORE UPDATE ON orders_order
              FOR EACH ROW EXECUTE FUNCTION refuse_order_update();
        """)
    body = event("payment_intent.succeeded", intent(payment, alpha.tenant), event_id="evt_retry_me")
    response = post_webhook(gql, alpha, body, sign(body, keys.webhook_secret))
    assert response.status_code == 500
    assert json.loads(response.content)["errors"][0]["extensions"] == {"code": "INTERNAL"}
    assert b"read-only" not in response.content
    assert state(alpha, payment) == ("pending", "pending", 0, 0)
    with tenant_context(alpha.tenant), connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER refuse_order_update ON orders_order")
    retried = post_webhook(gql, alpha, body, sign(body, keys.webhook_secret))
    assert retried.status_code == 200
    assert state(alpha, payment) == ("succeeded", "paid", 1, 1)


def test_a_success_for_a_cancelled_order_is_flagged_on_the_order(gql, alpha, keys, payment):
    """Money taken for an order that no longer waits for it: recorded, and said on the order."""
    from apps.orders import services as order_services

    with tenant_context(alpha.tenant):
        order_services.cancel_order(
            actor=None, order_id=payment.order_id, restock=True, reason="test"
        )
    body = event(
        "payment_intent.succeeded", intent(payment, alpha.tenant), event_id="evt_late_paid"
    )
    assert post_webhook(gql, alpha, body, sign(body, keys.webhook_secret)).status_code == 200
    assert state(alpha, payment)[:2] == ("succeeded", "cancelled")
    with tenant_context(alpha.tenant):
        assert (
            OrderEvent.objects.filter(order_id=payment.order_id, type="payment_unexpected").count()
            == 1
        )


def test_a_late_failure_does_not_relabel_the_method_of_a_success(gql, alpha, keys, payment):
    paid = event(
        "payment_intent.succeeded",
        intent(payment, alpha.tenant, payment_method_types=["card"]),
        event_id="evt_m_1",
    )
    late = event(
        "payment_intent.payment_failed",
        intent(
            payment,
            alpha.tenant,
            status="requires_payment_method",
            payment_method_types=["sepa_debit"],
            **DECLINED,
        ),
        event_id="evt_m_2",
    )
    for body in (paid, late):
        assert post_webhook(gql, alpha, body, sign(body, keys.webhook_secret)).status_code == 200
    with tenant_context(alpha.tenant):
        assert Payment.objects.get(pk=payment.pk).method_type == "card"


def test_a_replaced_secret_verifies_new_deliveries_and_refuses_the_old_ones(
    gql, alpha, keys, payment
):
    """The secret a process keeps for a tenant is checked by the statement that stores: once the
    owner replaces it (here, as another process would, after this one kept the old one), a
    delivery signed with the old secret stores nothing, and one signed with the new is taken."""
    from apps.payments import services

    first = event("payment_intent.payment_failed", intent(payment, alpha.tenant, **DECLINED))
    assert post_webhook(gql, alpha, first, sign(first, keys.webhook_secret)).status_code == 200
    replaced = "whsec_replaced_0123456789abcdef"
    with tenant_context(alpha.tenant):
        services.update_settings(actor=shop.actor(alpha, "owner"), stripe_webhook_secret=replaced)
    old = event("payment_intent.succeeded", intent(payment, alpha.tenant), event_id="evt_old_key")
    refused = post_webhook(gql, alpha, old, sign(old, keys.webhook_secret))
    assert refused.status_code == 400
    assert state(alpha, payment) == ("failed", "pending", 1, 1)
    new = event("payment_intent.succeeded", intent(payment, alpha.tenant), event_id="evt_new_key")
    assert post_webhook(gql, alpha, new, sign(new, replaced)).status_code == 200
    assert state(alpha, payment) == ("succeeded", "paid", 2, 2)


def test_a_delivery_is_stored_in_one_statement_and_applied_in_one(alpha, keys, payment):
    """What a delivery costs the database, the secret kept from an earlier one: a replay one
    statement, a first delivery two (store, apply), whatever it changes."""
    from django.test.utils import CaptureQueriesContext

    from apps.payments import webhooks

    def statements(body: bytes) -> int:
        with tenant_context(alpha.tenant), CaptureQueriesContext(connection) as queries:
            webhooks.deliver(body=body, signature=sign(body, keys.webhook_secret))
        # Not counted: search_path, and the savepoint that stands for BEGIN/COMMIT in a test.
        control = ("SET ", "SAVEPOINT ", "RELEASE SAVEPOINT ")
        return sum(1 for q in queries.captured_queries if not q["sql"].startswith(control))

    failed = event("payment_intent.payment_failed", intent(payment, alpha.tenant, **DECLINED))
    paid = event("payment_intent.succeeded", intent(payment, alpha.tenant))
    statements(event("customer.created", {"id": "cus_1"}))  # the secret is kept from here on
    assert [statements(failed), statements(paid), statements(paid), statements(failed)] == [
        2,
        2,
        1,
        1,
    ]
    assert state(alpha, payment) == ("succeeded", "paid", 3, 2)


def test_what_a_success_and_a_failure_record_is_what_the_services_record(gql, alpha, keys, payment):
    """The statement that applies intent events writes what apps.payments.state and
    apps.orders.services write: the payment's failure and method, the order paid and stamped,
    its OrderEvent, and the two audited status changes (the payment's first) with the request id."""
    failed = event(
        "payment_intent.payment_failed",
        intent(payment, alpha.tenant, payment_method_types=["sepa_debit"], **DECLINED),
    )
    paid = event(
        "payment_intent.succeeded",
        intent(payment, alpha.tenant, payment_method={"id": "pm_1", "type": "card"}),
    )
    for body in (failed, paid):
        assert post_webhook(gql, alpha, body, sign(body, keys.webhook_secret)).status_code == 200
    with tenant_context(alpha.tenant):
        row = Payment.objects.select_related("order").get(pk=payment.pk)
        audits = list(
            AuditEntry.objects.filter(
                action__in=["payment.update_status", "order.update_status"]
            ).order_by("id")
        )
        order_events = list(OrderEvent.objects.filter(order_id=row.order_id, to_status="paid"))
    assert (row.status, row.failure_code, row.failure_message, row.method_type) == (
        "succeeded",
        "insufficient_funds",
        "Your card has insufficient funds.",
        "card",
    )
    assert row.order.status == "paid" and row.order.paid_at is not None
    assert row.order.updated >= row.order.paid_at
    assert [(e.type, e.from_status, e.actor_email, e.data) for e in order_events] == [
        ("status_changed", "pending", "Stripe webhook", {})
    ]
    assert [
        (a.action, a.object_type, a.object_id, a.changes, a.actor_id, a.actor_email) for a in audits
    ] == [
        (
            "payment.update_status",
            "Payment",
            str(payment.pk),
            {"status": ["pending", "failed"], "failureCode": "insufficient_funds"},
            None,
            "Stripe webhook",
        ),
        (
            "payment.update_status",
            "Payment",
            str(payment.pk),
            {"status": ["failed", "succeeded"]},
            None,
            "Stripe webhook",
        ),
        (
            "order.update_status",
            "Order",
            str(row.order_id),
            {"status": ["pending", "paid"]},
            None,
            "Stripe webhook",
        ),
    ]
    assert all(a.request_id for a in audits)
