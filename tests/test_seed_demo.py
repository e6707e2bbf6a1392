"""`manage.py seed_demo`: demo data that adds up (to the cent), follows the order status machine,
keeps customer statistics as the order services do, is the same for the same seed, stays in its
tenant, and never overwrites data without --reset."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from io import StringIO
from itertools import pairwise
from zoneinfo import ZoneInfo

import numpy as np
import psycopg2.errors
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.models import Count, F, Max, Min, Q, Sum
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from apps.catalog.models import Category, Product, Variant
from apps.common.days import day_start, local_today
from apps.common.errors import UserError
from apps.customers.models import Customer
from apps.orders import status as machine
from apps.orders.models import Order, OrderCounter, OrderEvent, OrderLine, Refund, RefundLine
from apps.provisioning.seeding import SeedSize, _Reader, generate_rows, seed_demo
from apps.provisioning.seeding.generate import Plan
from apps.provisioning.seeding.orders import local_to_utc
from tenants.models import Tenant

UNTIL = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
SMALL = SeedSize(products=10, customers=30, orders=300)


def _seed(fixture, size: SeedSize = SMALL, *, seed: int = 5, reset: bool = False) -> dict[str, int]:
    return seed_demo(tenant=fixture.tenant, size=size, seed=seed, reset=reset, until=UNTIL).rows


def _fingerprint(fixture) -> str:
    """Every order's number, customer email, status and money, every line, in one digest."""
    with tenant_context(fixture.tenant):
        orders = Order.objects.order_by("number").values_list(
            "number",
            "customer__email",
            "status",
            "placed_at",
            "subtotal",
            "discount_total",
            "tax_total",
            "shipping_total",
            "total",
            "refunded_total",
        )
        lines = OrderLine.objects.order_by("order__number", "sku").values_list(
            "order__number", "sku", "unit_price", "quantity", "refunded_quantity"
        )
        return hashlib.sha256(repr((list(orders), list(lines))).encode()).hexdigest()


def test_seed_writes_the_asked_sizes_and_consistent_money(alpha):
    written = _seed(alpha)
    assert written["orders_order"] == 300 and written["catalog_product"] == 10
    assert written["customers_customer"] == 30
    with tenant_context(alpha.tenant):
        assert (
            Order.objects.count() == 300
            and Product.objects.count() == 10
            and Customer.objects.count() == 30
        )
        assert written["orders_orderline"] == OrderLine.objects.count()
        assert Category.objects.filter(parent__isnull=True).exists()
        assert Category.objects.filter(parent__isnull=False).exists()
        variants_per_product = Counter(Variant.objects.values_list("product_id", flat=True))
        assert set(variants_per_product.values()) <= {1, 2, 3, 4}
        assert len(variants_per_product) == 10
        for variant in Variant.objects.all():
            assert (
                variant.price > 0
                and variant.cost_price is not None
                and 0 < variant.cost_price < variant.price
            )
            assert variant.stock >= 0

        assert sorted(Order.objects.values_list("number", flat=True)) == list(range(1, 301))
        assert OrderCounter.objects.get().last == 300
        lines_by_order = {}
        for line in OrderLine.objects.all():
            assert line.total == line.unit_price * line.quantity
            assert 0 <= line.refunded_quantity <= line.quantity
            lines_by_order.setdefault(line.order_id, []).append(line)
        for order in Order.objects.all():
            lines = lines_by_order[order.pk]
            assert 1 <= len(lines) <= 5
            assert order.subtotal == sum(line.total for line in lines)
            assert (
                order.total
                == order.subtotal - order.discount_total + order.tax_total + order.shipping_total
            )
            assert 0 <= order.discount_total <= order.subtotal and order.tax_total >= 0
            assert 0 <= order.refunded_total <= order.total
            for amount in (order.subtotal, order.total, order.refunded_total, order.tax_total):
                assert isinstance(amount, Decimal) and amount == amount.quantize(Decimal("0.01"))
            assert order.currency == alpha.tenant.currency
            assert order.placed_at.tzinfo is not None
            assert UNTIL - timedelta(days=731) <= order.placed_at < UNTIL


