"""`refundCreate` of an order paid through Stripe, through the API against localstripe: the order
refund and the Stripe refund together (amounts in minor units there), a retried request refunds
nothing twice, never more than is left, role checks, audit entries, and the payment's refunds on
the Payment node."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEntry
from apps.orders.models import Refund
from apps.payments import services
from apps.payments.models import Payment, StripeRefund
from tests.apps.orders import shop
from tests.apps.orders.shop import staff
from tests.apps.payments.fixtures import configure
from tests.apps.payments.test_refunds import paid_order, stripe_refunds
from tests.conftest import gid, token_for

ERRORS = "userErrors { field message code }"
REFUND = f"""mutation($input: RefundCreateInput!) {{ refundCreate(input: $input) {{
  refund {{ id amount {{ amount }} lines {{ quantity }}
    stripeRefund {{ stripeId status fromDashboard amount {{ amount currency }} orderRefund {{ id }} }} }}
  order {{ status refundedTotal {{ amount }} }}
  {ERRORS} }} }}"""
PAYMENT = """query($id: ID!) { node(id: $id) { ... on Payment { disputeId disputedAt amountRefunded { amount }
  stripeRefunds { stripeId status amount { amount } orderRefund { amount { amount } } } } } }"""


@pytest.fixture
def keys(alpha, stripe_api):
    return configure(alpha)


@pytest.fixture
def payment(alpha, keys) -> Payment:
    return paid_order(alpha, keys)  # 45.00: 2 x 20.00 and 5.00 shipping


def refund(gql, fixture, payment: Payment, token: str | None = None, **given):
    """refundCreate's payload, with its Stripe refund and what the payment now has refunded."""
    response = gql.post(
        REFUND,
        {"input": {"order": gid(fixture, "Order", payment.order_id), **given}},
        host=fixture.host,
        token=token or staff(fixture),
    )
    if not response.data:
        return response
    result = dict(response.data["refundCreate"])
    result["stripeRefund"] = (result["refund"] or {}).get("stripeRefund")
    with tenant_context(fixture.tenant):
        refunded = Payment.objects.get(pk=payment.pk).amount_refunded
    result["payment"] = {"amountRefunded": {"amount": str(refunded)}}
    return result


def written(fixture) -> tuple[int, int, int]:
    with tenant_context(fixture.tenant):
        return (
            Refund.objects.count(),
            StripeRefund.objects.count(),
            AuditEntry.objects.filter(
                action__in=["refund.create", "payment.refund_create"]
            ).count(),
        )


def test_a_partial_refund_by_amount_refunds_in_stripe_in_minor_units(gql, alpha, keys, payment):
    result = refund(gql, alpha, payment, amount="12.34", reason="scratched")
    assert result["userErrors"] == []
    assert (
        result["stripeRefund"]["status"] == "SUCCEEDED"
        and result["stripeRefund"]["fromDashboard"] is False
    )
    assert result["stripeRefund"]["amount"] == {"amount": "12.34", "currency": "USD"}
    assert result["stripeRefund"]["orderRefund"]["id"] == result["refund"]["id"]
    assert result["payment"]["amountRefunded"]["amount"] == "12.34"
    assert result["order"] == {"status": "PARTIALLY_REFUNDED", "refundedTotal": {"amount": "12.34"}}
    (in_stripe,) = stripe_refunds(keys, payment)
    assert (in_stripe.id, in_stripe.amount, in_stripe.currency) == (
        result["stripeRefund"]["stripeId"],
        1234,
        "usd",
    )
    with tenant_context(alpha.tenant):
        order_refund = Refund.objects.select_related("order").get()
        entry = AuditEntry.objects.get(action="payment.refund_create")
        answered = AuditEntry.objects.get(action="payment.refund_update")
        row = StripeRefund.objects.get()
    assert in_stripe.metadata.to_dict() == {
        "tenant": alpha.tenant.schema_name,
        "stripe_refund": str(row.pk),
        "order_id": str(order_refund.order_id),
        "order_refund_id": str(order_refund.pk),
    }
    # The refund is recorded before Stripe is asked, and Stripe's answer after (issue 15).
    assert entry.changes == {
        "order": order_refund.order.number,
        "payment": payment.pk,
        "amount": "12.34",
        "orderRefund": order_refund.pk,
    }
    assert answered.changes == {"status": ["requested", "succeeded"], "stripeId": in_stripe.id}
    assert entry.actor_email == answered.actor_email == alpha.email("staff")
    assert (row.attempts, row.claimed_until) == (1, None)  # one call, and the lease given back
    assert written(alpha) == (1, 1, 2)


