"""Customer lifetime value against the hand-worked shop of rfm_shop, as of 31 March 2026 in
Berlin: the year is 1 April 2025 to 31 March 2026, the year before from 1 April 2024."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from apps.analytics import lifetime
from tests.apps.analytics import rfm_shop
from tests.apps.customers import factories as make


@pytest.fixture
def shop(alpha, beta):
    rfm_shop.fresh_cache(alpha, beta)
    return rfm_shop.build(alpha)


def test_lifetime_value_by_hand(shop):
    tenant, _ = shop
    with tenant_context(tenant):
        figures = lifetime.lifetime_value(tenant, rfm_shop.AS_OF)
    assert figures == lifetime.LifetimeValue(
        as_of=rfm_shop.AS_OF,
        customers=10,
        revenue=Decimal("4800.00"),
        historical=Decimal("480.00"),
        year_customers=9,  # not c10 (January 2025)
        year_orders=22,
        year_revenue=Decimal("4300.00"),  # less c7's March 2025 order
        average_order_value=Decimal("195.45"),  # 4300 / 22
        purchase_frequency=Decimal("2.44"),  # 22 / 9
        retention_rate=Decimal("0.5000"),  # of c7 and c10, who ordered in the year before, c7
        expected_lifespan_years=Decimal("2.00"),  # 1 / (1 - 0.5)
        predictive=Decimal("955.56"),  # 4300 / 9 x 2
    )


def test_without_a_year_before_there_is_no_prediction(shop):
    tenant, _ = shop
    with tenant_context(tenant):
        figures = lifetime.lifetime_value(tenant, date(2025, 6, 30))  # nobody ordered before 2025
    # c6 (200), c7 (500 + 500), c10 (0): 1200 / 3
    assert (figures.customers, figures.revenue, figures.historical) == (
        3,
        Decimal("1200.00"),
        Decimal("400.00"),
    )
    assert (figures.year_orders, figures.average_order_value) == (4, Decimal("300.00"))
    assert (figures.retention_rate, figures.expected_lifespan_years, figures.predictive) == (
        None,
        None,
        None,
    )


def test_when_no_one_churns_the_lifespan_is_capped(alpha):
    rfm_shop.fresh_cache(alpha)
    with tenant_context(alpha.tenant):
        buyer = make.customer("faithful@rfm.test")
        make.order(buyer, "100.00", datetime(2025, 1, 10, 12, tzinfo=UTC))
        make.order(buyer, "100.00", datetime(2026, 1, 10, 12, tzinfo=UTC))
        figures = lifetime.lifetime_value(alpha.tenant, date(2026, 3, 31))
    assert (figures.retention_rate, figures.expected_lifespan_years) == (
        Decimal("1.0000"),
        Decimal("10.00"),
    )
    assert figures.predictive == Decimal("1000.00")  # 100 a year for 10 years
