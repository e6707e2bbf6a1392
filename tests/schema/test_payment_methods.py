"""Saved payment methods through the API against localstripe: list, attach, detach and set
default, userErrors for Stripe's refusals, roles, audit entries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEntry
from apps.customers.models import Customer
from apps.payments.models import StripeCustomer
from tests.apps.orders.shop import staff
from tests.apps.payments.test_methods import card
from tests.conftest import gid, token_for

METHOD = "id type isDefault brand last4 expMonth expYear"
LIST = f"query($c: ID!) {{ paymentMethods(customer: $c) {{ {METHOD} }} }}"


def change(name: str) -> str:
    return f"""mutation($c: ID!, $m: String!) {{ {name}(customer: $c, paymentMethod: $m) {{
      paymentMethod {{ {METHOD} }} userErrors {{ field message code }} }} }}"""


@pytest.fixture
def ann(alpha):
    with tenant_context(alpha.tenant):
        return Customer.objects.create(email="ann@example.com")


def _post(gql, alpha, name, customer, method, role="staff"):
    response = gql.post(
        change(name),
        {"c": gid(alpha, "Customer", customer.pk), "m": method},
        host=alpha.host,
        token=token_for(alpha.email(role), alpha.tenant),
    )
    assert response.errors == [], response.body
    return response.data[name]


def test_attach_set_default_list_and_detach(gql, alpha, alpha_stripe, ann):
    visa, mastercard = card(alpha_stripe), card(alpha_stripe, "5555555555554444")
    attached = _post(gql, alpha, "paymentMethodAttach", ann, visa)
    assert attached == {
        "userErrors": [],
        "paymentMethod": {
            "id": visa,
            "type": "card",
            "isDefault": False,
            "brand": "visa",
            "last4": "4242",
            "expMonth": 12,
            "expYear": 2040,
        },
    }
    _post(gql, alpha, "paymentMethodAttach", ann, mastercard)
    made_default = _post(gql, alpha, "paymentMethodSetDefault", ann, mastercard)
    assert made_default["paymentMethod"]["isDefault"] is True
    with CaptureQueriesContext(connection) as queries:
        listed = gql.post(
            LIST, {"c": gid(alpha, "Customer", ann.pk)}, host=alpha.host, token=staff(alpha)
        )
    assert sorted((m["last4"], m["isDefault"]) for m in listed.data["paymentMethods"]) == [
        ("4242", False),
        ("4444", True),
    ]
    assert (
        len(
            [
                q
                for q in queries.captured_queries
                if "payments_" in q["sql"] or "customers_" in q["sql"]
            ]
        )
        == 3
    )
    detached = _post(gql, alpha, "paymentMethodDetach", ann, mastercard)
    assert detached["paymentMethod"] == {**made_default["paymentMethod"], "isDefault": False}
    again = gql.post(
        LIST, {"c": gid(alpha, "Customer", ann.pk)}, host=alpha.host, token=staff(alpha)
    )
    assert [(m["id"], m["isDefault"]) for m in again.data["paymentMethods"]] == [(visa, False)]
    with tenant_context(alpha.tenant):
        row = StripeCustomer.objects.get(customer=ann)
        entries = list(
            AuditEntry.objects.filter(
                object_id=str(row.pk), action__regex=r"^(stripe_customer|payment_method)\."
            ).values_list("action", "actor_email")
        )
    assert sorted(entries) == sorted(
        [
            ("stripe_customer.create", alpha.email("staff")),
            ("payment_method.attach", alpha.email("staff")),
            ("payment_method.attach", alpha.email("staff")),
            ("payment_method.set_default", alpha.email("staff")),
            ("payment_method.detach", alpha.email("staff")),
        ]
    )


def test_stripe_refusals_are_user_errors_and_write_nothing(gql, alpha, alpha_stripe, ann):
    with tenant_context(alpha.tenant):
        bob = Customer.objects.create(email="bob@example.com")
    theirs = card(alpha_stripe)
    _post(gql, alpha, "paymentMethodAttach", bob, theirs)
    with tenant_context(alpha.tenant):
        before_id = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    cases = [
        ("paymentMethodAttach", theirs, "paymentMethod", "ATTACHED_ELSEWHERE"),
        ("paymentMethodSetDefault", theirs, "paymentMethod", "NOT_ATTACHED"),
        ("paymentMethodDetach", theirs, "paymentMethod", "NOT_ATTACHED"),
        ("paymentMethodAttach", "pm_unknown123", "paymentMethod", "NOT_FOUND"),
        ("paymentMethodAttach", "card_123", "paymentMethod", "INVALID"),
        (
            "paymentMethodAttach",
            card(alpha_stripe, "4000000000000002"),
            None,
            "PROVIDER_ERROR",
        ),  # declined
    ]
    for name, method, field, code in cases:
        payload = _post(gql, alpha, name, ann, method)
        assert payload["paymentMethod"] is None
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)], (
            name,
            method,
        )
    with tenant_context(alpha.tenant):
        # The declined attach made Ann's Stripe Customer first: it is recorded (it exists at
        # Stripe), and nothing else is written.
        assert list(
            AuditEntry.objects.filter(pk__gt=before_id).values_list("action", flat=True)
        ) == ["stripe_customer.create"]
        assert StripeCustomer.objects.filter(customer=ann).count() == 1


def test_an_unknown_customer_is_not_found(gql, alpha, alpha_stripe):
    payload = _post(
        gql, alpha, "paymentMethodAttach", type("Gone", (), {"pk": 987654})(), "pm_card_visa"
    )
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [("customer", "NOT_FOUND")]
    listed = gql.post(
        LIST, {"c": gid(alpha, "Customer", 987654)}, host=alpha.host, token=staff(alpha)
    )
    assert listed.codes == ["NOT_FOUND"]


def test_without_stripe_the_list_is_refused_clearly(gql, alpha, stripe_api, ann):
    from tests.apps.payments.fixtures import configure

    keys = configure(alpha)
    _post(gql, alpha, "paymentMethodAttach", ann, card(keys))
    configure(alpha, stripe_enabled=False)
    listed = gql.post(
        LIST, {"c": gid(alpha, "Customer", ann.pk)}, host=alpha.host, token=staff(alpha)
    )
    assert listed.codes == ["BAD_REQUEST"] and "not enabled" in listed.errors[0]["message"]


@pytest.mark.parametrize("role", ["analyst", "viewer"])
def test_only_staff_and_above_see_or_change_methods(gql, alpha, alpha_stripe, ann, role):
    token = token_for(alpha.email(role), alpha.tenant)
    assert gql.post(
        LIST, {"c": gid(alpha, "Customer", ann.pk)}, host=alpha.host, token=token
    ).codes == ["FORBIDDEN"]
    for name in ("paymentMethodAttach", "paymentMethodDetach", "paymentMethodSetDefault"):
        response = gql.post(
            change(name),
            {"c": gid(alpha, "Customer", ann.pk), "m": "pm_card_visa"},
            host=alpha.host,
            token=token,
        )
        assert response.codes == ["FORBIDDEN"], name
    with tenant_context(alpha.tenant):
        assert not StripeCustomer.objects.exists()


def test_another_tenants_customer_is_not_found(gql, alpha, beta, alpha_stripe):
    with tenant_context(beta.tenant):
        theirs = Customer.objects.create(email="zed@example.com")
    with tenant_context(alpha.tenant):
        assert not Customer.objects.filter(pk=theirs.pk).exists()
    payload = _post(gql, alpha, "paymentMethodAttach", theirs, card(alpha_stripe))
    assert [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"]