def test_refunding_every_line_and_then_shipping_refunds_the_whole_payment(
    gql, alpha, keys, payment
):
    with tenant_context(alpha.tenant):
        (line,) = Payment.objects.get(pk=payment.pk).order.lines.all()
    by_lines = refund(
        gql,
        alpha,
        payment,
        lines=[{"line": gid(alpha, "OrderLine", line.pk), "quantity": 2}],
        restock=True,
    )
    assert by_lines["userErrors"] == [] and by_lines["refund"]["amount"]["amount"] == "40.00"
    assert by_lines["refund"]["lines"] == [{"quantity": 2}]
    rest = refund(gql, alpha, payment, amount="5.00", reason="shipping")
    assert rest["order"] == {"status": "REFUNDED", "refundedTotal": {"amount": "45.00"}}
    assert rest["payment"]["amountRefunded"]["amount"] == "45.00"
    assert sorted(r.amount for r in stripe_refunds(keys, payment)) == [500, 4000]
    node = gql.post(
        PAYMENT, {"id": gid(alpha, "Payment", payment.pk)}, host=alpha.host, token=staff(alpha)
    ).data["node"]
    assert [
        (r["amount"]["amount"], r["orderRefund"]["amount"]["amount"]) for r in node["stripeRefunds"]
    ] == [("40.00", "40.00"), ("5.00", "5.00")]
    assert node["disputeId"] == "" and node["disputedAt"] is None


def test_a_retried_request_with_its_key_refunds_nothing_twice(gql, alpha, keys, payment):
    first = refund(gql, alpha, payment, amount="10.00", requestKey="req-42")
    again = refund(gql, alpha, payment, amount="10.00", requestKey="req-42")
    assert first["userErrors"] == again["userErrors"] == []
    assert again["stripeRefund"]["stripeId"] == first["stripeRefund"]["stripeId"]
    assert again["refund"]["id"] == first["refund"]["id"]
    assert again["payment"]["amountRefunded"]["amount"] == "10.00"
    assert len(stripe_refunds(keys, payment)) == 1
    assert written(alpha) == (1, 1, 2)
    other = paid_order(alpha, keys)
    reused = refund(gql, alpha, other, amount="1.00", requestKey="req-42")
    assert [e["code"] for e in reused["userErrors"]] == ["KEY_REUSED"]
    assert stripe_refunds(keys, other) == []


def test_more_than_is_left_is_refused_and_nothing_is_written(gql, alpha, keys, payment):
    assert refund(gql, alpha, payment, amount="40.00")["userErrors"] == []
    over = refund(gql, alpha, payment, amount="5.01")
    assert over["userErrors"] == [
        {
            "field": "amount",
            "code": "OVER_REFUND",
            "message": "This refund (5.01) is more than is left to refund (5.00).",
        }
    ]
    assert len(stripe_refunds(keys, payment)) == 1
    assert written(alpha) == (1, 1, 2)


def test_never_more_than_is_left_of_the_stripe_payment(gql, alpha, keys, payment):
    with tenant_context(alpha.tenant):  # 40.00 refunded in Stripe that the order could not record
        Payment.objects.filter(pk=payment.pk).update(amount_refunded=Decimal("40.00"))
    over = refund(gql, alpha, payment, amount="10.00")
    assert [(e["field"], e["code"]) for e in over["userErrors"]] == [("amount", "OVER_REFUND")]
    assert "Stripe payment (5.00)" in over["userErrors"][0]["message"]
    assert stripe_refunds(keys, payment) == []
    assert written(alpha) == (0, 0, 0)


def test_an_order_paid_otherwise_is_refunded_outside_stripe(gql, alpha, keys):
    with tenant_context(alpha.tenant):
        pending = shop.place(alpha, [(shop.variant("9.00"), 1)])
        manual = shop.place(alpha, [(shop.variant("9.00"), 1)])
        services.mark_paid(actor=shop.actor(alpha), order_id=manual.pk)

    def refund_of(order_id: int) -> dict:
        return gql.post(
            REFUND,
            {
                "input": {
                    "order": gid(alpha, "Order", order_id),
                    "amount": "1.00",
                    "requestKey": "m-1",
                }
            },
            host=alpha.host,
            token=staff(alpha),
        ).data["refundCreate"]

    assert [(e["field"], e["code"]) for e in refund_of(pending.pk)["userErrors"]] == [
        ("order", "NOT_REFUNDABLE")
    ]
    assert [e["field"] for e in refund_of(999_999)["userErrors"]] == ["order"]
    done = refund_of(manual.pk)
    assert done["userErrors"] == [] and done["refund"]["stripeRefund"] is None
    assert (
        refund_of(manual.pk)["refund"]["id"] == done["refund"]["id"]
    )  # the key holds outside Stripe too
    assert written(alpha) == (1, 0, 1)


