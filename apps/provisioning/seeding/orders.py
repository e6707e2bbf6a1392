"""The demo orders, their lines, status history and refunds, drawn a column at a time as numpy
arrays (one generator seeded with (seed, "orders"), every draw made for all orders at once and
in a fixed sequence, so the same seed gives the same rows) and written as COPY text in batches
while COPY reads them. Money is integer cents; refunds alone, a few percent of the orders, are
valued one by one with the order services' own rules (`line_shares`, `units_worth`,
`allocate`) in Decimal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np

from apps.common.money import ZERO
from apps.customers.models import Customer
from apps.orders import status as order_status
from apps.orders.models import Order, OrderEvent, OrderLine, Refund, RefundLine
from apps.orders.services import allocate, line_shares, units_worth
from apps.provisioning.seeding.generate import (
    PERIOD_DAYS,
    WINDOW_DAYS,
    Catalog,
    Clientele,
    Money,
    Plan,
    Rows,
    batched,
    choices,
    day_weights,
    percent_of,
)
from apps.provisioning.seeding.vocabulary import (
    DEFAULT_TAX_PERCENT,
    DISCOUNT_PERCENTS,
    FREE_SHIPPING_CENTS,
    HOUR_WEIGHTS,
    LINE_COUNT_WEIGHTS,
    ORDER_NOTES,
    QUANTITY_WEIGHTS,
    REFUND_REASONS,
    SHIPPING_CENTS,
    TAX_PERCENT,
)

# The statuses, by their code in the arrays.
STATUSES = (
    order_status.PENDING,
    order_status.PAID,
    order_status.FULFILLED,
    order_status.DELIVERED,
    order_status.CANCELLED,
    order_status.PARTIALLY_REFUNDED,
    order_status.REFUNDED,
)
PENDING, PAID, FULFILLED, DELIVERED, CANCELLED = range(5)
STAMPED = {PAID: "paid_at", FULFILLED: "fulfilled_at", DELIVERED: "delivered_at"}
MAX_LINES = len(LINE_COUNT_WEIGHTS)
DAY = 86_400
EPOCH = date(1970, 1, 1)
_CENTS = [f"{cents:02d}" for cents in range(100)]
_NULL = "\\N"


def _middle(kind: str, source: str, target: str, data: str) -> str:
    """An order event's columns between its order and its time, as COPY text (our own values:
    nothing in them needs escaping)."""
    return f"\t{kind}\t{source}\t{target}\t{data}\t"


# The middle of each status change by (source, target) code; cancelling a pending order
# refunds nothing.
_CHANGES = np.empty((len(STATUSES), len(STATUSES)), dtype=object)
for _source, _source_status in enumerate(STATUSES):
    for _target, _target_status in enumerate(STATUSES):
        _CHANGES[_source, _target] = _middle(
            "status_changed", str(_source_status), str(_target_status), "{}"
        )
_CHANGES[PENDING, CANCELLED] = _middle(
    "cancelled",
    str(order_status.PENDING),
    str(order_status.CANCELLED),
    json.dumps({"restock": True, "refunded": str(ZERO), "reason": ""}),
)


def draw_orders(plan: Plan, catalog: Catalog, clientele: Clientele) -> np.ndarray:
    """The orders and what hangs off them, in `plan.rows`; returns when each customer was
    created (epoch seconds): nobody orders before they exist, so a customer whose first order
    came before the sign-up drawn for them signed up minutes to hours before it."""
    rng = plan.arrays("orders")
    count = plan.size.orders
    start = _epoch(plan.start)
    placed = _placed_times(plan, rng)
    period = (placed - start) // (PERIOD_DAYS * DAY)

    # 1 to 5 variants among those on sale then, by popularity; one line per variant.
    wanted = choices(rng, LINE_COUNT_WEIGHTS, count) + 1
    drawn = catalog.weighted.draw(rng, np.repeat(period, MAX_LINES)).reshape(count, MAX_LINES)
    kept = np.arange(MAX_LINES) < wanted[:, None]
    for column in range(1, MAX_LINES):
        kept[:, column] &= ~(drawn[:, :column] == drawn[:, column, None]).any(axis=1)
    item = drawn[kept]  # row by row: each order's lines in the order drawn
    line_count = kept.sum(axis=1)
    first_line = np.concatenate(([0], np.cumsum(line_count)))
    quantity = choices(rng, QUANTITY_WEIGHTS, len(item)) + 1
    line_total = catalog.prices[item] * quantity
    buyer = clientele.weighted.draw(rng, period)

    subtotal = np.add.reduceat(line_total, first_line[:-1])
    discounted = rng.random(count) < 0.18
    discount = np.where(discounted, percent_of(subtotal, rng.choice(DISCOUNT_PERCENTS, count)), 0)
    goods = subtotal - discount
    paid_shipping = np.asarray(SHIPPING_CENTS)[choices(rng, (85, 15), count)]
    shipping = np.where(goods >= FREE_SHIPPING_CENTS, 0, paid_shipping)
    # Shipping is not taxed (as orders.services).
    tax = percent_of(goods, TAX_PERCENT.get(plan.currency, DEFAULT_TAX_PERCENT))
    total = goods + tax + shipping
    notes = np.asarray(("", *ORDER_NOTES), dtype=object)
    note = notes[np.where(rng.random(count) < 0.02, rng.integers(1, len(notes), count), 0)]

    drawn_orders = _Orders(
        plan=plan,
        placed=placed,
        buyer=buyer,
        clientele=clientele,
        catalog=catalog,
        item=item,
        quantity=quantity,
        line_total=line_total,
        first_line=first_line,
        subtotal=subtotal,
        discount=discount,
        tax=tax,
        shipping=shipping,
        total=total,
        note=note,
    )
    drawn_orders.history(rng)
    drawn_orders.write()

    first_order = np.full(len(clientele.created), np.iinfo(np.int64).max)
    np.minimum.at(first_order, buyer, placed)
    before = rng.integers(5, 600, len(first_order)) * 60
    return np.where(
        clientele.created >= first_order, first_order - before, clientele.created
    ).astype(np.int64)


@dataclass
class _Line:
    id: int
    price: int
    quantity: int
    refunded: int = 0

    @property
    def total(self) -> int:
        return self.price * self.quantity


@dataclass
class _Orders:
    """The orders' columns (one entry per order, or per line for the line columns), the status
    history drawn for them, and their rows."""

    plan: Plan
    placed: np.ndarray
    buyer: np.ndarray
    clientele: Clientele
    catalog: Catalog
    item: np.ndarray
    quantity: np.ndarray
    line_total: np.ndarray
    first_line: np.ndarray
    subtotal: np.ndarray
    discount: np.ndarray
    tax: np.ndarray
    shipping: np.ndarray
    total: np.ndarray
    note: np.ndarray
    # Drawn by `history`: by order, and by line for the units refunded; times in epoch seconds.
    stamps: dict[str, np.ndarray] = field(init=False)
    status: np.ndarray = field(init=False)
    updated: np.ndarray = field(init=False)
    refunded: np.ndarray = field(init=False)
    refunded_units: np.ndarray = field(init=False)
    event_order: np.ndarray = field(init=False)
    event_middle: np.ndarray = field(init=False)
    event_when: np.ndarray = field(init=False)

    def history(self, rng: np.random.Generator) -> None:
        """What happened to each order, as the order services would have recorded it (events,
        status timestamps, refunds): most go all the way to delivered, a few are cancelled
        (some after payment, refunded in full) or never paid, 4.5% of the paid ones get a
        refund; recent ones stop where `until` finds them. Events fill five slots per order
        (placed, up to three status changes, a refund), in the order they happened."""
        count, until = len(self.placed), _epoch(self.plan.until)
        fate = np.searchsorted((0.03, 0.04, 0.045), rng.random(count), "right")
        cancelled, paid_then_cancelled, complete = fate == 0, fate == 1, fate == 3  # 2: unpaid
        paid = rng.integers(1, 45, count)
        delays = {
            "cancel": rng.integers(10, 2_880, count),
            "cancel paid": rng.integers(60, 2_880, count),
            "fulfil": rng.integers(120, 4_320, count),
            "deliver": rng.integers(1_440, 8_640, count),
        }
        target = np.full((count, 3), -1)
        delay = np.zeros((count, 3), dtype=np.int64)
        target[cancelled, 0], delay[cancelled, 0] = CANCELLED, delays["cancel"][cancelled]
        target[paid_then_cancelled, :2] = (PAID, CANCELLED)
        delay[paid_then_cancelled, 0] = paid[paid_then_cancelled]
        delay[paid_then_cancelled, 1] = delays["cancel paid"][paid_then_cancelled]
        target[complete] = (PAID, FULFILLED, DELIVERED)
        delay[complete] = np.stack(
            (paid[complete], delays["fulfil"][complete], delays["deliver"][complete]), axis=1
        )
        when = self.placed[:, None] + np.cumsum(delay, axis=1) * 60
        reached = np.logical_and.accumulate((target >= 0) & (when < until), axis=1)
        steps = reached.sum(axis=1)
        orders = np.arange(count)
        last = np.where(steps > 0, target[orders, steps - 1], PENDING)
        last_when = np.where(steps > 0, when[orders, steps - 1], self.placed)
        self.stamps = {
            name: np.where(
                (reached & (target == code)).any(axis=1),
                np.where(reached & (target == code), when, -1).max(axis=1),
                -1,
            )
            for code, name in (*STAMPED.items(), (CANCELLED, "cancelled_at"))
        }
        source = np.concatenate((np.full((count, 1), PENDING), target[:, :2]), axis=1)

        refund_when = last_when + rng.integers(60, 20 * 1_440, count) * 60
        later = (
            np.isin(last, (PAID, FULFILLED, DELIVERED))
            & (rng.random(count) < 0.045)
            & (refund_when < until)
        )
        draws = {
            "all": rng.random(count) < 1 / 3,
            "reason": rng.integers(len(REFUND_REASONS), size=count),
            "restock": rng.random(count) < 0.5,
            "line": rng.random(count),
            "units": rng.random(count),
        }

        placed_middles = [
            _middle(
                "placed",
                "",
                str(order_status.PENDING),
                f'{{"total": "{money}", "lines": {lines}}}',
            )
            for money, lines in zip(
                _money(self.total), np.diff(self.first_line).tolist(), strict=True
            )
        ]
        middle = np.empty((count, 5), dtype=object)
        middle[:, 0] = placed_middles
        middle[:, 1:4] = _CHANGES[source, np.maximum(target, 0)]
        self.status, self.updated = last.copy(), last_when.copy()
        self.refunded = np.zeros(count, dtype=np.int64)
        self.refunded_units = np.zeros(len(self.item), dtype=np.int64)
        refunds: list[str] = []
        refund_lines: list[str] = []
        refund_id = self.plan.first_ids[Refund]
        first_line_id = self.plan.first_ids[OrderLine]
        for order in np.nonzero((paid_then_cancelled & reached[:, 1]) | later)[0].tolist():
            own = slice(self.first_line[order], self.first_line[order + 1])
            lines = [
                _Line(first_line_id + index, price, units)
                for index, price, units in zip(
                    range(own.start, own.stop),
                    self.catalog.prices[self.item[own]].tolist(),
                    self.quantity[own].tolist(),
                    strict=True,
                )
            ]
            total, shipping = int(self.total[order]), int(self.shipping[order])
            if not later[order]:  # cancelling a paid order refunds all of it
                moment, reason, restock = int(when[order, 1]), "order cancelled", True
                amount, parts = _refund(lines, total, shipping, lines, total)
                middle[order, 2] = _middle(
                    "cancelled",
                    str(order_status.PAID),
                    str(order_status.CANCELLED),
                    json.dumps({"restock": True, "refunded": str(amount), "reason": ""}),
                )
            else:
                moment = int(refund_when[order])
                reason = REFUND_REASONS[draws["reason"][order]]
                restock = bool(draws["restock"][order])
                if sum(line.quantity for line in lines) == 1 or draws["all"][order]:
                    # everything back, shipping included
                    amount, parts = _refund(lines, total, shipping, lines, total)
                else:  # some units of one line, worth their share of the order
                    line = lines[int(draws["line"][order] * len(lines))]
                    most = line.quantity - 1 if len(lines) == 1 else line.quantity
                    units = 1 + int(draws["units"][order] * most)
                    amount, parts = _refund(
                        lines, total, shipping, [_Line(line.id, line.price, units)], None
                    )
                after = order_status.after_refund(total=Money(total).decimal, refunded_total=amount)
                middle[order, 4] = _middle(
                    "refunded",
                    str(STATUSES[last[order]]),
                    str(after),
                    json.dumps(
                        {
                            "refund": refund_id,
                            "amount": str(amount),
                            "restock": restock,
                            "lines": {str(line_id): units for line_id, units, _ in parts},
                        }
                    ),
                )
                self.status[order], self.updated[order] = STATUSES.index(after), moment
            self.refunded[order] = int(amount.scaleb(2))
            for line in lines:
                self.refunded_units[line.id - first_line_id] = line.refunded
            # Numbers, a time and a reason from the vocabulary: nothing needs COPY escaping.
            refunds.append(
                f"{refund_id}\t{self.plan.first_ids[Order] + order}\t{amount}\t{reason}\t"
                f"{'t' if restock else 'f'}\t{datetime.fromtimestamp(moment, UTC).isoformat()}"
            )
            refund_lines.extend(
                f"{refund_id}\t{line_id}\t{units}\t{share}" for line_id, units, share in parts
            )
            refund_id += 1
        self.plan.add(Refund, refunds)
        self.plan.add(RefundLine, refund_lines)

        happened = np.concatenate((np.ones((count, 1), dtype=bool), reached, later[:, None]), 1)
        self.event_order = np.nonzero(happened)[0]
        self.event_middle = middle[happened]
        self.event_when = np.concatenate((self.placed[:, None], when, refund_when[:, None]), 1)[
            happened
        ]

    def write(self) -> None:
        """The rows of the orders, their lines and events, as COPY reads them."""
        rows = self.plan.rows
        rows[Order] = Rows(len(self.placed), batched(len(self.placed), self._order_rows))
        rows[OrderLine] = Rows(len(self.item), batched(len(self.item), self._line_rows))
        events = len(self.event_order)
        rows[OrderEvent] = Rows(events, batched(events, self._event_rows))

    def _order_rows(self, start: int, stop: int) -> list[str]:
        part = slice(start, stop)
        plan = self.plan
        customer = self.buyer[part]
        placed = _times(self.placed[part])
        columns = [
            _ints(np.arange(start, stop) + plan.first_ids[Order]),
            _ints(np.arange(start, stop) + plan.first_number),
            _ints(customer + plan.first_ids[Customer]),
            self.clientele.emails[customer].tolist(),
            [str(STATUSES[code]) for code in self.status[part].tolist()],
            [plan.currency] * (stop - start),
            _money(self.subtotal[part]),
            _money(self.discount[part]),
            _money(self.tax[part]),
            _money(self.shipping[part]),
            _money(self.total[part]),
            _money(self.refunded[part]),
            placed,
            *(_times(self.stamps[name][part]) for name in (*STAMPED.values(), "cancelled_at")),
            self.note[part].tolist(),
            placed,
            _times(self.updated[part]),
        ]
        return ["\t".join(values) for values in zip(*columns, strict=True)]

    def _line_rows(self, start: int, stop: int) -> list[str]:
        part = slice(start, stop)
        order = np.searchsorted(self.first_line, np.arange(start, stop), "right") - 1
        columns = [
            _ints(np.arange(start, stop) + self.plan.first_ids[OrderLine]),
            _ints(order + self.plan.first_ids[Order]),
            self.catalog.line_text[self.item[part]].tolist(),
            _ints(self.quantity[part]),
            _ints(self.refunded_units[part]),
            _money(self.line_total[part]),
        ]
        return ["\t".join(values) for values in zip(*columns, strict=True)]

    def _event_rows(self, start: int, stop: int) -> list[str]:
        part = slice(start, stop)
        return [
            f"{order}{middle}{moment}"
            for order, middle, moment in zip(
                _ints(self.event_order[part] + self.plan.first_ids[Order]),
                self.event_middle[part].tolist(),
                _times(self.event_when[part]),
                strict=True,
            )
        ]


def _refund(
    lines: list[_Line], total: int, shipping: int, returned: list[_Line], amount: int | None
) -> tuple[Decimal, list[tuple[int, int, Decimal]]]:
    """A refund of the `returned` units (their quantity) of an order's `lines`, worth `amount`
    or, without one, what those units are worth: its amount and (line id, units, amount) for
    each line. As in orders.services: each line's share is the order's total without shipping
    split over the lines by value; units are worth their part of the share; the amount is split
    over the units by their worth. Counts the units as refunded on `lines`."""
    shares = dict(
        zip(
            (line.id for line in lines),
            line_shares(
                total=Money(total).decimal,
                shipping=Money(shipping).decimal,
                line_totals=[Money(line.total).decimal for line in lines],
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
    value = Money(amount).decimal if amount is not None else sum(worth, ZERO)
    for part in returned:
        by_id[part.id].refunded += part.quantity
    return value, [
        (part.id, part.quantity, share)
        for part, share in zip(returned, allocate(value, worth), strict=True)
    ]


def _placed_times(plan: Plan, rng: np.random.Generator) -> np.ndarray:
    """When the orders were placed (epoch seconds, in order): a local day by the day weights,
    an hour of the tenant's day by HOUR_WEIGHTS, any minute and second."""
    count = plan.size.orders
    day = choices(rng, day_weights(plan), count)
    hour = choices(rng, HOUR_WEIGHTS, count)
    minute, second = rng.integers(0, 60, count), rng.integers(0, 60, count)
    first_day = plan.start.astimezone(plan.zone).date()
    moment = local_to_utc(plan.zone, first_day, day, hour, minute, second)
    start, until = _epoch(plan.start), _epoch(plan.until)
    # The window's first and last local days are partial: what falls outside goes anywhere.
    anywhere = start + rng.uniform(0, WINDOW_DAYS * DAY - 1, count).astype(np.int64)
    moment = np.where((moment < start) | (moment >= until), anywhere, moment)
    return np.sort(moment)


