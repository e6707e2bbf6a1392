"""The platform on a Citus cluster with schema-based sharding (settings.CITUS; run by
`make test-citus CITUS_URL=…`, left out and said so elsewhere): every tenant schema is a
distributed schema on one worker, the template stays on the coordinator, seeding and every
rollup give what a direct aggregate of the raw rows gives, a tenant lives its whole life through
the API, and a tenant moved to another worker keeps answering while it moves.

The rest of the Citus run is the plain suite's own modules, on this cluster (the Makefile's
CITUS_TESTS: isolation, global ids, rollups, events, exports, cloning, migrate_schemas)."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django_tenants.utils import tenant_context

from apps.accounts.models import Membership, User
from apps.analytics import events as event_services
from apps.analytics.models import Event, EventDay, ProductDay, Rollup, SalesDay
from apps.orders import services as order_services
from apps.orders.models import Order
from apps.orders.status import PAID, PENDING
from apps.provisioning.seeding import SeedSize, seed_demo
from apps.provisioning.services import update_tenant
from tenants.models import Tenant
from tests.apps.analytics.test_rollups import _expected
from tests.apps.orders import shop
from tests.committed import throwaway_tenant
from tests.conftest import PASSWORD, token_for

pytestmark = pytest.mark.citus


def _placement(coordinator, schema: str) -> tuple[set[int], int]:
    """The ports of the nodes that hold the shards of `schema`'s tables, and how many there are."""
    with coordinator.cursor() as cursor:
        cursor.execute(
            """SELECT s.nodeport FROM citus_shards s JOIN pg_class c ON c.oid = s.table_name
                WHERE c.relnamespace = %s::regnamespace""",
            [schema],
        )
        ports = [row[0] for row in cursor.fetchall()]
    return set(ports), len(ports)


def _coordinator_port(coordinator) -> int:
    with coordinator.cursor() as cursor:
        cursor.execute("SELECT nodeport FROM pg_dist_node WHERE groupid = 0")
        row = cursor.fetchone()
    return row[0] if row else -1


def _distributed_schemas(coordinator) -> set[str]:
    with coordinator.cursor() as cursor:
        cursor.execute("SELECT schema_name::text FROM citus_schemas")
        return {row[0] for row in cursor.fetchall()}


