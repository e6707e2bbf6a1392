"""Demo data for one tenant: a category tree, products with variants, customers and two years of
orders with their lines, status history and refunds (`manage.py seed_demo`, `make run`, benches).

Realistic: orders grow over the two years, peak on weekends, around Black Friday and in December,
follow the hours of the tenant's day; a few customers buy often, most now and then, some never;
lines, discounts, tax, shipping and refunds add up to the cent. Deterministic: the catalog and
the customers draw from their own `random.Random`, the orders and all that hangs off them from a
numpy generator, each seeded with (seed, part), so the same seed, sizes and `until` give the
same rows, order events and refunds included, in any tenant of the same currency (tax,
addresses) and time zone (local hours); ids, and the ids events name, are the same too when the
tables' id sequences start alike (a fresh tenant, or --reset, which restarts them). Times count
back from `until`, by default the start of today in the tenant's time zone, not now: a clock
reading moves the orders at the end of the window, and every draw after them, from one run to
the next; so the same seed gives the same rows all day (the demo's orders end at the tenant's
last midnight).

Fast: the orders, lines, status history and refunds are drawn a column at a time as numpy arrays
(`orders`), and their COPY text is written in batches, on a thread, while PostgreSQL COPY reads it,
in one transaction, foreign keys and secondary indexes set aside meanwhile; what follows from the
orders (customer statistics, the order counter) is then set in SQL from the orders themselves. Of a
seed of 100,000 orders, Python and numpy take about a fifth; the rest is PostgreSQL's: COPY
into logged, keyed tables, the indexes and keys put back, the rollups (bench/seed.py).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.contrib.postgres.fields import ArrayField
from django.db import connection, models, transaction
from django_tenants.utils import tenant_context

from apps.analytics import rollups
from apps.audit import services as audit
from apps.catalog.models import Category, Product, ProductImage, Variant
from apps.common.days import day_start, local_today
from apps.common.errors import UserError, error_codes
from apps.customers.models import Customer, CustomerNote
from apps.orders import status as order_status
from apps.orders.models import Order, OrderCounter, OrderEvent, OrderLine, Refund, RefundLine
from apps.provisioning.seeding.generate import (
    COLUMNS,
    Plan,
    Rows,
    SeedSize,
    catalog,
    cell,
    customers,
    pg_array,
    write_customers,
)
from apps.provisioning.seeding.orders import draw_orders

if TYPE_CHECKING:
    from tenants.models import Tenant

# Seeding is a command, not an API call: its codes reach no GraphQL enum.
SeedErrorCode = error_codes("Seed", "NOT_EMPTY")

__all__ = ["SeedResult", "SeedSize", "commerce_rows", "generate_rows", "seed_demo"]

# The tables a seed writes.
LOADED = (Category, Product, Variant, Customer, Order, OrderLine, OrderEvent, Refund, RefundLine)
# The tenant's commerce tables: a seed needs them empty, --reset empties them.
COMMERCE = (*LOADED, ProductImage, CustomerNote)


def commerce_rows() -> dict[str, int]:
    """Rows in the current tenant's commerce tables, by table (only the non-empty ones)."""
    counts = {model._meta.db_table: model.objects.count() for model in COMMERCE}
    return {table: count for table, count in counts.items() if count}


@dataclass(frozen=True)
class SeedResult:
    until: datetime  # the end of the orders' window (UTC): what the seed's times count back from
    rows: dict[str, int]  # by table
    # by phase: prepare, generate (the arrays), load (COPY), write (the COPY text, as COPY reads
    # it: not in load), keys, derive, commit
    seconds: dict[str, float]


def seed_demo(
    *,
    tenant: Tenant,
    size: SeedSize,
    seed: int = 42,
    reset: bool = False,
    until: datetime | None = None,
) -> SeedResult:
    """Fill `tenant` with demo data, all or nothing. Refuses (UserError NOT_EMPTY) when the
    tenant has commerce data already, unless `reset`, which deletes it first."""
    for name in ("products", "customers", "orders"):
        if getattr(size, name) < 0:
            raise UserError(f"{name} cannot be negative.", field=name, code=SeedErrorCode.NEGATIVE)
    if size.orders and not (size.products and size.customers):
        raise UserError(
            "Orders need products and customers: give --products and --customers.",
            field="orders",
            code=SeedErrorCode.INVALID,
        )
    until = (until or day_start(tenant, local_today(tenant))).astimezone(UTC).replace(microsecond=0)
    seconds: dict[str, float] = {}
    lap = _stopwatch(seconds)
    with tenant_context(tenant):
        with transaction.atomic(), connection.cursor() as cursor:
            plan = _prepare(cursor, tenant, size=size, seed=seed, reset=reset, until=until)
            lap("prepare")
            generated = generate_rows(plan)
            lap("generate")
            waiting = [0.0]
            with _keys_and_indexes_set_aside(cursor, LOADED):
                rows = {
                    model._meta.db_table: _copy(cursor, model, generated.pop(model), waiting)
                    for model in LOADED
                }
                lap("load")
            # The big tables' text is written while COPY reads it: the time COPY waited for it
            # counts as generation.
            seconds["write"] = round(waiting[0], 3)
            seconds["load"] = round(seconds["load"] - waiting[0], 3)
            lap("keys")
            # The rollups sort every order line of the two years: let this transaction do it in
            # memory (the default 4MB spilled 10MB to temporary files, the rollups' CTE 6MB).
            cursor.execute("SET LOCAL work_mem = '64MB'")
            _derive(cursor)
            rollups.rebuild(time_zone=tenant.time_zone)
            audit.record(
                actor=None,
                action="demo.seed",
                changes={"seed": seed, "reset": reset, "until": until.isoformat(), "rows": rows},
            )
            lap("derive")
        lap("commit")
    return SeedResult(until=until, rows=rows, seconds=seconds)


