"""The demo data as COPY text: generators for the catalog, customers and orders of one tenant.

The catalog and the customers (hundreds and thousands of rows) are drawn row by row, each part
from its own `random.Random` seeded with (seed, part). The orders and what hangs off them (lines,
status history, refunds: hundreds of thousands of rows) are drawn a column at a time as numpy
arrays from a generator seeded with (seed, "orders") (`apps.provisioning.seeding.orders`), and
become COPY text in batches while COPY reads them, so memory holds the arrays and one batch of
text. The same seed and sizes give the same rows. Money is integer cents (exact) where the
generators add and take percentages, and Decimal where the order services' own rules
(`allocate`, `line_shares`, `units_worth`) value refunds.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from hashlib import sha256
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from django.db import models
from django.utils.text import slugify

from apps.catalog.models import Category, Product, Variant
from apps.customers.models import Customer
from apps.customers.services import ADDRESS_KEYS
from apps.orders.models import Order, OrderEvent, OrderLine, Refund, RefundLine
from apps.provisioning.seeding.vocabulary import (
    ADJECTIVES,
    BRANDS,
    FIRST_NAMES,
    LAST_NAMES,
    MATERIALS,
    MONTH_FACTORS,
    OPTIONS,
    REGIONS,
    STREETS,
    TAXONOMY,
)

WINDOW_DAYS = 730
PERIOD_DAYS = 30  # customers and products appear period by period; orders pick among those present
# Rows of COPY text made at a time: few enough that COPY waits little for each table's first.
BATCH_ROWS = 10_000


@dataclass(frozen=True)
class SeedSize:
    products: int = 500
    customers: int = 5000
    orders: int = 100_000


@dataclass
class Rows:
    """One table's rows as COPY text (tab-separated columns of COLUMNS[model], no line ends),
    `count` of them, in batches made as they are read (once)."""

    count: int
    batches: Iterable[list[str]]


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


def row(*values: Any) -> str:
    """One row in COPY text format."""
    return "\t".join(map(cell, values))


class Money(int):
    """Integer cents (exact), written as a decimal with two places."""

    def __str__(self) -> str:
        return f"{self // 100}.{self % 100:02d}"

    @property
    def decimal(self) -> Decimal:
        return Decimal(int(self)).scaleb(-2)


def percent_of(cents: Any, percent: Any) -> Any:
    """`percent`% of a non-negative amount, rounded half up to the cent (ints or int arrays)."""
    return (cents * percent + 50) // 100


def pg_array(items: Sequence[str]) -> str:
    return "{" + ",".join(items) + "}"


def batched(count: int, make: Any) -> Iterator[list[str]]:
    """`make(start, stop)` over `count` rows, BATCH_ROWS at a time."""
    for start in range(0, count, BATCH_ROWS):
        yield make(start, min(start + BATCH_ROWS, count))


class Weighted:
    """Weighted draws among items present from some period on (the catalog and the clientele
    grow: an order placed in period p picks among what exists by p), many at once."""

    def __init__(self, periods: Sequence[int], weights: Sequence[float]) -> None:
        order = np.argsort(np.asarray(periods, dtype=np.int64), kind="stable")
        self._items = order
        self._periods = np.asarray(periods, dtype=np.int64)[order]
        self._cum = np.cumsum(np.asarray(weights, dtype=np.float64)[order])

    def draw(self, rng: np.random.Generator, periods: np.ndarray) -> np.ndarray:
        """One item (its index as given) for each of `periods`, among the items present then;
        the first item must be present from the start, with a weight."""
        present = np.searchsorted(self._periods, periods, side="right")
        picks = np.searchsorted(
            self._cum, rng.random(len(periods)) * self._cum[present - 1], "right"
        )
        return self._items[np.minimum(picks, present - 1)]


def choices(rng: np.random.Generator, weights: Sequence[float], k: int) -> np.ndarray:
    """`k` indexes into `weights`, drawn in proportion to them."""
    cum = np.cumsum(np.asarray(weights, dtype=np.float64))
    return np.minimum(np.searchsorted(cum, rng.random(k) * cum[-1], "right"), len(cum) - 1)


@dataclass(frozen=True)
class Catalog:
    """The sellable variants: weighted by popularity, their prices (cents), and the columns an
    order line copies from them (variant, product, names, sku, unit price) as COPY text."""

    weighted: Weighted
    prices: np.ndarray
    line_text: np.ndarray


@dataclass
class Clientele:
    """The customers: weighted by appetite, their emails, their rows (`created` last, the
    marketing consent time before it) and when they were created (epoch seconds)."""

    weighted: Weighted
    emails: np.ndarray
    rows: list[list[Any]]
    created: np.ndarray


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
    rows: dict[type[models.Model], Rows] = field(default_factory=dict)

    @cached_property
    def start(self) -> datetime:
        return self.until - timedelta(days=WINDOW_DAYS)

    def rng(self, part: str) -> random.Random:
        return random.Random(f"{self.seed}/{part}")

    def arrays(self, part: str) -> np.random.Generator:
        """A numpy generator for `part`, seeded with (seed, part) as `rng` is."""
        digest = sha256(f"{self.seed}/{part}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:16], "big"))

    def moment_in_period(self, rng: random.Random, period: int) -> datetime:
        if period < 0:  # before the window: the business existed already
            return self.start - timedelta(seconds=rng.randrange(1, 400 * 86_400))
        low = period * PERIOD_DAYS * 86_400
        high = min((period + 1) * PERIOD_DAYS, WINDOW_DAYS) * 86_400
        return self.start + timedelta(seconds=rng.randrange(low, max(high, low + 1)))

    def add(self, model: type[models.Model], rows: list[str]) -> None:
        self.rows[model] = Rows(len(rows), [rows])


def catalog(plan: Plan) -> Catalog:
    """Categories, products and variants; returns the sellable variants weighted by
    popularity."""
    rng = plan.rng("catalog")
    category_id = plan.first_ids[Category]
    leaves = []
    categories = []
    for top_position, (top_name, children) in enumerate(TAXONOMY.items()):
        top_id = category_id
        categories.append(row(top_id, top_name, slugify(top_name), None, top_position, plan.start))
        category_id += 1
        for position, leaf in enumerate(children):
            categories.append(
                row(
                    category_id,
                    leaf[0],
                    slugify(f"{top_name} {leaf[0]}"),
                    top_id,
                    position,
                    plan.start,
                )
            )
            leaves.append((category_id, top_name, *leaf))
            category_id += 1
    plan.add(Category, categories)

    products: list[str] = []
    variants: list[str] = []
    periods: list[int] = []
    weights: list[float] = []
    prices: list[int] = []
    line_text: list[str] = []
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
        products.append(
            row(
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
        )

        option = OPTIONS.get(kind)
        count = 1 if option is None else min(len(option[1]), rng.randint(1, 4))
        first = 0 if option is None else rng.randrange(len(option[1]) - count + 1)
        for position in range(count):
            price = max(100, round(base * (1.3**position if option and option[2] else 1)) * 100 - 1)
            compare_at = (
                Money(percent_of(price, rng.choice((120, 125, 130, 140)))) if on_sale else None
            )
            cost = Money(percent_of(price, rng.randrange(35, 66)))
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
            variants.append(
                row(
                    variant_id,
                    product_id,
                    sku,
                    variant_name,
                    options,
                    Money(price),
                    compare_at,
                    cost,
                    stock,
                    rng.choice((5, 10)),
                    position,
                    created,
                )
            )
            if status != "draft":
                periods.append(period)
                weights.append(popularity * rng.uniform(0.5, 1.5))
                prices.append(price)
                line_text.append(row(variant_id, product_id, name, variant_name, sku, Money(price)))
            variant_id += 1
        product_id += 1
    plan.add(Product, products)
    plan.add(Variant, variants)
    return Catalog(
        Weighted(periods, weights),
        np.asarray(prices, dtype=np.int64),
        np.asarray(line_text, dtype=object),
    )


def customers(plan: Plan) -> Clientele:
    """Customers, stored as customers.services leaves them (lower-case email, E.164 phone,
    addresses with every key); their rows are written once the orders are known
    (`write_customers`: nobody orders before they exist)."""
    rng = plan.rng("customers")
    country, phone_prefix, cities = REGIONS.get(plan.currency, REGIONS["USD"])
    rows, emails, created_at, periods, weights = [], [], [], [], []
    choosable = range(WINDOW_DAYS // PERIOD_DAYS + 1)
    for index in range(plan.size.customers):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first}.{last}.{index + 1}@example.{rng.choice(('com', 'org', 'net'))}".lower()
        # Some were customers before the window; sign-ups grow over it. The first customer
        # buys from the start, so any seed can take orders.
        period = (
            -1
            if index == 0 or rng.random() < 0.3
            else rng.choices(choosable, [8 + p for p in choosable])[0]
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
        rows.append(
            [
                plan.first_ids[Customer] + index,
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
        )
        emails.append(email)
        created_at.append(int(created.timestamp()))
        periods.append(period)
        # A quarter never buy; the rest buy with a long-tailed appetite (capped: no one customer
        # makes a noticeable share of all orders).
        weights.append(
            min(rng.lognormvariate(0, 1.0), 6.0) if index == 0 or rng.random() >= 0.25 else 0.0
        )
    return Clientele(
        Weighted(periods, weights),
        np.asarray(emails, dtype=object),
        rows,
        np.asarray(created_at, dtype=np.int64),
    )


def write_customers(plan: Plan, clientele: Clientele, created: np.ndarray) -> None:
    """The customers' rows, created at `created` (epoch seconds): a customer whose first order
    came before the sign-up drawn for them signed up shortly before it."""
    rows = []
    for values, moved, when in zip(
        clientele.rows, (created != clientele.created).tolist(), created.tolist(), strict=True
    ):
        if moved:
            values[-1] = datetime.fromtimestamp(when, UTC)
            if values[-2] is not None:
                values[-2] = values[-1]
        rows.append(row(*values))
    plan.add(Customer, rows)


def day_weights(plan: Plan) -> list[float]:
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
