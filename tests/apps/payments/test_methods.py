"""Saved payment methods through the services, against localstripe: the Stripe Customer made once
and only when needed, a method of another customer refused, the default cleared on detach, and
the method type noted from Stripe's events."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEntry
from apps.common.errors import NotFound, UserError
from apps.customers.models import Customer
from apps.payments import methods
from apps.payments.models import Payment, StripeCustomer
from tests.apps.orders import shop


def card(keys, number: str = "4242424242424242") -> str:
    """A new, unattached card payment method in localstripe."""
    return (
        keys.api()
        .v1.payment_methods.create(
            params={
                "type": "card",
                "card": {"number": number, "exp_month": 12, "exp_year": 2040, "cvc": "123"},
            }
        )
        .id
    )


@pytest.fixture
def buyers(alpha):
    with tenant_context(alpha.tenant):
        return (
            Customer.objects.create(email="ann@example.com"),
            Customer.objects.create(email="bob@example.com"),
        )


def test_the_stripe_customer_is_made_on_first_attach_only(alpha, alpha_stripe, buyers):
    ann, _ = buyers
    actor = shop.actor(alpha)
    with tenant_context(alpha.tenant):
        assert methods.list_methods(customer_id=ann.pk) == []
        assert not StripeCustomer.objects.exists()  # a read makes nothing
        first = methods.attach(actor=actor, customer_id=ann.pk, payment_method=card(alpha_stripe))
        second = methods.attach(
            actor=actor, customer_id=ann.pk, payment_method=card(alpha_stripe, "5555555555554444")
        )
        row = StripeCustomer.objects.get()
        listed = methods.list_methods(customer_id=ann.pk)
    remote = alpha_stripe.api().v1.customers.retrieve(row.stripe_customer_id)
    assert remote.email == "ann@example.com" and remote.metadata["customer_id"] == str(ann.pk)
    assert {m.id for m in listed} == {first.id, second.id}
    assert {m.last4 for m in listed} == {"4242", "4444"} and not any(m.is_default for m in listed)
    assert (first.type, first.exp_year) == ("card", 2040)


def test_a_stripe_customer_stripe_no_longer_knows_is_replaced(alpha, alpha_stripe, buyers):
    """After the shop switches Stripe accounts (or the customer is deleted in the dashboard) the
    stored id names nothing: the list is empty, and the next attach makes a new Stripe Customer."""
    ann, _ = buyers
    actor = shop.actor(alpha)
    with tenant_context(alpha.tenant):
        methods.attach(actor=actor, customer_id=ann.pk, payment_method=card(alpha_stripe))
        old = StripeCustomer.objects.get().stripe_customer_id
    alpha_stripe.api().v1.customers.delete(old)
    with tenant_context(alpha.tenant):
        assert methods.list_methods(customer_id=ann.pk) == []
        again = methods.attach(
            actor=actor, customer_id=ann.pk, payment_method=card(alpha_stripe, "5555555555554444")
        )
        row = StripeCustomer.objects.get()
        (replaced,) = AuditEntry.objects.filter(action="stripe_customer.replace")
        listed = methods.list_methods(customer_id=ann.pk)
    assert row.stripe_customer_id != old and replaced.changes == {
        "stripeCustomerId": [old, row.stripe_customer_id]
    }
    assert [m.id for m in listed] == [again.id]


def test_attaching_again_changes_nothing(alpha, alpha_stripe, buyers):
    ann, _ = buyers
    method = card(alpha_stripe)
    with tenant_context(alpha.tenant):
        methods.attach(actor=shop.actor(alpha), customer_id=ann.pk, payment_method=method)
        before = AuditEntry.objects.count()
        again = methods.attach(actor=shop.actor(alpha), customer_id=ann.pk, payment_method=method)
        assert AuditEntry.objects.count() == before
    assert again.id == method


def test_a_method_of_another_customer_is_refused_and_stays_theirs(alpha, alpha_stripe, buyers):
    ann, bob = buyers
    method = card(alpha_stripe)
    with tenant_context(alpha.tenant):
        methods.attach(actor=shop.actor(alpha), customer_id=ann.pk, payment_method=method)
        ann_stripe = StripeCustomer.objects.get(customer=ann).stripe_customer_id
        for change in (methods.attach, methods.detach, methods.set_default):
            with pytest.raises(UserError) as refused:
                change(actor=shop.actor(alpha), customer_id=bob.pk, payment_method=method)
            assert refused.value.field == "paymentMethod", change
            assert refused.value.code in {"ATTACHED_ELSEWHERE", "NOT_ATTACHED"}, change
        # bob's failed first attach made no Stripe Customer row (rolled back)
        assert not StripeCustomer.objects.filter(customer=bob).exists()
    assert alpha_stripe.api().v1.payment_methods.retrieve(method).customer == ann_stripe


def test_set_default_then_detach_clears_the_default(alpha, alpha_stripe, buyers):
    ann, _ = buyers
    first, second = card(alpha_stripe), card(alpha_stripe, "5555555555554444")
    actor = shop.actor(alpha)
    with tenant_context(alpha.tenant):
        for method in (first, second):
            methods.attach(actor=actor, customer_id=ann.pk, payment_method=method)
        assert methods.set_default(
            actor=actor, customer_id=ann.pk, payment_method=second
        ).is_default
        assert [m.id for m in methods.list_methods(customer_id=ann.pk) if m.is_default] == [second]
        methods.detach(actor=actor, customer_id=ann.pk, payment_method=second)
        listed = methods.list_methods(customer_id=ann.pk)
        stripe_id = StripeCustomer.objects.get().stripe_customer_id
    assert [(m.id, m.is_default) for m in listed] == [(first, False)]
    assert (
        alpha_stripe.api().v1.customers.retrieve(stripe_id).invoice_settings.default_payment_method
        is None
    )
    assert alpha_stripe.api().v1.payment_methods.retrieve(second).customer is None


def test_unknown_method_and_customer_are_not_found(alpha, alpha_stripe, buyers):
    ann, _ = buyers
    with tenant_context(alpha.tenant):
        with pytest.raises(NotFound) as unknown:
            methods.attach(
                actor=shop.actor(alpha), customer_id=ann.pk, payment_method="pm_doesnotexist"
            )
        assert unknown.value.field == "paymentMethod"
        with pytest.raises(NotFound) as nobody:
            methods.attach(
                actor=shop.actor(alpha), customer_id=0, payment_method=card(alpha_stripe)
            )
        assert nobody.value.field == "customer"
        assert not StripeCustomer.objects.exists()


def test_a_declined_card_is_a_user_error_and_attaches_nothing(alpha, alpha_stripe, buyers):
    """No Stripe call inside a transaction (DESIGN §12): the Stripe Customer made for the first
    attach is recorded as soon as Stripe made it (it exists there, and the next attach uses it),
    whatever the attach itself then meets."""
    ann, _ = buyers
    declined = card(alpha_stripe, "4000000000000002")  # localstripe declines attaching this one
    with tenant_context(alpha.tenant):
        with pytest.raises(UserError) as refused:
            methods.attach(actor=shop.actor(alpha), customer_id=ann.pk, payment_method=declined)
        assert refused.value.code == "PROVIDER_ERROR" and "declined" in refused.value.message
        (row,) = StripeCustomer.objects.filter(customer=ann)
        assert (
            list(
                AuditEntry.objects.filter(action__startswith="payment_method").values_list("action")
            )
            == []
        )
    assert (
        alpha_stripe.api()
        .v1.payment_methods.list(params={"customer": row.stripe_customer_id, "type": "card"})
        .data
        == []
    )
    with tenant_context(alpha.tenant):
        methods.attach(
            actor=shop.actor(alpha), customer_id=ann.pk, payment_method=card(alpha_stripe)
        )
        assert list(StripeCustomer.objects.filter(customer=ann)) == [row]  # the same one, no second


def test_stripe_off_is_a_user_error(alpha, stripe_api, buyers):
    from tests.apps.payments.fixtures import configure

    configure(alpha, stripe_enabled=False)
    with tenant_context(alpha.tenant), pytest.raises(UserError) as off:
        methods.attach(
            actor=shop.actor(alpha), customer_id=buyers[0].pk, payment_method="pm_card_visa"
        )
    assert off.value.code == "PROVIDER_DISABLED"


@pytest.mark.parametrize(
    ("intent", "expected"),
    [
        (
            {
                "last_payment_error": {"payment_method": {"type": "sepa_debit"}},
                "payment_method_types": ["card", "sepa_debit"],
            },
            "sepa_debit",
        ),
        ({"payment_method": {"id": "pm_1", "type": "card"}}, "card"),
        ({"payment_method": "pm_1", "payment_method_types": ["card"]}, "card"),
        (
            {"payment_method": "pm_1", "payment_method_types": ["card", "link"]},
            "",
        ),  # which one: not said
    ],
)
def test_the_method_type_is_taken_from_what_stripe_says(alpha, intent, expected):
    with tenant_context(alpha.tenant):
        order = shop.place(alpha, [(shop.variant("10.00"), 1)])
        payment = Payment.objects.create(
            order=order,
            provider="stripe",
            stripe_id="pi_x",
            amount=order.total,
            currency=order.currency,
            attempt=1,
        )
        methods.record_method_type(payment, intent)
        payment.refresh_from_db()
    assert payment.method_type == expected
