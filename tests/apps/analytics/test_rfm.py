"""RFM scores and segments against the hand-worked shop of rfm_shop (as of 31 March 2026 in
Berlin), the segment grid, small populations and the cache."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal

import pandas as pd
import pytest
from django_tenants.utils import tenant_context
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.analytics import cache, rfm
from apps.analytics.rfm import Segment
from apps.common.days import local_today
from apps.common.errors import UserError
from tests.apps.analytics import rfm_shop
from tests.apps.customers import factories as make

# Worked by hand from rfm_shop.ORDERS. Recency in days to 31 March; ranks 1..10 cut into pairs;
# tied customers share their mean rank: the four with one order rank 2.5 (F1), the two with two
# 5.5 (F3), the two with four 8.5 (F5, over the edge at 8.2). (recency, frequency, monetary, R,
# F, M, segment)
EXPECTED = {
    "c1": (1, 4, "400.00", 5, 5, 4, Segment.CHAMPIONS),
    "c2": (0, 1, "50.00", 5, 1, 2, Segment.NEW),  # its 1 April (Berlin) order is left out
    "c3": (11, 2, "160.00", 4, 3, 3, Segment.POTENTIAL_LOYALISTS),
    "c4": (16, 5, "1500.00", 4, 5, 5, Segment.LOYAL),
    "c5": (34, 1, "40.00", 3, 1, 2, Segment.NEED_ATTENTION),
    "c6": (49, 3, "600.00", 3, 4, 4, Segment.LOYAL),
    "c7": (120, 4, "1900.00", 2, 5, 5, Segment.CANT_LOSE),  # 2000 less a 100 refund
    "c8": (150, 1, "30.00", 2, 1, 1, Segment.HIBERNATING),  # its cancelled March order is left out
    "c9": (242, 2, "120.00", 1, 3, 3, Segment.AT_RISK),
    "c10": (
        440,
        1,
        "0.00",
        1,
        1,
        1,
        Segment.LOST,
    ),  # refunded in full, still a customer with an order
}


@pytest.fixture
def shop(alpha, beta):
    rfm_shop.fresh_cache(alpha, beta)
    return rfm_shop.build(alpha)


def test_scores_and_segments_by_hand(shop):
    tenant, ids = shop
    with tenant_context(tenant):
        table = rfm.rfm_table(tenant, rfm_shop.AS_OF)
    assert (
        table.as_of == rfm_shop.AS_OF and table.customers == 10
    )  # c11 (cancelled only), c12 (none) left out
    for name, (recency, frequency, monetary, r, f, m, segment) in EXPECTED.items():
        assert table.scores(ids[name]) == rfm.CustomerScores(
            ids[name], recency, frequency, Decimal(monetary), r, f, m, segment
        ), name
    assert table.scores(ids["c11"]) is None


def test_segment_figures_by_hand(shop):
    tenant, ids = shop
    with tenant_context(tenant):
        summaries = {s.segment: s for s in rfm.segment_mix(tenant, rfm_shop.AS_OF)}
        table = rfm.rfm_table(tenant, rfm_shop.AS_OF)
    assert list(summaries) == list(Segment)
    loyal = summaries[Segment.LOYAL]
    assert (loyal.customers, loyal.customers_share, loyal.revenue, loyal.revenue_share) == (
        2,
        Decimal("0.2000"),
        Decimal("2100.00"),
        Decimal("0.4375"),
    )  # 2100 / 4800
    assert (loyal.average_recency_days, loyal.average_frequency, loyal.average_monetary) == (
        Decimal("32.50"),
        Decimal("4.00"),
        Decimal("1050.00"),
    )
    shares = {segment: summary.revenue_share for segment, summary in summaries.items()}
    assert shares == {
        Segment.CHAMPIONS: Decimal("0.0833"),
        Segment.LOYAL: Decimal("0.4375"),
        Segment.POTENTIAL_LOYALISTS: Decimal("0.0333"),
        Segment.NEW: Decimal("0.0104"),
        Segment.PROMISING: Decimal("0.0000"),
        Segment.NEED_ATTENTION: Decimal("0.0083"),
        Segment.AT_RISK: Decimal("0.0250"),
        Segment.CANT_LOSE: Decimal("0.3958"),
        Segment.HIBERNATING: Decimal("0.0063"),
        Segment.LOST: Decimal("0.0000"),
    }
    assert abs(sum(shares.values()) - 1) <= Decimal("0.0010")
    promising = summaries[Segment.PROMISING]
    assert (promising.customers, promising.average_monetary, promising.average_recency_days) == (
        0,
        None,
        None,
    )
    assert table.segment_ids(Segment.LOYAL) == [ids["c4"], ids["c6"]]  # biggest spender first


def test_every_cell_of_the_grid_has_one_segment_and_every_segment_a_cell():
    cells = {(r, f): rfm.segment_of(r, f) for r, f in itertools.product(range(1, 6), repeat=2)}
    assert len(cells) == 25 and all(isinstance(segment, Segment) for segment in cells.values())
    assert set(cells.values()) == set(Segment)
    assert (
        cells[5, 5] is Segment.CHAMPIONS
        and cells[1, 1] is Segment.LOST
        and cells[1, 5] is Segment.CANT_LOSE
    )


def _frame(rows):
    return pd.DataFrame(rows, columns=rfm.COLUMNS).astype("int64")


MEASURES = st.lists(
    st.tuples(st.integers(0, 400), st.integers(1, 6), st.integers(0, 10_000)),
    min_size=1,
    max_size=60,
)


@settings(deadline=None, max_examples=50)
@given(MEASURES)
def test_scores_are_quintiles_of_ranks(measures):
    frame = rfm.score(_frame([(index + 1, *row) for index, row in enumerate(measures)]))
    n = len(frame)
    for column, measure in (("r", "recency_days"), ("f", "frequency"), ("m", "monetary_cents")):
        counts = frame[column].value_counts()
        assert set(counts.index) <= set(rfm.SCORES)
        if n >= 5 and frame[measure].is_unique:  # equal fifths, give or take one
            assert sorted(counts.index) == list(rfm.SCORES) and counts.max() - counts.min() <= 1
    # a better measure never scores lower: recency reversed
    for a, b in itertools.combinations(frame.itertuples(), 2):
        if a.recency_days < b.recency_days:
            assert a.r >= b.r
        if a.frequency < b.frequency:
            assert a.f <= b.f
        if a.monetary_cents < b.monetary_cents:
            assert a.m <= b.m
    assert list(frame["monetary_cents"]) == sorted(frame["monetary_cents"], reverse=True)


@settings(deadline=None, max_examples=100)
@given(
    MEASURES,
    st.lists(st.integers(0, 59), min_size=1, max_size=30),
    st.randoms(use_true_random=False),
)
def test_equal_measures_get_equal_scores_and_segments(measures, copies, shuffle):
    """Customers with the same (recency, frequency, monetary) are scored and segmented alike,
    whatever their ids and however many share those values; a measure shared alone scores alike."""
    rows = measures + [measures[index % len(measures)] for index in copies]
    ids = list(range(1, len(rows) + 1))
    shuffle.shuffle(ids)  # ids decide nothing
    frame = rfm.score(_frame(sorted((id_, *row) for id_, row in zip(ids, rows, strict=True))))
    for measures_of, scored in frame.groupby(["recency_days", "frequency", "monetary_cents"]):
        assert len(scored[["r", "f", "m"]].drop_duplicates()) == 1, measures_of
        assert scored["segment"].nunique() == 1, measures_of
    for column, measure in (("r", "recency_days"), ("f", "frequency"), ("m", "monetary_cents")):
        assert (frame.groupby(measure)[column].nunique() == 1).all(), column


def test_small_populations():
    one = rfm.score(_frame([(7, 3, 1, 500)]))
    assert (one.loc[7, "r"], one.loc[7, "f"], one.loc[7, "m"], one.loc[7, "segment"]) == (
        3,
        3,
        3,
        "need_attention",
    )
    two = rfm.score(_frame([(1, 10, 1, 100), (2, 10, 1, 100)]))  # tied: no one to rank them against
    assert list(two["r"]) == list(two["f"]) == list(two["m"]) == [3, 3]
    assert list(two["segment"]) == ["need_attention"] * 2
    apart = rfm.score(_frame([(1, 0, 1, 100), (2, 0, 1, 250)]))  # both today, once; one spent more
    assert list(apart.loc[[1, 2], "m"]) == [1, 5] and set(apart["segment"]) == {"need_attention"}
    straddling = rfm.score(
        _frame([(1, 5, 1, 1), (2, 3, 2, 2), (3, 3, 2, 3)])
    )  # ranks 2 and 3 share 2.5
    assert list(straddling.loc[[1, 2, 3], "f"]) == [1, 4, 4] and list(
        straddling.loc[[1, 2, 3], "r"]
    ) == [1, 4, 4]
    assert rfm.score(_frame([])).empty


def test_no_orders_no_customers(alpha):
    rfm_shop.fresh_cache(alpha)
    with tenant_context(alpha.tenant):
        make.customer("idle@rfm.test")
        table = rfm.rfm_table(alpha.tenant)
        summaries = table.summaries()
    assert table.customers == 0 and table.as_of == local_today(alpha.tenant)
    assert [(s.customers, s.customers_share, s.revenue_share) for s in summaries] == [
        (0, None, None)
    ] * 10


def test_as_of_bounds(alpha):
    today = local_today(alpha.tenant)
    assert rfm.check_as_of(alpha.tenant, today + timedelta(days=1)) == today + timedelta(days=1)
    for bad in (today + timedelta(days=2), date(1999, 12, 31)):
        with pytest.raises(UserError) as error:
            rfm.check_as_of(alpha.tenant, bad)
        assert error.value.code == "BAD_RANGE"


def test_an_earlier_day_sees_only_the_orders_placed_by_then(shop):
    tenant, ids = shop
    with tenant_context(tenant):
        table = rfm.rfm_table(tenant, date(2025, 12, 31))
    assert table.customers == 6  # c1, c2, c3 and c5 first ordered in 2026
    assert table.scores(ids["c4"]).frequency == 2 and table.scores(ids["c1"]) is None


def test_the_cached_table_is_read_until_the_data_version_moves(shop):
    tenant, _ = shop
    with tenant_context(tenant):
        before = rfm.rfm_table(tenant, rfm_shop.AS_OF)
        make.order(make.customer("late@rfm.test"), "5.00", rfm_shop._at("2026-03-31"))
        assert rfm.rfm_table(tenant, rfm_shop.AS_OF).customers == before.customers == 10  # cached
        hits = cache.stats()["hits"]
        cache.bump()  # what the order services do on commit
        assert rfm.rfm_table(tenant, rfm_shop.AS_OF).customers == 11
        assert cache.stats()["hits"] == hits