def test_bad_input_is_refused_before_stripe_is_asked(gql, alpha, keys, payment):
    for given, field in (
        ({"amount": "-1"}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({}, "lines"),
        ({"amount": "1.00", "requestKey": "k" * 256}, "requestKey"),
    ):
        result = refund(gql, alpha, payment, **given)
        assert [e["field"] for e in result["userErrors"]] == [field], given
    assert stripe_refunds(keys, payment) == []
    assert written(alpha) == (0, 0, 0)


def test_stripe_switched_off_refuses_the_refund(gql, alpha, keys, payment):
    with tenant_context(alpha.tenant):
        services.update_settings(actor=shop.actor(alpha, "owner"), stripe_enabled=False)
    result = refund(gql, alpha, payment, amount="1.00")
    assert [e["code"] for e in result["userErrors"]] == ["PROVIDER_DISABLED"]
    assert written(alpha) == (0, 0, 0)


def test_staff_and_up_refund_viewers_and_analysts_cannot_nor_another_tenant(
    gql, alpha, beta, keys, payment
):
    for role in ("viewer", "analyst"):
        response = refund(
            gql, alpha, payment, token=token_for(alpha.email(role), alpha.tenant), amount="1.00"
        )
        assert response.codes == ["FORBIDDEN"], role
    foreign = gql.post(
        REFUND,
        {"input": {"order": gid(alpha, "Order", payment.order_id), "amount": "1.00"}},
        host=beta.host,
        token=staff(beta),
    )
    assert foreign.data["refundCreate"]["userErrors"][0]["field"] == "order"
    assert written(alpha) == (0, 0, 0)
    for role in ("owner", "admin"):
        done = refund(
            gql, alpha, payment, token=token_for(alpha.email(role), alpha.tenant), amount="1.00"
        )
        assert done["userErrors"] == [], role
    assert written(alpha) == (2, 2, 4)


LIST = """query { payments(first: 50) { edges { node { id disputeId amountRefunded { amount }
  stripeRefunds { stripeId status amount { amount } orderRefund { amount { amount } lines { quantity } } } } } } }"""


def _refunded_payments(fixture, count: int) -> None:
    """Manual payments with two Stripe refund rows each (written directly: the list is read)."""
    from apps.orders import services as orders

    with tenant_context(fixture.tenant):
        variant = shop.variant("12.00", stock=count)
        for _ in range(count):
            order = shop.place(fixture, [(variant, 1)])
            paid = services.mark_paid(actor=shop.actor(fixture), order_id=order.pk)
            for amount in ("1.00", "2.00"):
                made = orders.create_refund(
                    actor=shop.actor(fixture), order_id=order.pk, amount=Decimal(amount)
                )
                StripeRefund.objects.create(
                    payment=paid,
                    order_refund=made,
                    stripe_id=f"re_{made.pk}",
                    amount=made.amount,
                    currency="USD",
                    status="succeeded",
                )


def test_the_payments_list_with_refunds_takes_constant_queries(gql, alpha, stripe_api):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    configure(alpha, stripe_enabled=False, manual_enabled=True)
    viewer = token_for(alpha.email("viewer"), alpha.tenant)
    counts = []
    for extra in (1, 4):
        _refunded_payments(alpha, extra)
        with CaptureQueriesContext(connection) as queries:
            response = gql.post(LIST, host=alpha.host, token=viewer)
        assert response.errors == []
        edges = response.data["payments"]["edges"]
        assert all(len(e["node"]["stripeRefunds"]) == 2 for e in edges)
        counts.append(len(queries))
    assert len(edges) == 5 and counts[0] == counts[1], counts
    print("payments list with refunds: queries", counts)


ORDER_REFUND = """mutation($input: RefundCreateInput!) { refundCreate(input: $input) {
  refund { amount { amount } } order { status } userErrors { code } } }"""
ORDER_CANCEL = (
    "mutation($id: ID!) { orderCancel(id: $id) { order { status } userErrors { field code } } }"
)


def test_the_orders_refund_create_refunds_a_stripe_paid_order_through_stripe(
    gql, alpha, keys, payment
):
    response = gql.post(
        ORDER_REFUND,
        {"input": {"order": gid(alpha, "Order", payment.order_id), "amount": "5.00"}},
        host=alpha.host,
        token=staff(alpha),
    )
    assert response.data["refundCreate"]["userErrors"] == []
    assert response.data["refundCreate"]["order"]["status"] == "PARTIALLY_REFUNDED"
    (in_stripe,) = stripe_refunds(keys, payment)
    assert in_stripe.amount == 500
    with tenant_context(alpha.tenant):
        assert StripeRefund.objects.get().stripe_id == in_stripe.id
        assert Payment.objects.get(pk=payment.pk).amount_refunded == Decimal("5.00")


def test_a_stripe_paid_order_is_not_cancelled_while_stripe_holds_the_money(
    gql, alpha, keys, payment
):
    response = gql.post(
        ORDER_CANCEL,
        {"id": gid(alpha, "Order", payment.order_id)},
        host=alpha.host,
        token=staff(alpha),
    )
    assert response.data["orderCancel"] == {
        "order": None,
        "userErrors": [{"field": "id", "code": "REFUND_THROUGH_STRIPE"}],
    }
    with tenant_context(alpha.tenant):
        assert Refund.objects.count() == 0
        assert Payment.objects.get(pk=payment.pk).order.status == "paid"
