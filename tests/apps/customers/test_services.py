"""The customer services and selectors called directly: input rules (with hypothesis), what the
API cannot send (unknown address keys, wrong types), kept statistics, ranges of local days."""

from __future__ import annotations

import string
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django_tenants.utils import tenant_context
from hypothesis import given
from hypothesis import strategies as st

from apps.audit.models import AuditEntry
from apps.common.errors import UserError
from apps.customers import selectors, services
from apps.customers.models import Customer

# --- input rules ---------------------------------------------------------------------------------


@given(st.text(alphabet=string.digits + " +-().", max_size=24))
def test_a_phone_is_refused_or_comes_out_in_e164(raw):
    try:
        phone = services.clean_phone(raw)
    except UserError as error:
        assert error.field == "phone"
        return
    assert phone == "" or services.PHONE.fullmatch(phone)
    assert services.clean_phone(phone) == phone  # already clean stays as it is


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("+1 (555) 010-9999", "+15550109999"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+49.151.1234.5678", "+4915112345678"),
        ("  ", ""),
    ],
)
def test_phone_examples(raw, clean):
    assert services.clean_phone(raw) == clean


@given(st.lists(st.text(max_size=8), max_size=12))
def test_tags_come_out_lower_case_trimmed_and_unique_in_order(raw):
    tags = services.clean_tags(raw)
    expected = []
    for tag in raw:
        if tag.strip() and tag.strip().lower() not in expected:
            expected.append(tag.strip().lower())
    assert tags == expected
    assert services.clean_tags(tags) == tags


@pytest.mark.parametrize(
    ("addresses", "field"),
    [
        ("1 Main St", "addresses"),
        (["1 Main St"], "addresses.0"),
        (
            [{"line1": "1 Main St", "city": "X", "country": "US", "street": "?"}],
            "addresses.0.street",
        ),
        ([{"line1": "1 Main St", "city": 7, "country": "US"}], "addresses.0.city"),
        (
            [{"line1": "1 Main St", "city": "X", "country": "US", "postal_code": "9" * 201}],
            "addresses.0.postalCode",
        ),
        ([{"line1": "1 Main St", "city": "X", "country": "US"}] * 21, "addresses"),
    ],
)
def test_addresses_must_be_a_list_of_known_objects(addresses, field):
    with pytest.raises(UserError) as raised:
        services.clean_addresses(addresses)
    assert raised.value.field == field


def test_an_address_keeps_only_known_keys_trimmed():
    assert services.clean_addresses(
        [{"line1": " 1 Main St ", "city": "Springfield", "country": " us"}]
    ) == [
        {
            "line1": "1 Main St",
            "line2": "",
            "city": "Springfield",
            "region": "",
            "postal_code": "",
            "country": "US",
        }
    ]


@pytest.mark.parametrize(
    "changes",
    [
        {"orders_count": 5},
        {"total_spent": "1.00"},
        {"tags": "vip"},
        {"accepts_marketing": "yes"},
        {"first_name": 42},
    ],
)
def test_what_a_caller_may_not_set_is_refused(alpha, changes):
    with tenant_context(alpha.tenant):
        customer = services.create_customer(actor=None, email="rules@example.com")
        with pytest.raises(UserError):
            services.update_customer(actor=None, customer_id=customer.pk, changes=changes)
        with pytest.raises(UserError):
            services.create_customer(actor=None, email="other@example.com", **changes)


def test_an_update_that_changes_nothing_writes_nothing(alpha):
    with tenant_context(alpha.tenant):
        customer = services.create_customer(actor=None, email="same@example.com", first_name="Sam")
        services.update_customer(
            actor=None,
            customer_id=customer.pk,
            changes={"first_name": " Sam ", "email": "SAME@example.com"},
        )
        assert AuditEntry.objects.filter(action="customer.update").count() == 0


# --- kept statistics -----------------------------------------------------------------------------


def test_record_order_keeps_counts_spend_and_first_and_last_order(alpha):
    with tenant_context(alpha.tenant):
        customer = Customer.objects.create(email="stats@example.com")
        march, january = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
        services.record_order(
            customer_id=customer.pk, counted=1, spent=Decimal("10.10"), placed_at=march
        )
        services.record_order(
            customer_id=customer.pk, counted=1, spent=Decimal("5.05"), placed_at=january
        )
        services.record_order(
            customer_id=customer.pk, counted=0, spent=Decimal("-2.00"), placed_at=None
        )  # refund
        customer.refresh_from_db()
        assert (customer.orders_count, customer.total_spent) == (2, Decimal("13.15"))
        assert (customer.first_order_at, customer.last_order_at) == (january, march)
        assert selectors.average_order_value(customer) == Decimal("6.58")  # 6.575 rounds half up
        services.record_order(
            customer_id=customer.pk, counted=-1, spent=Decimal("-5.05"), placed_at=None
        )  # cancel
        customer.refresh_from_db()
        assert (customer.orders_count, customer.total_spent) == (1, Decimal("8.10"))


# --- settings and ranges -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "threshold"),
    [
        (None, Decimal("1000.00")),
        ("250", Decimal("250.00")),
        (99, Decimal("99.00")),
        ("12.345", Decimal("12.35")),
        ("abc", Decimal("1000.00")),
        ("-5", Decimal("1000.00")),
        ("NaN", Decimal("1000.00")),
    ],
)
def test_vip_threshold_from_the_tenant_settings(setting, threshold):
    tenant = SimpleNamespace(settings={} if setting is None else {"vip_threshold": setting})
    assert selectors.vip_threshold(tenant) == threshold


def test_a_day_range_follows_the_tenants_clock_across_daylight_saving():
    berlin = SimpleNamespace(time_zone="Europe/Berlin")
    # Summer time starts on 29 March 2026: that day has 23 hours in Berlin
    first, last, start, end = selectors.day_range(berlin, date(2026, 3, 29), date(2026, 3, 29))
    assert (first, last) == (date(2026, 3, 29), date(2026, 3, 29))
    assert start == datetime(2026, 3, 28, 23, tzinfo=UTC) and end == datetime(
        2026, 3, 29, 22, tzinfo=UTC
    )
    _, _, start, end = selectors.day_range(berlin, None, date(2026, 1, 30))
    assert start == datetime(2025, 12, 31, 23, tzinfo=UTC) and end == datetime(
        2026, 1, 30, 23, tzinfo=UTC
    )
    with pytest.raises(UserError):
        selectors.day_range(berlin, date(2026, 1, 2), date(2026, 1, 1))