def _stopwatch(seconds: dict[str, float]) -> Callable[[str], None]:
    started = [time.perf_counter()]

    def lap(phase: str) -> None:
        now = time.perf_counter()
        seconds[phase] = round(now - started[0], 3)
        started[0] = now

    return lap


def _prepare(
    cursor, tenant: Tenant, *, size: SeedSize, seed: int, reset: bool, until: datetime
) -> Plan:
    """Lock the tenant's commerce tables, refuse or empty them, and set up the generators."""
    tables = ", ".join(_table(model) for model in COMMERCE)
    # Two seeds (or a seed and a shop) of one tenant never interleave.
    cursor.execute(f"LOCK TABLE {tables}, {_table(OrderCounter)} IN EXCLUSIVE MODE")
    present = commerce_rows()
    if present and not reset:
        listed = ", ".join(f"{count} {table}" for table, count in present.items())
        raise UserError(
            f"Tenant {tenant.slug} has data already ({listed}); "
            "pass --reset to delete it and seed again.",
            field="reset",
            code=SeedErrorCode.NOT_EMPTY,
        )
    if reset:
        # Deferred foreign-key checks of earlier writes in this transaction (a test's) would
        # stop TRUNCATE: run them now. CASCADE: rows of other apps that point at these
        # (payments, say) go with them.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        OrderCounter.objects.update_or_create(pk=1, defaults={"last": 0})
    counter = OrderCounter.objects.get_or_create(pk=1)[0]
    return Plan(
        size=size,
        seed=seed,
        until=until,
        zone=ZoneInfo(tenant.time_zone),
        currency=tenant.currency,
        first_ids={
            model: _next_id(cursor, model)
            for model in (Category, Product, Variant, Customer, Order, OrderLine, Refund)
        },
        first_number=counter.last + 1,
    )


@contextmanager
def _keys_and_indexes_set_aside(cursor, tables: Sequence[type[models.Model]]) -> Iterator[None]:
    """Load into `tables` without their foreign keys and secondary indexes, then put them back
    as they were (same names and definitions): building an index once and checking a key with
    one join are several times faster than upkeep and a trigger per row. Primary keys and unique
    constraints stay. All in the seed's transaction, so a failure leaves them untouched (and the
    tenant's readers of these tables wait for the seed to end)."""
    names = [model._meta.db_table for model in tables]
    # Deferred checks of earlier writes in this transaction (a test's) would stop ALTER TABLE.
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cursor.execute(
        """
        SELECT format('ALTER TABLE %%s DROP CONSTRAINT %%I', conrelid::regclass, conname),
               format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s', conrelid::regclass, conname,
                      pg_get_constraintdef(oid))
          FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY(%s::regclass[])
        UNION ALL
        SELECT format('DROP INDEX %%s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid)
          FROM pg_index i
         WHERE i.indrelid = ANY(%s::regclass[]) AND NOT EXISTS (
               SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
    """,
        [names, names],
    )
    statements = cursor.fetchall()
    for drop, _ in statements:
        cursor.execute(drop)
    yield
    for _, create in reversed(statements):  # indexes first, then the keys (checked as they come)
        cursor.execute(create)
    cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def _table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _next_id(cursor, model: type[models.Model]) -> int:
    """The first id of the rows we load; `_derive` moves the sequence past the last one."""
    cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [model._meta.db_table])
    return cursor.fetchone()[0]


def generate_rows(plan: Plan) -> dict[type[models.Model], Rows]:
    """The rows of every table as COPY text (tab-separated columns of COLUMNS[model])."""
    sellable = catalog(plan)
    clientele = customers(plan)
    write_customers(plan, clientele, draw_orders(plan, sellable, clientele))
    return plan.rows