def test_seeding_works_on_the_debug_cursor_make_run_has(alpha):
    """`make run` loads the demo with DEBUG on, where Django's debug cursor wraps COPY and passes
    on positional arguments only (a keyword made `make run` fail at once)."""
    with CaptureQueriesContext(connection) as captured:  # the debug cursor, as DEBUG gives
        rows = _seed(alpha, SeedSize(products=3, customers=5, orders=20))
    assert rows["orders_order"] == 20
    assert any(query["sql"].startswith("COPY ") for query in captured.captured_queries)


def test_refunds_match_orders_and_lines(alpha):
    _seed(alpha)
    with tenant_context(alpha.tenant):
        refunded = Order.objects.filter(refunded_total__gt=0)
        assert refunded.exists(), "a seed of 300 orders has refunds"
        for order in Order.objects.annotate(refunds_sum=Sum("refunds__amount")):
            assert order.refunded_total == (order.refunds_sum or 0)
            if order.status == machine.REFUNDED:
                assert order.refunded_total == order.total
            elif order.status == machine.PARTIALLY_REFUNDED:
                assert 0 < order.refunded_total < order.total
        for refund in Refund.objects.annotate(lines_sum=Sum("lines__amount")):
            assert refund.amount > 0 and refund.amount == refund.lines_sum
        for line in OrderLine.objects.annotate(back=Sum("refund_lines__quantity")):
            assert line.refunded_quantity == (line.back or 0)
        assert not RefundLine.objects.exclude(order_line__order=F("refund__order")).exists()


def test_status_history_follows_the_status_machine(alpha):
    _seed(alpha)
    with tenant_context(alpha.tenant):
        events = {}
        for event in OrderEvent.objects.order_by("created", "id"):
            events.setdefault(event.order_id, []).append(event)
        statuses = Counter()
        for order in Order.objects.all():
            history = events[order.pk]
            assert history[0].type == "placed" and history[0].to_status == machine.PENDING
            assert history[0].created == order.placed_at
            for before, after in pairwise(history):
                assert after.from_status == before.to_status
                assert (after.from_status, after.to_status) in machine.TRANSITIONS
                assert after.created >= before.created
            assert history[-1].to_status == order.status
            reached = {event.to_status for event in history}
            for status, stamp in machine.STAMPS.items():
                assert (getattr(order, stamp) is not None) == (status in reached), (
                    order.number,
                    stamp,
                )
            statuses[order.status] += 1
        # Mostly delivered, some still on their way, a few cancelled or refunded.
        assert statuses[machine.DELIVERED] > 0.7 * 300
        assert statuses[machine.CANCELLED] > 0
        assert statuses[machine.REFUNDED] + statuses[machine.PARTIALLY_REFUNDED] > 0


def test_customer_statistics_are_the_aggregates_of_their_orders(alpha):
    _seed(alpha)
    with tenant_context(alpha.tenant):
        kept = ~Q(orders__status=machine.CANCELLED)
        customers = Customer.objects.annotate(
            n=Count("orders", filter=kept),
            first=Min("orders__placed_at"),
            last=Max("orders__placed_at"),
        )
        spent = {
            row["customer_id"]: row["spent"]
            for row in Order.objects.exclude(status=machine.CANCELLED)
            .values("customer_id")
            .annotate(spent=Sum("total") - Sum("refunded_total"))
        }
        for customer in customers:
            assert customer.orders_count == customer.n
            assert customer.total_spent == spent.get(customer.pk, Decimal("0.00"))
            assert (
                customer.first_order_at == customer.first
                and customer.last_order_at == customer.last
            )
            if customer.first is not None:
                assert customer.created <= customer.first
        counts = sorted(customer.orders_count for customer in customers)
        assert counts[0] == 0, "some customers never buy"
        assert counts[-1] >= 3 * (300 / 30) / 2, "a few buy much more than the average"
        assert not Order.objects.filter(customer__isnull=True).exists()


def test_the_same_seed_gives_the_same_data_in_any_tenant(alpha, beta):
    _seed(alpha)
    first = _fingerprint(alpha)
    _seed(alpha, reset=True)
    assert _fingerprint(alpha) == first
    _seed(beta)
    assert _fingerprint(beta) == first
    _seed(beta, seed=6, reset=True)
    assert _fingerprint(beta) != first
    assert _fingerprint(alpha) == first, "seeding beta leaves alpha alone"
    with tenant_context(alpha.tenant):
        assert Order.objects.count() == 300


