"""The cohort retention matrix against the hand-worked shop of rfm_shop (Berlin time), and its
range checks."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from apps.analytics import cohorts
from apps.common.days import local_today
from apps.common.errors import UserError
from tests.apps.analytics import rfm_shop


@pytest.fixture
def shop(alpha, beta):
    rfm_shop.fresh_cache(alpha, beta)
    return rfm_shop.build(alpha)


def _cells(cohort) -> list[tuple]:
    return [(c.offset, c.month, c.customers, c.retention, c.revenue) for c in cohort.months]


def test_the_matrix_by_hand(shop):
    tenant, _ = shop
    with tenant_context(tenant):
        matrix = cohorts.cohort_retention(tenant, first=date(2025, 10, 20), last=date(2026, 3, 1))
    assert [(c.month, c.size, c.revenue, c.lifetime_value) for c in matrix] == [
        (date(2025, 10, 1), 0, Decimal("0.00"), None),  # c6 ordered in October, but first in June
        (date(2025, 11, 1), 2, Decimal("1530.00"), Decimal("765.00")),  # c4, c8
        (date(2025, 12, 1), 0, Decimal("0.00"), None),
        (date(2026, 1, 1), 1, Decimal("400.00"), Decimal("400.00")),  # c1
        (date(2026, 2, 1), 1, Decimal("40.00"), Decimal("40.00")),  # c5
        (
            date(2026, 3, 1),
            2,
            Decimal("210.00"),
            Decimal("105.00"),
        ),  # c2 (not its April order), c3 (1 March there)
    ]
    one, half = Decimal("1.0000"), Decimal("0.5000")
    assert _cells(matrix[1]) == [
        (0, date(2025, 11, 1), 2, one, Decimal("330.00")),  # c8's cancelled March order is left out
        (1, date(2025, 12, 1), 1, half, Decimal("300.00")),
        (2, date(2026, 1, 1), 1, half, Decimal("300.00")),
        (3, date(2026, 2, 1), 1, half, Decimal("300.00")),
        (4, date(2026, 3, 1), 1, half, Decimal("300.00")),
    ]
    assert _cells(matrix[3]) == [
        (0, date(2026, 1, 1), 1, one, Decimal("100.00")),
        (1, date(2026, 2, 1), 1, one, Decimal("100.00")),
        (2, date(2026, 3, 1), 1, one, Decimal("200.00")),
    ]
    assert _cells(matrix[4]) == [
        (0, date(2026, 2, 1), 1, one, Decimal("40.00")),
        (1, date(2026, 3, 1), 0, Decimal("0.0000"), Decimal("0.00")),
    ]
    assert _cells(matrix[0])[-1] == (5, date(2026, 3, 1), 0, None, Decimal("0.00"))
    assert [len(c.months) for c in matrix] == [6, 5, 4, 3, 2, 1]


def test_orders_after_the_last_month_are_not_seen(shop):
    tenant, _ = shop
    with tenant_context(tenant):
        matrix = cohorts.cohort_retention(tenant, first=date(2025, 11, 1), last=date(2025, 12, 1))
    assert [(c.size, [cell.customers for cell in c.months]) for c in matrix] == [
        (2, [2, 1]),
        (0, [0]),
    ]
    assert matrix[0].revenue == Decimal("630.00")


def test_the_default_range_is_the_last_twelve_months(alpha):
    this_month = local_today(alpha.tenant).replace(day=1)
    first, last = cohorts.month_range(alpha.tenant, None, None)
    assert last == this_month and cohorts.add_months(first, 11) == last


@pytest.mark.parametrize(
    ("first", "last", "code"),
    [
        (date(2026, 3, 1), date(2026, 2, 1), "BAD_RANGE"),
        (date(2023, 1, 1), date(2026, 1, 31), "BAD_RANGE"),  # 37 months; 36 is the most
        (None, date(2999, 1, 1), "BAD_RANGE"),
        (date(1999, 12, 1), date(2000, 6, 1), "BAD_RANGE"),
    ],
)
def test_bad_ranges(alpha, first, last, code):
    with pytest.raises(UserError) as error:
        cohorts.month_range(alpha.tenant, first, last)
    assert error.value.code == code


def test_thirty_six_months_are_allowed(alpha):
    assert cohorts.month_range(alpha.tenant, date(2023, 1, 1), date(2025, 12, 1)) == (
        date(2023, 1, 1),
        date(2025, 12, 1),
    )