def test_the_cluster_is_citus_12_or_later_with_workers(coordinator):
    with coordinator.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'citus'")
        (version,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM pg_dist_node WHERE groupid <> 0 AND isactive")
        (workers,) = cursor.fetchone()
    assert int(version.split(".")[0]) >= 12, version
    assert workers >= 1


def test_each_tenant_is_a_distributed_schema_on_one_worker_and_the_template_is_not(
    tenants, coordinator, db
):
    distributed = _distributed_schemas(coordinator)
    coordinator_port = _coordinator_port(coordinator)
    for fixture in tenants.values():
        schema = fixture.tenant.schema_name
        assert schema in distributed
        ports, shards = _placement(coordinator, schema)
        assert shards >= 30, shards  # every table of the tenant is a shard of its schema
        assert len(ports) == 1 and coordinator_port not in ports, ports
    template = Tenant.objects.get(is_template=True).schema_name
    assert template not in distributed
    assert _placement(coordinator, template) == (set(), 0)


def _rollup_rows() -> tuple[dict, dict]:
    sales = {
        row.day: {
            "sales.orders": row.orders,
            "sales.gross": row.gross,
            "sales.discounts": row.discounts,
            "sales.tax": row.tax,
            "sales.shipping": row.shipping,
            "sales.units": row.units,
            "sales.refunds": row.refunds,
            "sales.refund_count": row.refund_count,
            "sales.refunded_units": row.refunded_units,
            "sales.new_customer_orders": row.new_customer_orders,
            "sales.returning_customer_orders": row.returning_customer_orders,
        }
        for row in SalesDay.objects.all()
    }
    products = {
        (row.day, row.product_id): {
            "product.units": row.units,
            "product.revenue": row.revenue,
            "product.orders": row.orders,
            "product.refunded_units": row.refunded_units,
            "product.refunds": row.refunds,
        }
        for row in ProductDay.objects.all()
    }
    return sales, products


def _nonzero(table: dict) -> dict:
    return {key: {k: v for k, v in parts.items() if v} for key, parts in table.items()}


def _assert_rollups_are_the_raw_rows(zone: str) -> None:
    expected_sales, expected_products = _expected(ZoneInfo(zone))
    sales, products = _rollup_rows()
    assert sales, "the rollups are empty: Citus wrote nothing"
    assert _nonzero(sales) == _nonzero(expected_sales)
    assert _nonzero(products) == _nonzero(expected_products)


def _assert_event_days_are_the_events() -> None:
    recorded = Rollup.objects.filter(name=event_services.ROLLUP_NAME).first()
    zone = recorded.time_zone if recorded else connection.tenant.time_zone
    expected: dict = defaultdict(int)
    for event in Event.objects.all():
        expected[(event.time.astimezone(ZoneInfo(zone)).date(), event.type, event.product_id)] += 1
    counted = {(d.day, d.type, d.product_id): d.events for d in EventDay.objects.all()}
    assert counted and counted == dict(expected)


def test_seeding_and_every_rollup_give_what_the_raw_rows_give(alpha):
    """Citus planned the rollups' INSERT … SELECT as zero tasks: the dashboard said 0, no error."""
    with tenant_context(alpha.tenant):
        result = seed_demo(
            tenant=alpha.tenant, size=SeedSize(products=12, customers=40, orders=300), reset=True
        )
        assert result.rows["orders_order"] == 300
        zone = alpha.tenant.time_zone
        _assert_rollups_are_the_raw_rows(zone)  # rebuilt by the seed

        # The fast paths (an order placed, a refund) and the recompute (a cancellation).
        hat = shop.variant("12.50", stock=20)
        placed = shop.place(alpha, [(hat, 2)], email="citus@example.com")
        order_services.update_status(actor=None, order_id=placed.pk, status=PAID)
        order_services.create_refund(
            actor=None,
            order_id=placed.pk,
            lines=[order_services.RefundLineRequest(placed.lines.get().pk, 1)],
        )
        pending = Order.objects.filter(status=PENDING).exclude(pk=placed.pk).first()
        order_services.cancel_order(actor=None, order_id=pending.pk)
        _assert_rollups_are_the_raw_rows(zone)

        now = datetime.now(UTC).replace(microsecond=0)
        product = placed.lines.get().product_id
        outcome = event_services.track(
            actor=None,
            tenant=alpha.tenant,
            events=[
                {
                    "type": "product_viewed",
                    "time": (now - timedelta(hours=h)).isoformat(),
                    "sessionId": "s-1",
                    "productId": product,
                }
                for h in range(0, 72, 5)
            ],
        )
        assert outcome.accepted == 15, outcome
        _assert_event_days_are_the_events()

    # A new zone rebuilds both from scratch.
    update_tenant(actor=None, tenant=alpha.tenant, changes={"time_zone": "Pacific/Kiritimati"})
    with tenant_context(alpha.tenant):
        _assert_rollups_are_the_raw_rows("Pacific/Kiritimati")
        event_services.rebuild_event_days()  # in the tenant's new zone
        _assert_event_days_are_the_events()


@pytest.fixture
def moving(django_db_blocker):
    with throwaway_tenant(
        django_db_blocker, "citus-moving", "Moving", domain="citus-moving.localhost"
    ) as tenant:
        with django_db_blocker.unblock():
            with tenant_context(tenant), transaction.atomic():
                for number in range(20):
                    shop.variant(f"{number + 1}.00", stock=100, name=f"Moving product {number}")
            token = _owner_token(tenant)  # committed: the server must see its user
        yield tenant, token


def test_a_tenant_moved_to_another_worker_keeps_answering_while_it_moves(
    moving, asgi_server, coordinator
):
    moving, token = moving
    query = "{ tenant { slug } products(first: 50) { totalCount } }"
    answers: list[tuple[int, str]] = []
    stop = threading.Event()

    def read() -> None:
        with asgi_server.http("citus-moving.localhost") as client:
            while not stop.is_set():
                response = client.post(
                    "/graphql/", json={"query": query},
                    headers={"Authorization": f"Bearer {token}"}, timeout=30,
                )  # fmt: skip
                answers.append((response.status_code, response.text))

    before, _ = _placement(coordinator, moving.schema_name)
    with coordinator.cursor() as cursor:
        cursor.execute(
            "SELECT nodename, nodeport FROM pg_dist_node WHERE groupid <> 0 AND nodeport <> %s",
            [next(iter(before))],
        )
        host, port = cursor.fetchone()
    reader = threading.Thread(target=read)
    reader.start()
    try:
        with coordinator.cursor() as cursor:
            cursor.execute("SELECT citus_schema_move(%s, %s, %s)", [moving.schema_name, host, port])
    finally:
        stop.set()
        reader.join()
    assert _placement(coordinator, moving.schema_name)[0] == {port}
    assert len(answers) >= 3, answers  # reads went on while the schema moved
    assert answers and all(status == 200 for status, _ in answers), answers[:3]
    assert all('"totalCount":20' in text.replace(" ", "") for _, text in answers), answers[-1]


def _owner_token(tenant: Tenant) -> str:
    email = f"owner@{tenant.slug}.test"
    user = User.objects.filter(email=email).first() or User.objects.create_user(
        email=email, password=PASSWORD
    )
    Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": "owner"})
    return token_for(email, tenant)
