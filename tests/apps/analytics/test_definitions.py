"""Widget and report definitions: only whitelisted keys and values get through, stored
normalised (ids as database ids), and relative ranges resolve in the tenant's time zone when the
definition runs."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context
from hypothesis import given
from hypothesis import strategies as st

from apps.analytics import definitions
from apps.analytics.query import DateRange, Dimension, Granularity
from apps.catalog.models import Category
from apps.common.errors import UserError
from tests.apps.orders import shop
from tests.conftest import gid

UTC_TENANT = SimpleNamespace(time_zone="UTC", currency="USD", schema_name="utc_shop")
BASE = {
    "metrics": ["gross_sales"],
    "dimension": "time",
    "granularity": "day",
    "range": "last_30_days",
}


def _error(definition, *, tenant=UTC_TENANT, **kwargs) -> UserError:
    with pytest.raises(UserError) as caught:
        definitions.normalise(definition, tenant=tenant, **kwargs)
    return caught.value


def test_a_definition_is_stored_with_every_key():
    stored = definitions.normalise(
        {"metrics": ["orders"], "range": {"from": "2026-01-01", "to": "2026-01-31"}},
        tenant=UTC_TENANT,
    )
    assert stored == {
        "metrics": ["orders"],
        "dimension": None,
        "granularity": "day",
        "range": {"from": "2026-01-01", "to": "2026-01-31"},
        "filters": {"productIds": [], "categoryIds": []},
        "compare": False,
        "limit": None,
    }
    assert (
        definitions.normalise(definitions.public(stored, schema="utc_shop"), tenant=UTC_TENANT)
        == stored
    )


@pytest.mark.parametrize(
    ("definition", "field", "code"),
    [
        ({**BASE, "sql": "SELECT 1"}, "definition.sql", "UNKNOWN_KEY"),
        (
            {**BASE, "metrics": ["gross_sales; DROP TABLE analytics_salesday"]},
            "definition.metrics",
            "UNKNOWN_METRIC",
        ),
        ({**BASE, "metrics": ["sum(total)"]}, "definition.metrics", "UNKNOWN_METRIC"),
        ({**BASE, "metrics": "gross_sales"}, "definition.metrics", "UNKNOWN_METRIC"),
        ({**BASE, "metrics": []}, "definition.metrics", "UNKNOWN_METRIC"),
        ({**BASE, "dimension": "customer_id"}, "definition.dimension", "BAD_DIMENSION"),
        (
            {**BASE, "dimension": "product"},
            "definition.dimension",
            "BAD_DIMENSION",
        ),  # a whole-shop metric
        ({**BASE, "granularity": "hour"}, "definition.granularity", "INVALID"),
        ({**BASE, "range": "last_8_days"}, "definition.range", "BAD_RANGE"),
        (
            {**BASE, "range": {"from": "2026-02-01", "to": "2026-01-01"}},
            "definition.range",
            "BAD_RANGE",
        ),
        (
            {**BASE, "range": {"from": "2016-01-01", "to": "2026-01-01"}},
            "definition.range",
            "BAD_RANGE",
        ),
        ({**BASE, "range": {"lastDays": 1000}}, "definition.range", "BAD_RANGE"),
        ({**BASE, "range": {"lastDays": 0}}, "definition.range.lastDays", "BAD_RANGE"),
        (
            {**BASE, "range": {"from": "2026-01-01", "to": "now()"}},
            "definition.range.to",
            "BAD_RANGE",
        ),
        (
            {**BASE, "range": {"from": "2026-01-01", "to": "2026-01-02", "tz": "UTC"}},
            "definition.range",
            "BAD_RANGE",
        ),
        ({**BASE, "filters": {"where": "1=1"}}, "definition.filters.where", "UNKNOWN_KEY"),
        ({**BASE, "compare": "yes"}, "definition.compare", "INVALID"),
        (
            {**BASE, "metrics": ["product_units"], "dimension": "product", "limit": 1000},
            "definition.limit",
            "BAD_LIMIT",
        ),
        ({"metrics": ["orders"]}, "definition.range", "BAD_RANGE"),
        (["gross_sales"], "definition.", "INVALID"),
    ],
)
def test_what_is_off_the_whitelist_is_refused(definition, field, code):
    error = _error(definition)
    assert (error.field, error.code) == (field, code), error.message


def test_a_widget_takes_one_metric_and_a_report_ten():
    assert (
        _error({**BASE, "metrics": ["gross_sales", "orders"]}, max_metrics=1).code
        == "TOO_MANY_METRICS"
    )
    assert _error({**BASE, "metrics": ["gross_sales"] * 11}).code == "TOO_MANY_METRICS"
    assert _error({**BASE, "metrics": ["gross_sales", "gross_sales"]}).code == "DUPLICATE_METRIC"


def test_filters_take_global_ids_of_rows_that_exist(alpha):
    with tenant_context(alpha.tenant):
        product = shop.variant().product
        category = Category.objects.create(name="Hats", slug="hats-defs")
        definition = {
            **BASE,
            "metrics": ["product_revenue"],
            "filters": {
                "productIds": [gid(alpha, "Product", product.pk)] * 2,
                "categoryIds": [gid(alpha, "Category", category.pk)],
            },
        }
        stored = definitions.normalise(definition, tenant=alpha.tenant)
        assert stored["filters"] == {"productIds": [product.pk], "categoryIds": [category.pk]}
        query = definitions.query(stored, tenant=alpha.tenant)
        assert (query.filters.product_ids, query.filters.category_ids) == (
            (product.pk,),
            (category.pk,),
        )

        for ids, message in [
            ([gid(alpha, "Category", product.pk)], "not the id"),  # a product's id, wrong type
            ([gid(alpha, "Product", product.pk + 1000)], "No product"),
            (["1 OR 1=1"], "not the id"),
            ([product.pk], "not the id"),
        ]:
            error = _error({**definition, "filters": {"productIds": ids}}, tenant=alpha.tenant)
            assert (error.field, error.code) == ("definition.filters.productIds", "NOT_FOUND")
            assert message in error.message
        # whole-shop figures cannot be filtered by product
        error = _error({**definition, "metrics": ["gross_sales"]}, tenant=alpha.tenant)
        assert (error.field, error.code) == ("definition.filters", "BAD_FILTER")


TODAY = date(2026, 3, 10)


@pytest.mark.parametrize(
    ("spec", "first", "last"),
    [
        ("today", date(2026, 3, 10), date(2026, 3, 10)),
        ("yesterday", date(2026, 3, 9), date(2026, 3, 9)),
        ("last_7_days", date(2026, 3, 4), date(2026, 3, 10)),
        ("last_30_days", date(2026, 2, 9), date(2026, 3, 10)),
        ("last_90_days", date(2025, 12, 11), date(2026, 3, 10)),
        ("last_365_days", date(2025, 3, 11), date(2026, 3, 10)),
        ("month_to_date", date(2026, 3, 1), date(2026, 3, 10)),
        ("year_to_date", date(2026, 1, 1), date(2026, 3, 10)),
        ("last_month", date(2026, 2, 1), date(2026, 2, 28)),
        ({"lastDays": 3}, date(2026, 3, 8), date(2026, 3, 10)),
        ({"from": "2025-12-24", "to": "2026-01-02"}, date(2025, 12, 24), date(2026, 1, 2)),
    ],
)
def test_ranges(spec, first, last):
    assert definitions.resolve_range(spec, TODAY) == DateRange(first, last)


@given(
    st.dates(min_value=date(2001, 1, 1), max_value=date(2998, 12, 31)),
    st.sampled_from(definitions.PRESETS),
)
def test_relative_ranges_end_by_today_and_never_invert(today, preset):
    span = definitions.resolve_range(preset, today)
    assert span.first <= span.last <= today
    assert span.last >= today - timedelta(days=31)


def test_relative_ranges_resolve_in_the_tenants_time_zone():
    """Kiritimati (UTC+14) and Pago Pago (UTC-11) are 25 hours apart: never the same day."""
    stored = definitions.normalise({**BASE, "range": "today"}, tenant=UTC_TENANT)
    east, west = (
        SimpleNamespace(time_zone=zone, currency="USD", schema_name="tz_shop")
        for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago")
    )
    east_day, west_day = (definitions.query(stored, tenant=t).range.last for t in (east, west))
    assert east_day == timezone.localdate(timezone=ZoneInfo("Pacific/Kiritimati"))
    assert west_day == timezone.localdate(timezone=ZoneInfo("Pacific/Pago_Pago"))
    assert east_day > west_day


def test_a_run_may_replace_the_range():
    stored = definitions.normalise(
        {**BASE, "granularity": "month", "range": "year_to_date"}, tenant=UTC_TENANT
    )
    query = definitions.query(
        stored, tenant=UTC_TENANT, range={"from": "2024-01-01", "to": "2024-12-31"}
    )
    assert query == replace(
        query,
        metrics=("gross_sales",),
        dimension=Dimension.TIME,
        granularity=Granularity.MONTH,
        range=DateRange(date(2024, 1, 1), date(2024, 12, 31)),
    )
