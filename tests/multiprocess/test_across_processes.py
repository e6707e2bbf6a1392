"""What must behave across processes as within one (issue 17): a write on server B reaches a
subscriber on server A, a tenant's subscription limit counts its subscriptions on every server,
a cached analytics answer on A is not read after B changed the figures, an export asked of A is
written by whichever worker takes it and downloads from B, and the alert evaluation beat queues
for every tenant fires on the workers and shows on a server. Everything goes through the
servers' API and the workers, over the pool (tests/multiprocess/conftest.py)."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import pytest
import redis

from apps.live import limits
from tests.faults.redis_restart_helpers import send_task
from tests.live.test_live_metrics import METRICS, ORDER_EVENTS, Socket, connect, run
from tests.multiprocess.conftest import SUBSCRIPTIONS_PER_TENANT, TIMEOUT, Stack

pytestmark = pytest.mark.pooled

T = TypeVar("T")


def eventually(read: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    """`read()` until `done` holds of its value, within TIMEOUT; the value."""
    give_up = time.monotonic() + TIMEOUT
    while True:
        value = read()
        if done(value):
            return value
        assert time.monotonic() < give_up, f"{what}: still {value!r} after {TIMEOUT} s"
        time.sleep(0.05)


def test_an_order_on_one_server_reaches_live_subscribers_on_both(stack: Stack):
    shop = stack.shops["pool-a"]

    async def scenario() -> tuple[dict, dict, dict, dict]:
        on_a = await connect(stack.servers[0], shop, "analyst")
        on_b = await connect(stack.servers[1], shop, "analyst")
        await on_a.subscribe(METRICS)
        await on_b.subscribe(METRICS)
        first_a, first_b = await on_a.data(), await on_b.data()
        await asyncio.to_thread(stack.place_order, 1, shop)
        after_a, after_b = await on_a.data(), await on_b.data()
        await on_a.ws.close()
        await on_b.ws.close()
        return first_a, first_b, after_a, after_b

    first_a, first_b, after_a, after_b = run(scenario())
    assert after_a["orders"] == first_a["orders"] + 1
    assert after_b["orders"] == first_b["orders"] + 1
    assert after_a["version"] == after_b["version"] > first_a["version"]
    assert after_a["revenue"] == after_b["revenue"]


def _slots(stack: Stack, schema: str) -> int:
    client = redis.Redis.from_url(stack.redis_url)
    try:
        return client.zcard(limits._key(schema))
    finally:
        client.close()


async def _held(stack: Stack, schema: str, count: int) -> None:
    give_up = time.monotonic() + TIMEOUT
    while (held := await asyncio.to_thread(_slots, stack, schema)) != count:
        assert time.monotonic() < give_up, f"{schema} holds {held} slots, not {count}"
        await asyncio.sleep(0.02)


async def _refusal(socket: Socket) -> dict:
    message = await socket.next()
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    return errors[0]["extensions"]


def test_a_tenants_subscription_limit_counts_its_subscriptions_on_every_server(stack: Stack):
    shop, other = stack.shops["pool-b"], stack.shops["pool-c"]
    schema = shop.fixture.tenant.schema_name

    async def scenario() -> tuple[dict, int]:
        held: list[Socket] = []
        for number in range(SUBSCRIPTIONS_PER_TENANT):  # A, B, A, ...
            socket = await connect(stack.servers[number % 2], shop, "analyst")
            await socket.subscribe(ORDER_EVENTS)
            await _held(stack, schema, number + 1)
            held.append(socket)
        one_more = await connect(stack.servers[1], shop, "analyst")
        await one_more.subscribe(ORDER_EVENTS, id="over")
        refused = await _refusal(one_more)
        elsewhere = await connect(stack.servers[1], other, "analyst")  # another tenant's count
        await elsewhere.subscribe(ORDER_EVENTS)
        await _held(stack, other.fixture.tenant.schema_name, 1)

        await held[0].ws.close()  # a slot on A frees one for B
        await _held(stack, schema, SUBSCRIPTIONS_PER_TENANT - 1)
        await one_more.subscribe(ORDER_EVENTS, id="again")
        await _held(stack, schema, SUBSCRIPTIONS_PER_TENANT)
        for socket in (*held[1:], one_more, elsewhere):
            await socket.ws.close()
        await _held(stack, schema, 0)
        return refused, await asyncio.to_thread(_slots, stack, schema)

    refused, left = run(scenario())
    assert refused["code"] == "THROTTLED" and refused["reason"] == "TOO_MANY_SUBSCRIPTIONS"
    assert refused["limit"] == SUBSCRIPTIONS_PER_TENANT and refused["scope"] == "tenant"
    assert left == 0


OVERVIEW = "{ analyticsOverview { kpis { metric value } } }"


def _orders_kpi(stack: Stack, server: int, shop) -> Decimal:
    kpis = stack.graphql(server, shop, OVERVIEW, role="analyst")["analyticsOverview"]["kpis"]
    return Decimal(next(kpi["value"] for kpi in kpis if kpi["metric"] == "ORDERS"))


def test_a_cached_answer_on_one_server_is_not_read_after_another_changed_the_figures(
    stack: Stack,
):
    shop = stack.shops["pool-c"]
    before = _orders_kpi(stack, 0, shop)
    assert _orders_kpi(stack, 0, shop) == before  # cached now, on A's key and version
    stack.place_order(1, shop)
    # The figures move when the order commits; B's write bumped the version A reads.
    after = eventually(lambda: _orders_kpi(stack, 0, shop), lambda v: v != before, "orders on A")
    assert after == before + 1
    assert _orders_kpi(stack, 1, shop) == after


EXPORT = (
    "mutation { exportCreate(kind: CUSTOMERS, format: CSV) { export { id status } "
    "userErrors { code } } }"
)
EXPORT_NODE = "query($id: ID!) { node(id: $id) { ... on Export { status rowsDone downloadUrl } } }"


def test_an_export_asked_of_one_server_is_written_by_a_worker_and_downloads_from_the_other(
    stack: Stack,
):
    shop = stack.shops["pool-a"]
    stack.place_order(0, shop)  # at least one customer
    created = stack.graphql(0, shop, EXPORT)["exportCreate"]
    assert created["userErrors"] == [], created
    export_id = created["export"]["id"]
    done = eventually(
        lambda: stack.graphql(1, shop, EXPORT_NODE, {"id": export_id})["node"],
        lambda node: node["status"] in ("DONE", "FAILED"),
        "the export",
    )
    assert done["status"] == "DONE", done
    path = done["downloadUrl"].split(shop.host, 1)[1].split("/", 1)[1]
    with stack.http(1, shop) as client:
        response = client.get(f"/{path}")
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) == done["rowsDone"] >= 1
    assert "buyer@example.com" in {row.get("email") for row in rows}, rows[:3]


ALERT = (
    'mutation { alertRuleCreate(input: {name: "Any order", metric: "orders", '
    "comparison: ABOVE, threshold: 0, windowDays: 1, channels: [IN_APP]}) "
    "{ alertRule { id } userErrors { code message } } }"
)
NOTIFICATIONS = "{ notifications(first: 10) { edges { node { title } } } }"


def _titles(stack: Stack, server: int, shop) -> list[str]:
    data = stack.graphql(server, shop, NOTIFICATIONS)["notifications"]
    return [edge["node"]["title"] for edge in data["edges"]]


def test_the_alert_evaluation_beat_queues_fires_on_the_workers_for_its_tenant_only(stack: Stack):
    shop, quiet = stack.shops["pool-b"], stack.shops["pool-c"]
    stack.place_order(1, shop)
    created: dict[str, Any] = stack.graphql(0, shop, ALERT)["alertRuleCreate"]
    assert created["userErrors"] == [], created
    assert _titles(stack, 0, quiet) == []
    send_task(stack.redis_url, "apps.alerts.tasks.evaluate_all_tenants")
    titles = eventually(lambda: _titles(stack, 1, shop), bool, "a notification on B")
    assert any("Any order" in title for title in titles), titles
    assert _titles(stack, 0, quiet) == []  # no rule there, nothing fired there
    # Every tenant's evaluation has run before the next test (the fan-out covers them all).
    stack.workers[0].wait_idle(TIMEOUT)