def _order_events(fixture) -> list[tuple]:
    """Every order event: its order's number, type, statuses, payload (refund and line ids
    included) and time."""
    with tenant_context(fixture.tenant):
        return list(
            OrderEvent.objects.order_by("id").values_list(
                "order__number", "type", "from_status", "to_status", "data", "created"
            )
        )


def _seed_with_the_command(fixture, seed: int, *options: str) -> list[tuple]:
    """`manage.py seed_demo` (--reset restarts the ids), then its order events."""
    call_command(
        "seed_demo",
        "--tenant",
        fixture.slug,
        "--products",
        "10",
        "--customers",
        "30",
        "--orders",
        "300",
        "--seed",
        str(seed),
        "--reset",
        *options,
        stdout=StringIO(),
    )
    return _order_events(fixture)


def test_the_same_seed_gives_the_same_order_events_all_day(alpha):
    """Without --until the window ends at the start of the tenant's day, not at the clock's
    second: two runs on one day write the same order events, row for row, as a run told that
    midnight does (a clock reading moved the last day's orders, and every draw after them)."""
    tenant = Tenant.objects.get(pk=alpha.tenant.pk)
    for _ in range(2):  # runs that straddle midnight seed two days: take them again
        today = local_today(tenant)
        first, second = _seed_with_the_command(alpha, 5), _seed_with_the_command(alpha, 5)
        if local_today(tenant) == today:
            break
    assert len(first) > 300 and {event[1] for event in first} >= {
        "placed",
        "status_changed",
        "refunded",
    }
    assert second == first
    midnight = day_start(tenant, today).isoformat()
    assert _seed_with_the_command(alpha, 5, "--until", midnight) == first
    assert _seed_with_the_command(alpha, 6, "--until", midnight) != first


def test_orders_follow_the_tenant_calendar(alpha):
    """Weekends and December sell more a day; hours follow the tenant's day (few at 3-5 am), in
    the tenant's time zone (13 hours off UTC here)."""
    tenant = Tenant.objects.get(pk=alpha.tenant.pk)
    tenant.time_zone = "Pacific/Auckland"
    seed_demo(
        tenant=tenant, size=SeedSize(products=20, customers=200, orders=4000), seed=5, until=UNTIL
    )
    zone = ZoneInfo(tenant.time_zone)
    with tenant_context(tenant):
        local = [
            placed.astimezone(zone) for placed in Order.objects.values_list("placed_at", flat=True)
        ]
    per_day = Counter(moment.date() for moment in local)
    weekend = [count for day, count in per_day.items() if day.weekday() >= 5]
    weekday = [count for day, count in per_day.items() if day.weekday() < 5]
    assert sum(weekend) / len(weekend) > 1.1 * sum(weekday) / len(weekday)
    december = [count for day, count in per_day.items() if day.month == 12]
    assert sum(december) / len(december) > 1.2 * len(local) / len(per_day)
    night = sum(1 for moment in local if 3 <= moment.hour < 5)
    evening = sum(1 for moment in local if 19 <= moment.hour < 21)
    assert evening > 5 * night


