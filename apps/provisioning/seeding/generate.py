"""The demo data as COPY text: generators for the catalog, customers and orders of one tenant.

Every part draws from its own `random.Random` seeded with (seed, part), so the same seed and
sizes give the same rows. Money is integer cents (exact) where the generators add and take
percentages, and Decimal where the order services' own rules (`allocate`, `line_shares`, `units_worth`) value refunds.
"""

from __future__ import annotations

import json
import math
import random
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

from django.db import models
from django.utils.text import slugify

from apps.catalog.models import Category, Product, Variant
from apps.common.money import ZERO
from apps.customers.models import Customer
from apps.customers.services import ADDRESS_KEYS
from apps.orders import status as order_status
from apps.orders.models import Order, OrderEvent, OrderLine, Refund, RefundLine
from apps.orders.services import allocate, line_shares, units_worth
from apps.provisioning.seeding.vocabulary import (
    ADJECTIVES,
    BRANDS,
    DEFAULT_TAX_PERCENT,
    DISCOUNT_PERCENTS,
    FIRST_NAMES,
    FREE_SHIPPING_CENTS,
    HOUR_WEIGHTS,
    LAST_NAMES,
    LINE_COUNT_WEIGHTS,
    MATERIALS,
    MONTH_FACTORS,
    OPTIONS,
    ORDER_NOTES,
    QUANTITY_WEIGHTS,
    REFUND_REASONS,
    REGIONS,
    SHIPPING_CENTS,
    STREETS,
    TAX_PERCENT,
    TAXONOMY,
)

WINDOW_DAYS = 730
PERIOD_DAYS = 30  # customers and products appear period by period; orders pick among those present


@dataclass(frozen=True)
class SeedSize:
    products: int = 500
    customers: int = 5000
    orders: int = 100_000


@dataclass
class _Tables:
    """The rows generated so far, as COPY text, by model."""

    rows: dict[type[models.Model], list[str]] = field(default_factory=dict)

    def add(self, model: type[models.Model], *values: Any) -> None:
        self.formatted(model, "\t".join(map(cell, values)))

    def formatted(self, model: type[models.Model], row: str) -> None:
        """A row already in COPY text format (tab-separated, escaped, NULL as \\N)."""
        self.rows.setdefault(model, []).append(row)


# The columns written for each table; the others get their model default (`_copy`).
COLUMNS: dict[type[models.Model], tuple[str, ...]] = {
    Category: ("id", "name", "slug", "parent", "position", "created"),
    Product: (
        "id",
        "name",
        "slug",
        "description",
        "status",
        "category",
        "tags",
        "attributes",
        "created",
        "updated",
    ),
    Variant: (
        "id",
        "product",
        "sku",
        "name",
        "options",
        "price",
        "compare_at_price",
        "cost_price",
        "stock",
        "low_stock_threshold",
        "position",
        "created",
    ),
    Customer: (
        "id",
        "email",
        "first_name",
        "last_name",
        "phone",
        "addresses",
        "tags",
        "accepts_marketing",
        "marketing_consent_at",
        "created",
    ),
    Order: (
        "id",
        "number",
        "customer",
        "email",
        "status",
        "currency",
        "subtotal",
        "discount_total",
        "tax_total",
        "shipping_total",
        "total",
        "refunded_total",
        "placed_at",
        "paid_at",
        "fulfilled_at",
        "delivered_at",
        "cancelled_at",
        "note",
        "created",
        "updated",
    ),
    OrderLine: (
        "id",
        "order",
        "variant",
        "product",
        "product_name",
        "variant_name",
        "sku",
        "unit_price",
        "quantity",
        "refunded_quantity",
        "total",
    ),
    OrderEvent: ("order", "type", "from_status", "to_status", "data", "created"),
    Refund: ("id", "order", "amount", "reason", "restock", "created"),
    RefundLine: ("refund", "order_line", "quantity", "amount"),
}


def cell(value: Any) -> str:
    """One value in COPY text format."""
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    text = (
        json.dumps(value, separators=(",", ":")) if isinstance(value, (list, dict)) else str(value)
    )
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class _Money(int):
    """Integer cents (exact), written as a decimal with two places."""

    def __str__(self) -> str:
        return f"{self // 100}.{self % 100:02d}"

    @property
    def decimal(self) -> Decimal:
        return Decimal(int(self)).scaleb(-2)