def _copy(cursor, model: type[models.Model], rows: Rows, waiting: list[float]) -> int:
    """COPY `rows` into `model`'s table as they are written, adding the model defaults of the
    columns the seed leaves alone; the seconds COPY waits for text are added to `waiting`."""
    if rows.count:
        concrete = {f.name: f for f in model._meta.concrete_fields}
        fields = [concrete[name] for name in COLUMNS[model]]
        defaults = [f for f in model._meta.concrete_fields if f not in fields and not f.primary_key]
        end = "".join("\t" + _default(f) for f in defaults) + "\n"
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields + defaults)
        reader = _Reader(((end.join(batch) + end).encode() for batch in rows.batches), waiting)
        try:
            # `size` by position: Django's debug cursor (DEBUG, as `make run` has it) passes on
            # positional arguments only.
            cursor.copy_expert(f"COPY {_table(model)} ({columns}) FROM STDIN", reader, READ_BYTES)
        finally:
            reader.close()
    return rows.count


READ_BYTES = 1 << 23  # what COPY asks the reader for at a time: a batch of rows, about


class _Reader:
    """A file that COPY reads: the chunks of `chunks`, written by a thread of their own while
    PostgreSQL parses the ones before (psycopg2 lets go of the GIL while it sends), at most two
    ahead, so memory holds three; the seconds COPY waits for one are added to `waiting`."""

    def __init__(self, chunks: Iterator[bytes], waiting: list[float]) -> None:
        self._ready: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=2)
        self._closed = threading.Event()
        self._chunk = memoryview(b"")
        self._done = False
        self._waiting = waiting
        self._writer = threading.Thread(target=self._write, args=(chunks,), daemon=True)
        self._writer.start()

    def _write(self, chunks: Iterator[bytes]) -> None:
        try:
            for chunk in chunks:
                if not self._hand_over(chunk):
                    return
        except BaseException as error:  # raised again in COPY's thread, which aborts the COPY
            self._hand_over(error)
            return
        self._hand_over(None)

    def _hand_over(self, item: bytes | BaseException | None) -> bool:
        while not self._closed.is_set():  # a failed COPY reads no more: stop writing then
            try:
                self._ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read(self, size: int = -1) -> bytes:
        while not self._chunk:
            if self._done:
                return b""
            started = time.perf_counter()
            item = self._ready.get()
            self._waiting[0] += time.perf_counter() - started
            if isinstance(item, BaseException):
                raise item
            if item is None:
                self._done = True
                return b""
            self._chunk = memoryview(item)
        piece = self._chunk if size < 0 else self._chunk[:size]
        self._chunk = self._chunk[len(piece) :]
        return bytes(piece)

    def close(self) -> None:
        self._closed.set()
        self._writer.join()


def _default(model_field: models.Field) -> str:
    """A column the seed leaves alone, in COPY text: the model's default (Django keeps defaults
    in Python, not in the database)."""
    value = model_field.get_default()
    if value is None and not model_field.null:
        raise TypeError(f"{model_field} has no default: give it a value in COLUMNS.")
    return pg_array(value) if isinstance(model_field, ArrayField) else cell(value)


def _derive(cursor) -> None:
    """Set what follows from the orders, in SQL: each customer's statistics (as the order
    services keep them: cancelled orders neither count nor spend, refunds reduce the spend, first
    and last order times over every order placed), the order counter, the id sequences."""
    cursor.execute(
        f"""
        UPDATE {_table(Customer)} AS c
           SET orders_count = s.orders_count, total_spent = s.total_spent,
               first_order_at = s.first_order_at, last_order_at = s.last_order_at
          FROM (SELECT customer_id,
                       count(*) FILTER (WHERE status <> %(cancelled)s) AS orders_count,
                       coalesce(sum(total - refunded_total) FILTER (WHERE status <> %(cancelled)s), 0)
                           AS total_spent,
                       min(placed_at) AS first_order_at, max(placed_at) AS last_order_at
                  FROM {_table(Order)} WHERE customer_id IS NOT NULL GROUP BY customer_id) AS s
         WHERE c.id = s.customer_id
    """,
        {"cancelled": order_status.CANCELLED},
    )
    cursor.execute(
        f"UPDATE {_table(OrderCounter)} SET last = GREATEST(last, "
        f"(SELECT coalesce(max(number), 0) FROM {_table(Order)}))"
    )
    for model in LOADED:  # a constant: Citus routes a setval over max() to a worker, and fails
        cursor.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {_table(model)}")
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, false)",
            [model._meta.db_table, cursor.fetchone()[0]],
        )
    # Fresh planner statistics, so the first queries on the new rows pick good plans.
    cursor.execute("ANALYZE " + ", ".join(_table(model) for model in LOADED))
