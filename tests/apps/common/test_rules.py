"""The shared input rules (apps/common/rules.py), one outcome each: text (names of products,
categories, rules, widgets, reports, notes, keys), money, ranges of days."""

from datetime import date
from decimal import Decimal

import pytest

from apps.common.errors import UserError
from apps.common.rules import MAX_MONEY, check_day, check_range, money, optional_text, required_text


def test_text_is_stripped_and_kept():
    assert required_text("  Tea  ", field="name", max_length=3, missing="Name it.") == "Tea"
    assert optional_text(None, field="note", max_length=3) == ""


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "REQUIRED"),
        ("   ", "REQUIRED"),
        (None, "REQUIRED"),
        (42, "REQUIRED"),
        ("Teas", "TOO_LONG"),
    ],
)
def test_missing_and_long_text_is_refused(value, code):
    with pytest.raises(UserError) as refused:
        required_text(value, field="name", max_length=3, missing="Name it.")
    assert (refused.value.code, refused.value.field) == (code, "name")


@pytest.mark.parametrize(("value", "code"), [(42, "INVALID"), ("Teas", "TOO_LONG")])
def test_optional_text_has_the_same_outcomes(value, code):
    with pytest.raises(UserError) as refused:
        optional_text(value, field="note", max_length=3)
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (Decimal("19.99"), Decimal("19.99")),
        (Decimal("0"), Decimal("0.00")),
        (Decimal("1.50"), Decimal("1.50")),
        (Decimal("1.500"), Decimal("1.50")),
        (MAX_MONEY, MAX_MONEY),
        (None, None),
    ],
)
def test_money_is_kept_with_two_places(value, kept):
    assert money(value, field="price") == kept


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (Decimal("-0.01"), "NEGATIVE"),
        (MAX_MONEY + Decimal("0.01"), "TOO_LARGE"),
        (Decimal("1E+20"), "TOO_LARGE"),
        (Decimal("1.234"), "TOO_PRECISE"),
        (Decimal("NaN"), "INVALID"),
        (Decimal("Infinity"), "INVALID"),
    ],
)
def test_bad_money_is_refused_with_one_code_per_fault(value, code):
    with pytest.raises(UserError) as refused:
        money(value, field="price")
    assert (refused.value.code, refused.value.field) == (code, "price")


def test_missing_money_is_required_only_when_asked():
    with pytest.raises(UserError) as refused:
        money(None, field="price", required=True)
    assert refused.value.code == "REQUIRED"


def test_a_range_in_order_and_within_its_length_passes():
    check_range(date(2025, 6, 1), date(2025, 6, 1), longest=1)
    check_range(date(2025, 6, 1), date(2025, 6, 30), longest=30)


@pytest.mark.parametrize(
    ("first", "last", "longest", "field", "code"),
    [
        (date(2025, 6, 2), date(2025, 6, 1), None, "from", "BAD_RANGE"),
        (date(2025, 6, 1), date(2025, 6, 30), 29, "to", "BAD_RANGE"),
    ],
)
def test_a_range_backwards_or_too_long_is_bad_range(first, last, longest, field, code):
    with pytest.raises(UserError) as refused:
        check_range(first, last, longest=longest)
    assert (refused.value.code, refused.value.field) == (code, field)
    with pytest.raises(UserError) as nested:
        check_range(first, last, longest=longest, field="filters.placed")
    assert (nested.value.code, nested.value.field) == (code, f"filters.placed.{field}")


def test_a_day_out_of_bounds_is_bad_range():
    with pytest.raises(UserError) as refused:
        check_day(date(1000, 1, 1), field="from")
    assert (refused.value.code, refused.value.field) == ("BAD_RANGE", "from")