def _null(value: Any) -> Any:
    return "\\N" if value is None else value


def _percent_of(cents: int, percent: int) -> int:
    """`percent`% of a non-negative amount, rounded half up to the cent."""
    return (cents * percent + 50) // 100


def pg_array(items: Sequence[str]) -> str:
    return "{" + ",".join(items) + "}"


class _Weighted:
    """Weighted draws among items present from some period on (the catalog and the clientele
    grow: an order placed in period p picks among what exists by p)."""

    def __init__(self, items: Iterable[tuple[int, float, Any]]) -> None:
        ordered = sorted(items, key=lambda item: item[0])
        self._periods = [period for period, _, _ in ordered]
        self._values = [value for _, _, value in ordered]
        self._cum = list(accumulate(weight for _, weight, _ in ordered))
        self._prefixes: dict[int, tuple[list[Any], list[float]]] = {}

    def draw(self, rng: random.Random, period: int, k: int = 1) -> list[Any]:
        present = bisect_right(self._periods, period)
        prefix = self._prefixes.get(present)
        if prefix is None:
            prefix = self._prefixes[present] = (self._values[:present], self._cum[:present])
        values, cum = prefix
        if not values or cum[-1] <= 0:
            return []
        return rng.choices(values, cum_weights=cum, k=k)


@dataclass(frozen=True, eq=False)  # one per variant: identity is equality, and hashes fast
class _Sellable:
    variant_id: int
    product_id: int
    product_name: str
    variant_name: str
    sku: str
    price: int