def _keys_and_indexes(fixture) -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = %s::regnamespace
            UNION ALL SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s
        """,
            [fixture.tenant.schema_name] * 2,
        )
        return set(cursor.fetchall())


def test_keys_and_indexes_are_as_before_after_a_seed(alpha):
    """The seed loads without foreign keys and secondary indexes and puts them back."""
    before = _keys_and_indexes(alpha)
    assert any("FOREIGN KEY" in definition for _, definition in before)
    _seed(alpha)
    assert _keys_and_indexes(alpha) == before
    _seed(alpha, reset=True)
    assert _keys_and_indexes(alpha) == before


def test_a_second_seed_is_refused_without_reset(alpha):
    _seed(alpha)
    before = _fingerprint(alpha)
    with pytest.raises(UserError) as refused:
        _seed(alpha, seed=9)
    assert refused.value.code == "NOT_EMPTY" and "--reset" in refused.value.message
    with pytest.raises(CommandError, match="pass --reset"):
        call_command("seed_demo", tenant=alpha.slug, products=3, customers=3, orders=3)
    assert _fingerprint(alpha) == before


def test_reset_replaces_everything_and_restarts_numbering(alpha):
    _seed(alpha)
    with tenant_context(alpha.tenant):
        Product.objects.create(name="Mine", slug="mine")
    call_command(
        "seed_demo",
        "--tenant",
        alpha.slug,
        "--products",
        "4",
        "--customers",
        "5",
        "--orders",
        "20",
        "--seed",
        "3",
        "--reset",
        "--until",
        UNTIL.isoformat(),
    )
    with tenant_context(alpha.tenant):
        assert not Product.objects.filter(slug="mine").exists()
        assert (Product.objects.count(), Customer.objects.count(), Order.objects.count()) == (
            4,
            5,
            20,
        )
        assert sorted(Order.objects.values_list("number", flat=True)) == list(range(1, 21))
        assert OrderCounter.objects.get().last == 20
        assert RefundLine.objects.filter(refund__order__number__gt=20).count() == 0


def test_existing_data_of_any_kind_is_refused(alpha):
    with tenant_context(alpha.tenant):
        Customer.objects.create(email="someone@example.com")
    with pytest.raises(CommandError, match="1 customers_customer"):
        call_command("seed_demo", tenant=alpha.slug, products=3, customers=3, orders=3)
    with tenant_context(alpha.tenant):
        assert list(Customer.objects.values_list("email", flat=True)) == ["someone@example.com"]
        assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"--tenant": "nope"}, "No tenant 'nope'"),
        ({"--orders": "-1"}, "cannot be negative"),
        ({"--products": "0", "--orders": "5"}, "Orders need products and customers"),
        ({"--customers": "0", "--orders": "5"}, "Orders need products and customers"),
        ({"--until": "yesterday"}, "ISO date and time"),
        ({"--until": "2025-06-30T12:00:00"}, "with an offset"),
    ],
)
def test_bad_options_are_refused_and_write_nothing(alpha, options, message):
    arguments = {
        "--tenant": alpha.slug,
        "--products": "3",
        "--customers": "3",
        "--orders": "3",
        **options,
    }
    with pytest.raises(CommandError, match=message):
        call_command("seed_demo", *[part for pair in arguments.items() for part in pair])
    with tenant_context(alpha.tenant):
        assert not Product.objects.exists() and not Order.objects.exists()


# --- the generator itself (no database): shape, arithmetic, determinism, local time ----------


def _generated(seed: int, size: SeedSize, zone: str = "America/New_York") -> dict[str, list]:
    """The COPY text the seed would load, split into rows of columns, by table (ids from 1)."""
    plan = Plan(
        size=size,
        seed=seed,
        until=UNTIL,
        zone=ZoneInfo(zone),
        currency="USD",
        first_ids={
            model: 1 for model in (Category, Product, Variant, Customer, Order, OrderLine, Refund)
        },
        first_number=1,
    )
    return {
        model._meta.db_table: [line.split("\t") for batch in rows.batches for line in batch]
        for model, rows in generate_rows(plan).items()
    }


SHAPE = SeedSize(products=50, customers=2000, orders=20_000)


@pytest.fixture(scope="module")
def generated() -> dict[str, list]:
    return _generated(5, SHAPE)


def test_generated_rows_have_the_demo_shape(generated):
    """The mix the demos and analytics tests rely on: mostly delivered, a few percent cancelled
    or refunded; two lines an order on average; a long tail of loyal customers and a quarter
    who never buy; two years of orders that grow."""
    orders = generated["orders_order"]
    assert len(orders) == SHAPE.orders and len(generated["customers_customer"]) == SHAPE.customers
    share = {status: n / len(orders) for status, n in Counter(o[4] for o in orders).items()}
    assert share[machine.DELIVERED] > 0.85
    assert 0.03 < share[machine.CANCELLED] < 0.05
    assert 0.03 < share.get(machine.REFUNDED, 0) + share.get(machine.PARTIALLY_REFUNDED, 0) < 0.06
    assert 0.002 < share[machine.PENDING] < 0.02
    lines = Counter(line[1] for line in generated["orders_orderline"])
    assert 1.85 < len(generated["orders_orderline"]) / len(orders) < 2.05
    assert set(lines.values()) == {1, 2, 3, 4, 5}
    per_customer = Counter(o[2] for o in orders)
    # A quarter never buy, and some signed up too late to have bought yet.
    assert 0.25 < 1 - len(per_customer) / SHAPE.customers < 0.4
    top = sum(n for _, n in per_customer.most_common(SHAPE.customers // 100))
    # The best 1% buy several times the average (about 9% of the orders), no one much more.
    assert 0.05 < top / len(orders) < 0.15 and max(per_customer.values()) < 0.01 * len(orders)
    placed = sorted(datetime.fromisoformat(o[12]) for o in orders)
    assert UNTIL - timedelta(days=730) <= placed[0] and placed[-1] < UNTIL
    middle = UNTIL - timedelta(days=365)
    assert sum(moment >= middle for moment in placed) > 1.3 * sum(
        moment < middle for moment in placed
    )


def test_generated_money_adds_up_to_the_cent(generated):
    lines: dict[str, list[Decimal]] = {}
    for line in generated["orders_orderline"]:
        unit_price, quantity, total = Decimal(line[7]), int(line[8]), Decimal(line[10])
        assert total == unit_price * quantity and 0 <= int(line[9]) <= quantity
        lines.setdefault(line[1], []).append(total)
    refunds = Counter()
    for refund in generated["orders_refund"]:
        refunds[refund[1]] += Decimal(refund[2])
    for order in generated["orders_order"]:
        subtotal, discount, tax, shipping, total, refunded = map(Decimal, order[6:12])
        assert subtotal == sum(lines[order[0]]) and 0 <= discount <= subtotal
        assert total == subtotal - discount + tax + shipping
        assert refunded == refunds[order[0]] and refunded <= total
        for amount in (subtotal, discount, tax, shipping, total, refunded):
            assert amount == amount.quantize(Decimal("0.01"))


def test_the_generator_gives_the_same_text_for_the_same_seed():
    size = SeedSize(products=20, customers=100, orders=2000)
    first = _generated(7, size)
    assert _generated(7, size) == first
    assert _generated(8, size)["orders_order"] != first["orders_order"]


@pytest.mark.parametrize(
    "zone", ["America/New_York", "Pacific/Auckland", "Australia/Lord_Howe", "America/Santiago"]
)
def test_local_times_become_utc_as_datetime_reads_them(zone):
    """Whole arrays of local times convert as `datetime(..., tzinfo=zone)` converts each one,
    clock changes included (skipped and repeated hours, Lord Howe's half hour, Santiago's
    midnight)."""
    tz, first = ZoneInfo(zone), date(2024, 1, 1)
    grid = np.stack(
        np.meshgrid(np.arange(366), np.arange(24), (0, 14, 29, 30, 31, 59), (0, 59), indexing="ij")
    ).reshape(4, -1)
    expected = [
        int(datetime.combine(first + timedelta(days=d), time(h, m, s), tzinfo=tz).timestamp())
        for d, h, m, s in grid.T.tolist()
    ]
    assert local_to_utc(tz, first, *grid).tolist() == expected


def _chunks(count: int, *, fail_at: int | None = None):
    for number in range(count):
        if number == fail_at:
            raise ValueError("no more rows")
        yield f"{number}\n".encode()


@pytest.mark.django_db
def test_copy_reads_text_written_on_the_side_and_stops_its_writer_on_failure():
    """COPY gets every chunk, in order; a failure while writing aborts the COPY with that
    error's message, and a COPY that PostgreSQL refuses stops the writer: no thread is left
    behind either way."""
    waiting = [0.0]
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE seed_copy (n int)")
        reader = _Reader(_chunks(1000), waiting)
        cursor.copy_expert("COPY seed_copy FROM STDIN", reader, size=3)
        reader.close()
        cursor.execute(
            "SELECT array_agg(n ORDER BY n) = array(SELECT generate_series(0, 999)) FROM seed_copy"
        )
        assert cursor.fetchone()[0] and waiting[0] >= 0

    for chunks, error, message in [
        (_chunks(1000, fail_at=500), psycopg2.errors.QueryCanceled, "ValueError no more rows"),
        (iter([b"x\n"] + [b"1\n"] * 100_000), psycopg2.errors.InvalidTextRepresentation, "x"),
    ]:
        reader = _Reader(chunks, waiting)
        with (
            pytest.raises(error, match=message),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            try:
                cursor.copy_expert("COPY seed_copy FROM STDIN", reader)
            finally:
                reader.close()
        assert not reader._writer.is_alive()