def local_to_utc(
    zone: ZoneInfo,
    first_day: date,
    day: np.ndarray,
    hour: np.ndarray,
    minute: np.ndarray,
    second: np.ndarray,
) -> np.ndarray:
    """Local times in `zone` (`day` days after `first_day`, at `hour`:`minute`:`second`) as
    epoch seconds, read as `datetime(..., tzinfo=zone)` reads them (PEP 495 fold 0: a time
    the clock skipped or repeated takes the offset before the change). The offset is looked up
    by local day and hour; hours whose offset changes within them are converted one by one."""
    days = int(day.max()) + 1 if len(day) else 0
    offsets = np.zeros((days, 24), dtype=np.int64)
    uneven = np.zeros((days, 24), dtype=bool)

    def offset(when: date, hour: int, minute: int = 0, second: int = 0) -> int:
        local = datetime(when.year, when.month, when.day, hour, minute, second, tzinfo=zone)
        return int(local.utcoffset().total_seconds())  # type: ignore[union-attr]

    for index in range(days):
        when = first_day + timedelta(days=index)
        offsets[index] = offset(when, 0)
        if offsets[index, 0] == offset(when, 23, 59, 59):  # no clock change that day
            continue
        for at in range(24):
            offsets[index, at] = offset(when, at)
            uneven[index, at] = offsets[index, at] != offset(when, at, 59, 59)

    local = ((first_day - EPOCH).days + day) * DAY + hour * 3_600 + minute * 60 + second
    moment = local - offsets[day, hour]
    for index in np.nonzero(uneven[day, hour])[0].tolist():
        when = first_day + timedelta(days=int(day[index]))
        moment[index] = datetime(
            when.year,
            when.month,
            when.day,
            int(hour[index]),
            int(minute[index]),
            int(second[index]),
            tzinfo=zone,
        ).timestamp()
    return moment


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _ints(values: np.ndarray) -> list[str]:
    return list(map(str, values.tolist()))


def _money(cents: np.ndarray) -> list[str]:
    """Cents as COPY text: a decimal with two places."""
    return [
        f"{whole}.{_CENTS[part]}"
        for whole, part in zip((cents // 100).tolist(), (cents % 100).tolist(), strict=True)
    ]


def _times(seconds: np.ndarray) -> list[str]:
    """Epoch seconds as COPY text (ISO 8601, UTC), NULL where negative: each day's date written
    once, joined to the time of day (numpy's own formatting, per value, takes three times as
    long)."""
    known = seconds >= 0
    if not known.any():
        return [_NULL] * len(seconds)
    day = seconds // DAY
    first = day[known].min()
    dates = np.arange(first, day.max() + 1).astype("datetime64[D]")
    text = np.datetime_as_string(dates).astype(object)[np.where(known, day - first, 0)]
    text += _times_of_day()[seconds % DAY]
    text[~known] = _NULL
    return text.tolist()


@cache
def _times_of_day() -> np.ndarray:
    return np.asarray(
        [
            f"T{hour:02d}:{minute:02d}:{second:02d}Z"
            for hour in range(24)
            for minute in range(60)
            for second in range(60)
        ],
        dtype=object,
    )