@dataclass
class Plan:
    """What to generate: sizes and seed, the end of the window, the tenant's time zone and
    currency, the first id of each table's rows and the first order number."""

    size: SeedSize
    seed: int
    until: datetime
    zone: ZoneInfo
    currency: str
    first_ids: dict[type[models.Model], int]
    first_number: int
    tables: _Tables = field(default_factory=_Tables)

    @cached_property
    def start(self) -> datetime:
        return self.until - timedelta(days=WINDOW_DAYS)

    def rng(self, part: str) -> random.Random:
        return random.Random(f"{self.seed}/{part}")

    def period(self, moment: datetime) -> int:
        return max(0, (moment - self.start).days // PERIOD_DAYS)

    def moment_in_period(self, rng: random.Random, period: int) -> datetime:
        if period < 0:  # before the window: the business existed already
            return self.start - timedelta(seconds=rng.randrange(1, 400 * 86_400))
        low = period * PERIOD_DAYS * 86_400
        high = min((period + 1) * PERIOD_DAYS, WINDOW_DAYS) * 86_400
        return self.start + timedelta(seconds=rng.randrange(low, max(high, low + 1)))


def _catalog(plan: Plan) -> _Weighted:
    """Categories, products and variants; returns the sellable variants weighted by popularity."""
    rng = plan.rng("catalog")
    category_id = plan.first_ids[Category]
    leaves = []
    for top_position, (top_name, children) in enumerate(TAXONOMY.items()):
        top_id = category_id
        plan.tables.add(
            Category, top_id, top_name, slugify(top_name), None, top_position, plan.start
        )
        category_id += 1
        for position, leaf in enumerate(children):
            plan.tables.add(
                Category,
                category_id,
                leaf[0],
                slugify(f"{top_name} {leaf[0]}"),
                top_id,
                position,
                plan.start,
            )
            leaves.append((category_id, top_name, *leaf))
            category_id += 1

    sellable: list[tuple[int, float, _Sellable]] = []
    product_id, variant_id = plan.first_ids[Product], plan.first_ids[Variant]
    for index in range(plan.size.products):
        leaf_id, top_name, _, code, nouns, (low, high), kind = rng.choice(leaves)
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(nouns)}"
        # The first product is always on sale from the start, so any seed can take orders.
        status = (
            "active" if index == 0 else rng.choices(("active", "draft", "archived"), (90, 6, 4))[0]
        )
        period = (
            -1 if index == 0 or rng.random() < 0.8 else rng.randrange(WINDOW_DAYS // PERIOD_DAYS)
        )
        created = plan.moment_in_period(rng, period)
        popularity = rng.lognormvariate(0, 1.0)
        base = math.exp(rng.uniform(math.log(low), math.log(high)))
        tags = [top_name.lower()]
        if period >= (WINDOW_DAYS - 90) // PERIOD_DAYS:
            tags.append("new")
        if popularity > 3:
            tags.append("bestseller")
        on_sale = rng.random() < 0.15
        if on_sale:
            tags.append("sale")
        attributes = {"brand": rng.choice(BRANDS), "material": rng.choice(MATERIALS)}
        description = (
            f"The {name.lower()} by {attributes['brand']}, made of {attributes['material']}. "
            f"Part of our {top_name.lower()} range."
        )
        plan.tables.add(
            Product,
            product_id,
            name,
            f"{slugify(name)}-{index + 1}",
            description,
            status,
            leaf_id,
            pg_array(tags),
            attributes,
            created,
            created,
        )

        option = OPTIONS.get(kind)
        count = 1 if option is None else min(len(option[1]), rng.randint(1, 4))
        first = 0 if option is None else rng.randrange(len(option[1]) - count + 1)
        for position in range(count):
            price = max(100, round(base * (1.3**position if option and option[2] else 1)) * 100 - 1)
            compare_at = (
                _Money(_percent_of(price, rng.choice((120, 125, 130, 140)))) if on_sale else None
            )
            cost = _Money(_percent_of(price, rng.randrange(35, 66)))
            stock = rng.choices(
                (rng.randrange(20, 300), rng.randrange(1, 10), 0, rng.randrange(300, 1000)),
                (70, 15, 8, 7),
            )[0]
            if option is None:
                variant_name, options, suffix = "Default", {}, "STD"
            else:
                value = option[1][first + position]
                variant_name, options, suffix = value, {option[0]: value}, slugify(value).upper()
            sku = f"{code}-{index + 1:05d}-{suffix}"
            plan.tables.add(
                Variant,
                variant_id,
                product_id,
                sku,
                variant_name,
                options,
                _Money(price),
                compare_at,
                cost,
                stock,
                rng.choice((5, 10)),
                position,
                created,
            )
            if status != "draft":
                weight = popularity * rng.uniform(0.5, 1.5)
                sellable.append(
                    (
                        period,
                        weight,
                        _Sellable(variant_id, product_id, name, variant_name, sku, price),
                    )
                )
            variant_id += 1
        product_id += 1
    return _Weighted(sellable)


@dataclass
class _Buyer:
    id: int
    email: str
    created: datetime
    row: list[Any]


def _customers(plan: Plan) -> tuple[_Weighted, list[_Buyer]]:
    """Customers, stored as customers.services leaves them (lower-case email, E.164 phone,
    addresses with every key); returns them weighted by appetite, and all of them."""
    rng = plan.rng("customers")
    country, phone_prefix, cities = REGIONS.get(plan.currency, REGIONS["USD"])
    buyers, weighted = [], []
    periods = range(WINDOW_DAYS // PERIOD_DAYS + 1)
    for index in range(plan.size.customers):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first}.{last}.{index + 1}@example.{rng.choice(('com', 'org', 'net'))}".lower()
        # Some were customers before the window; sign-ups grow over it. The first customer
        # buys from the start, so any seed can take orders.
        period = (
            -1
            if index == 0 or rng.random() < 0.3
            else rng.choices(periods, [8 + p for p in periods])[0]
        )
        created = plan.moment_in_period(rng, period)
        address = dict.fromkeys(ADDRESS_KEYS, "") | {
            "line1": f"{rng.randrange(1, 400)} {rng.choice(STREETS)}",
            "city": rng.choice(cities),
            "postal_code": f"{rng.randrange(10_000, 99_999)}",
            "country": country,
        }
        accepts = rng.random() < 0.55
        tags = ["wholesale"] if rng.random() < 0.02 else []
        customer_id = plan.first_ids[Customer] + index
        row = [
            customer_id,
            email,
            first,
            last,
            f"{phone_prefix}{rng.randrange(10**6, 10**7)}",
            [address],
            pg_array(tags),
            accepts,
            created if accepts else None,
            created,
        ]
        buyer = _Buyer(customer_id, email, created, row)
        buyers.append(buyer)
        # A quarter never buy; the rest buy with a long-tailed appetite (capped: no one customer
        # makes a noticeable share of all orders).
        weight = min(rng.lognormvariate(0, 1.0), 6.0) if index == 0 or rng.random() >= 0.25 else 0.0
        weighted.append((period, weight, buyer))
    return _Weighted(weighted), buyers


def _day_weights(plan: Plan) -> list[float]:
    """Relative order volume per local day of the window: growth, weekends, Black Friday week,
    December, a quiet Christmas, day-to-day noise."""
    rng = plan.rng("days")
    first_day = plan.start.astimezone(plan.zone).date()
    weights = []
    for offset in range(WINDOW_DAYS + 1):
        day = first_day + timedelta(days=offset)
        weight = (1 + 1.2 * offset / WINDOW_DAYS) * MONTH_FACTORS[day.month - 1]
        if day.weekday() >= 5:
            weight *= 1.25
        if _black_friday(day.year) <= day <= _black_friday(day.year) + timedelta(days=3):
            weight *= 2.5
        elif day.month == 12 and 24 <= day.day <= 26:
            weight *= 0.6
        weights.append(weight * rng.uniform(0.85, 1.15))
    return weights


def _black_friday(year: int) -> date:
    november_first = date(year, 11, 1)
    thanksgiving = november_first + timedelta(days=(3 - november_first.weekday()) % 7 + 21)
    return thanksgiving + timedelta(days=1)


def _placed_times(plan: Plan, rng: random.Random) -> list[datetime]:
    first_day = plan.start.astimezone(plan.zone).date()
    days = rng.choices(
        range(WINDOW_DAYS + 1), cum_weights=list(accumulate(_day_weights(plan))), k=plan.size.orders
    )
    hours = rng.choices(range(24), HOUR_WEIGHTS, k=plan.size.orders)
    times = []
    for offset, hour in zip(days, hours, strict=True):
        day = first_day + timedelta(days=offset)
        local = datetime(
            day.year,
            day.month,
            day.day,
            hour,
            rng.randrange(60),
            rng.randrange(60),
            tzinfo=plan.zone,
        )
        moment = local.astimezone(UTC)
        if (
            not plan.start <= moment < plan.until
        ):  # the window's first and last local days are partial
            moment = plan.start + timedelta(seconds=rng.uniform(0, WINDOW_DAYS * 86_400 - 1))
        times.append(moment.replace(microsecond=0))
    times.sort()
    return times


@dataclass
class _Line:
    id: int
    item: _Sellable
    quantity: int
    refunded: int = 0

    @property
    def total(self) -> int:
        return self.item.price * self.quantity


@dataclass
class _Refund:
    id: int
    when: datetime
    amount: Decimal
    reason: str
    restock: bool
    lines: list[tuple[_Line, int, Decimal]]


@dataclass
class _Event:
    when: datetime
    type: str
    source: str
    target: str
    data: str = "{}"  # JSON, from our own values: nothing in it needs COPY escaping


def _orders(plan: Plan, products: _Weighted, customers: _Weighted, buyers: list[_Buyer]) -> None:
    rng = plan.rng("orders")
    tax_percent = TAX_PERCENT.get(plan.currency, DEFAULT_TAX_PERCENT)
    first_order: dict[int, datetime] = {}
    line_id, refund_id = plan.first_ids[OrderLine], plan.first_ids[Refund]
    for index, placed in enumerate(_placed_times(plan, rng)):
        order_id, number = plan.first_ids[Order] + index, plan.first_number + index
        period = plan.period(placed)
        lines: list[_Line] = []
        drawn = products.draw(rng, period, rng.choices((1, 2, 3, 4, 5), LINE_COUNT_WEIGHTS)[0])
        for item in dict.fromkeys(drawn):  # one line per variant
            lines.append(_Line(line_id, item, rng.choices((1, 2, 3, 4), QUANTITY_WEIGHTS)[0]))
            line_id += 1
        buyer = customers.draw(rng, period)[0]
        first_order.setdefault(buyer.id, placed)

        subtotal = sum(line.total for line in lines)
        discount = (
            _percent_of(subtotal, rng.choice(DISCOUNT_PERCENTS)) if rng.random() < 0.18 else 0
        )
        goods = subtotal - discount
        shipping = 0 if goods >= FREE_SHIPPING_CENTS else rng.choices(SHIPPING_CENTS, (85, 15))[0]
        tax = _percent_of(goods, tax_percent)  # shipping is not taxed (as orders.services)
        total = goods + tax + shipping

        events, stamps, refunds = _history(plan, rng, placed, lines, total, shipping, refund_id)
        refund_id += len(refunds)
        refunded_total = sum((refund.amount for refund in refunds), ZERO)
        # The hot tables are formatted here directly: every value is a number, a time or text
        # from the vocabulary: none needs COPY escaping.
        note = rng.choice(ORDER_NOTES) if rng.random() < 0.02 else ""
        plan.tables.formatted(
            Order,
            (
                f"{order_id}\t{number}\t{buyer.id}\t{buyer.email}\t{events[-1].target}\t{plan.currency}\t"
                f"{_Money(subtotal)}\t{_Money(discount)}\t{_Money(tax)}\t{_Money(shipping)}\t{_Money(total)}\t"
                f"{refunded_total}\t{placed}\t{_null(stamps.get('paid_at'))}\t{_null(stamps.get('fulfilled_at'))}\t"
                f"{_null(stamps.get('delivered_at'))}\t{_null(stamps.get('cancelled_at'))}\t{note}\t{placed}\t"
                f"{events[-1].when}"
            ),
        )
        for line in lines:
            item = line.item
            plan.tables.formatted(
                OrderLine,
                (
                    f"{line.id}\t{order_id}\t{item.variant_id}\t{item.product_id}\t{item.product_name}\t"
                    f"{item.variant_name}\t{item.sku}\t{_Money(item.price)}\t{line.quantity}\t{line.refunded}\t"
                    f"{_Money(line.total)}"
                ),
            )
        for event in events:
            plan.tables.formatted(
                OrderEvent,
                (
                    f"{order_id}\t{event.type}\t{event.source}\t{event.target}\t{event.data}\t{event.when}"
                ),
            )
        for refund in refunds:
            plan.tables.add(
                Refund,
                refund.id,
                order_id,
                refund.amount,
                refund.reason,
                refund.restock,
                refund.when,
            )
            for line, quantity, amount in refund.lines:
                plan.tables.add(RefundLine, refund.id, line.id, quantity, amount)

    for buyer in buyers:  # nobody orders before they exist
        first_placed = first_order.get(buyer.id)
        if first_placed is not None and buyer.created >= first_placed:
            created = first_placed - timedelta(minutes=rng.randrange(5, 600))
            buyer.row[-1] = created
            if buyer.row[-2] is not None:
                buyer.row[-2] = created
        plan.tables.add(Customer, *buyer.row)


def _history(
    plan: Plan,
    rng: random.Random,
    placed: datetime,
    lines: list[_Line],
    total: int,
    shipping: int,
    refund_id: int,
) -> tuple[list[_Event], dict[str, datetime], list[_Refund]]:
    """What happened to an order, as the order services would have recorded it (events, status
    timestamps, refunds): most go all the way to delivered, a few are cancelled (some after
    payment, refunded in full) or never paid, 4.5% of the paid ones get a refund; recent ones
    stop where `until` finds them."""
    events = [
        _Event(
            placed,
            "placed",
            "",
            order_status.PENDING,
            json.dumps({"total": str(_Money(total)), "lines": len(lines)}),
        )
    ]
    stamps: dict[str, datetime] = {}
    refunds: list[_Refund] = []
    minutes = rng.randrange
    fate = rng.random()
    if fate < 0.03:
        path = [(order_status.CANCELLED, minutes(10, 2_880))]
    elif fate < 0.04:
        path = [(order_status.PAID, minutes(1, 45)), (order_status.CANCELLED, minutes(60, 2_880))]
    elif fate < 0.045:
        path = []  # awaiting a payment that never came
    else:
        path = [
            (order_status.PAID, minutes(1, 45)),
            (order_status.FULFILLED, minutes(120, 4_320)),
            (order_status.DELIVERED, minutes(1_440, 8_640)),
        ]
    for target, delay in path:
        when = events[-1].when + timedelta(minutes=delay)
        if when >= plan.until:
            break
        source = events[-1].target
        stamps[order_status.STAMPS[target]] = when
        if target != order_status.CANCELLED:
            events.append(_Event(when, "status_changed", source, target))
            continue
        refunded = ZERO
        if source == order_status.PAID:  # cancelling a paid order refunds all of it
            refunds.append(
                _refund(
                    refund_id, when, lines, total, shipping, lines, total, "order cancelled", True
                )
            )
            refunded = refunds[-1].amount
        events.append(
            _Event(
                when,
                "cancelled",
                source,
                target,
                json.dumps({"restock": True, "refunded": str(refunded), "reason": ""}),
            )
        )

    when = events[-1].when + timedelta(minutes=rng.randrange(60, 20 * 1_440))
    if events[-1].target in order_status.REFUNDABLE and rng.random() < 0.045 and when < plan.until:
        units = sum(line.quantity for line in lines)
        if units == 1 or rng.random() < 1 / 3:  # everything back, shipping included
            refund = _refund(
                refund_id,
                when,
                lines,
                total,
                shipping,
                lines,
                total,
                rng.choice(REFUND_REASONS),
                rng.random() < 0.5,
            )
        else:  # some units of one line, worth their share of the order
            line = rng.choice(lines)
            part = _Line(
                line.id,
                line.item,
                rng.randint(1, line.quantity - 1 if len(lines) == 1 else line.quantity),
            )
            refund = _refund(
                refund_id,
                when,
                lines,
                total,
                shipping,
                [part],
                None,
                rng.choice(REFUND_REASONS),
                rng.random() < 0.5,
            )
        refunds.append(refund)
        target = order_status.after_refund(
            total=_Money(total).decimal, refunded_total=refund.amount
        )
        events.append(
            _Event(
                when,
                "refunded",
                events[-1].target,
                target,
                json.dumps(
                    {
                        "refund": refund.id,
                        "amount": str(refund.amount),
                        "restock": refund.restock,
                        "lines": {str(line.id): quantity for line, quantity, _ in refund.lines},
                    }
                ),
            )
        )
    return events, stamps, refunds


def _refund(
    refund_id: int,
    when: datetime,
    lines: list[_Line],
    total: int,
    shipping: int,
    returned: list[_Line],
    amount: int | None,
    reason: str,
    restock: bool,
) -> _Refund:
    """A refund of the `returned` units (their quantity) of an order's `lines`, worth `amount`
    or, without one, what those units are worth. As in orders.services: each line's share is
    the order's total without shipping split over the lines by value; units are worth their
    part of the share; `amount` is split over the units by their worth."""
    shares = dict(
        zip(
            (line.id for line in lines),
            line_shares(
                total=_Money(total).decimal,
                shipping=_Money(shipping).decimal,
                line_totals=[_Money(line.total).decimal for line in lines],
            ),
            strict=True,
        )
    )
    by_id = {line.id: line for line in lines}
    worth = [
        units_worth(
            shares[part.id],
            quantity=by_id[part.id].quantity,
            refunded=by_id[part.id].refunded,
            units=part.quantity,
        )
        for part in returned
    ]
    value = _Money(amount).decimal if amount is not None else sum(worth, ZERO)
    for part in returned:
        by_id[part.id].refunded += part.quantity
    return _Refund(
        refund_id,
        when,
        value,
        reason,
        restock,
        [
            (by_id[part.id], part.quantity, share)
            for part, share in zip(returned, allocate(value, worth), strict=True)
        ],
    )


def generate(plan: Plan) -> dict[type[models.Model], list[str]]:
    """The rows of every table as COPY text (tab-separated columns of COLUMNS[model])."""
    products = _catalog(plan)
    customers, buyers = _customers(plan)
    _orders(plan, products, customers, buyers)
    return plan.tables.rows
