"""Chart images drawn on the server: the size asked for, not blank, money written in the
tenant's currency with thousands separators, days said to be in the tenant's time zone, and the
same bytes for the same chart."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from decimal import Decimal

import pytest
from PIL import Image

from apps.analytics import charts
from apps.analytics.charts import ChartFormat, ChartKind
from apps.analytics.query import AnalyticsQuery, DateRange, Dimension, Result, Row
from apps.common.errors import UserError

FIRST = date(2026, 1, 1)


def _result(*, currency="USD", dimension=Dimension.TIME, days=14, compare=True) -> Result:
    query = AnalyticsQuery(
        metrics=("gross_sales", "orders"),
        range=DateRange(FIRST, FIRST + timedelta(days=days - 1)),
        dimension=dimension,
        compare=compare,
    )
    rows = [
        Row(
            key=(FIRST + timedelta(days=i)).isoformat(),
            label=(FIRST + timedelta(days=i)).isoformat(),
            values={"gross_sales": Decimal(1500 * i) + Decimal("0.25"), "orders": i},
        )
        for i in range(days)
    ]
    return Result(
        query=query,
        currency=currency,
        time_zone="Pacific/Kiritimati",
        rows=rows,
        totals={"gross_sales": Decimal("136503.50"), "orders": 91},
        previous={"gross_sales": Decimal("100000.00"), "orders": 100} if compare else None,
        change={"gross_sales": Decimal("0.3650"), "orders": Decimal("-0.0900")} if compare else {},
    )


def _svg_text(chart: charts.Chart) -> list[str]:
    root = ET.fromstring(chart.content)
    assert root.tag.endswith("svg")
    return ["".join(node.itertext()) for node in root.iter() if node.tag.endswith("text")]


@pytest.mark.parametrize("kind", list(ChartKind))
def test_png_has_the_size_asked_for_and_is_not_blank(kind):
    chart = charts.render(
        _result(), kind=kind, format=ChartFormat.PNG, title="Sales", width=640, height=360
    )
    image = Image.open(io.BytesIO(chart.content))
    assert (image.format, image.size, chart.media_type) == ("PNG", (640, 360), "image/png")
    colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 10  # drawn on, not a blank canvas


def test_svg_writes_money_axes_in_the_tenants_currency():
    texts = _svg_text(
        charts.render(_result(currency="EUR"), kind=ChartKind.LINE, format=ChartFormat.SVG)
    )
    assert (
        "€20,000" in texts and "€0" in texts
    )  # the money axis: symbol, thousands separator, no cents
    assert "2026-01-01" in texts
    assert "Days in Pacific/Kiritimati" in texts
    assert {"Gross sales", "Orders"} <= set(texts)  # the legend


def test_a_currency_without_a_symbol_is_written_by_its_code():
    texts = _svg_text(
        charts.render(_result(currency="CHF"), kind=ChartKind.BAR, format=ChartFormat.SVG)
    )
    assert "CHF 20,000" in texts


def test_kpi_shows_the_total_and_the_change():
    texts = _svg_text(charts.render(_result(), kind=ChartKind.KPI, format=ChartFormat.SVG))
    assert "$136,503.50" in texts
    assert "▲ 36.5% vs previous period ($100,000.00)" in texts
    no_compare = _svg_text(
        charts.render(_result(compare=False), kind=ChartKind.KPI, format=ChartFormat.SVG)
    )
    assert not any("previous period" in text for text in no_compare)


def test_table_lists_rows_and_totals():
    texts = _svg_text(
        charts.render(_result(days=40), kind=ChartKind.TABLE, format=ChartFormat.SVG, height=300)
    )
    assert {"$1,500.25", "$136,503.50", "Total", "Gross sales"} <= set(texts)
    assert any(text.startswith("… and ") and text.endswith(" more") for text in texts)


def test_an_empty_result_says_so():
    empty = Result(
        query=AnalyticsQuery(
            metrics=("product_units",),
            range=DateRange(FIRST, FIRST),
            dimension=Dimension.PRODUCT,
            limit=10,
        ),
        currency="USD",
        time_zone="UTC",
        rows=[],
        totals={"product_units": 0},
    )
    for kind in (ChartKind.PIE, ChartKind.BAR):
        assert "No data for this range" in _svg_text(
            charts.render(empty, kind=kind, format=ChartFormat.SVG)
        )


@pytest.mark.parametrize(("width", "height"), [(99, 400), (400, 2001), (0, 400), (-5, 400)])
def test_sizes_are_bounded(width, height):
    with pytest.raises(UserError) as caught:
        charts.render(
            _result(), kind=ChartKind.LINE, format=ChartFormat.PNG, width=width, height=height
        )
    assert caught.value.code == "BAD_SIZE"


def test_the_same_chart_is_the_same_bytes_on_any_thread():
    def draw(_):
        return [
            charts.render(_result(), kind=kind, format=ChartFormat.SVG).content
            for kind in ChartKind
        ]

    with ThreadPoolExecutor(4) as pool:
        drawn = list(pool.map(draw, range(8)))
    assert all(images == drawn[0] for images in drawn)
    assert (
        charts.render(_result(), kind=ChartKind.LINE, format=ChartFormat.PNG).content
        == charts.render(_result(), kind=ChartKind.LINE, format=ChartFormat.PNG).content
    )
