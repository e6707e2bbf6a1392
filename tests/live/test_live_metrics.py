"""Live metrics and order events over real sockets (uvicorn + the websockets library).

The server sees committed data only, and writes publish when they commit: these tests write in
threads of their own, committing, in two throwaway tenants made for this module and dropped
after it (so no other test sees their orders)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest
import websockets

from apps.accounts.authentication import Principal
from apps.accounts.models import User
from apps.analytics import engine
from apps.analytics.definitions import today_in
from apps.analytics.query import AnalyticsQuery, DateRange
from apps.catalog.models import Product, Variant
from apps.live import hub
from apps.orders import services
from apps.orders.models import Order
from apps.orders.status import PAID
from tests.committed import run_committed
from tests.conftest import _tenant, token_for
from tests.subscribers import joining

TIMEOUT = 30  # a deadline, never slept
METRICS = (
    "subscription { liveMetrics { day orders revenue { amount currency } averageOrderValue { amount } "
    "visitors conversion version } }"
)
TIMED_METRICS = METRICS.replace("liveMetrics { ", "liveMetrics { at ")
ORDER_EVENTS = (
    "subscription { orderEvents { event status at order { number email total { amount } } } }"
)
SLUGS = ("live-a", "live-b")

pytestmark = pytest.mark.django_db  # lets the writing threads reach the database


class Shop:
    def __init__(self, fixture) -> None:
        self.fixture, self.tenant, self.host = fixture, fixture.tenant, fixture.host
        self.tokens: dict[str, str] = {}
        self.variants: list[int] = []

    def actor(self) -> Principal:
        return Principal(
            tenant=self.tenant,
            user=User.objects.get(email=self.fixture.email("staff")),
            role="staff",
            via="jwt",
        )


def place(
    shop: Shop, count: int = 1, *, variant: int = 0, email: str = "buyer@example.com"
) -> list[int]:
    """`count` orders of one unit at 12.50, committed one by one; their ids."""

    def work() -> list[int]:
        actor = shop.actor()
        return [
            services.create_order(
                actor=actor,
                tenant=shop.tenant,
                email=email,
                lines=[services.LineRequest(shop.variants[variant], 1)],
            ).pk
            for _ in range(count)
        ]

    return run_committed(shop.tenant, work)


def place_in_bulk(shop: Shop, count: int, threads: int = 4) -> None:
    """`count` orders from `threads` writers at once (each its own variant and customer)."""
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            place(shop, count // threads, variant=index, email=f"bulk-{index}@example.com")
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=writer, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors, errors


def engine_today(shop: Shop) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        today = date.fromisoformat(committed_day(shop))
        return engine.run(
            shop.tenant,
            AnalyticsQuery(metrics=("gross_sales", "orders"), range=DateRange(today, today)),
        ).totals

    return run_committed(shop.tenant, work)


def committed_day(shop: Shop) -> str:
    return today_in(shop.tenant).isoformat()


@pytest.fixture(scope="module")
def shops(tenants, django_db_blocker):
    made: dict[str, Shop] = {}
    with django_db_blocker.unblock():
        for slug in SLUGS:
            shop = made[slug] = Shop(_tenant(slug))
            for role in ("analyst", "viewer", "owner"):
                shop.tokens[role] = token_for(shop.fixture.email(role), shop.tenant)

            def stock(shop=shop) -> list[int]:
                product = Product.objects.create(
                    name="Live", slug="live", status=Product.Status.ACTIVE
                )
                return [
                    Variant.objects.create(
                        product=product,
                        sku=f"LIVE-{n}",
                        name=f"V{n}",
                        price=Decimal("12.50"),
                        stock=100_000,
                    ).pk
                    for n in range(4)
                ]

            shop.variants = run_committed(shop.tenant, stock)
    yield made
    with django_db_blocker.unblock():
        for shop in made.values():
            shop.tenant.delete(force_drop=True)
        for slug in SLUGS:
            User.objects.filter(email__endswith=f"@{slug}.test").delete()


# --- a client speaking graphql-transport-ws ---------------------------------------------------------


class Socket:
    def __init__(self, ws) -> None:
        self.ws = ws

    async def subscribe(self, query: str, id: str = "1") -> None:
        await self.ws.send(json.dumps({"id": id, "type": "subscribe", "payload": {"query": query}}))

    async def next(self, timeout: float = TIMEOUT) -> dict:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def data(self, timeout: float = TIMEOUT) -> dict:
        message = await self.next(timeout)
        assert message["type"] == "next" and "errors" not in message["payload"], message
        return next(iter(message["payload"]["data"].values()))

    async def nothing(self, wait: float = 0.5) -> None:
        with pytest.raises(TimeoutError):
            print(await self.next(wait))


async def connect(server, shop: Shop, role: str = "analyst", *, token: str | None = None) -> Socket:
    host = shop.host
    ws = await websockets.connect(
        f"ws://{host}:{server.port}/graphql/",
        host="127.0.0.1",
        port=server.port,
        subprotocols=["graphql-transport-ws"],
        origin=f"http://{host}:{server.port}",
    )
    await ws.send(
        json.dumps(
            {
                "type": "connection_init",
                "payload": {"Authorization": f"Bearer {token or shop.tokens[role]}"},
            }
        )
    )
    ack = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert ack["type"] == "connection_ack", ack
    return Socket(ws)


def run(scenario) -> Any:
    return asyncio.run(asyncio.wait_for(scenario, 120))


async def in_thread(function: Callable, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(function, *args, **kwargs)


# --- liveMetrics ----------------------------------------------------------------------------------


def test_a_subscriber_gets_its_own_tenants_change_and_nothing_of_another(asgi_server, shops):
    a, b = shops["live-a"], shops["live-b"]

    async def scenario():
        on_a, on_b = await connect(asgi_server, a), await connect(asgi_server, b)
        await on_a.subscribe(METRICS)
        await on_b.subscribe(METRICS)
        first_a, first_b = await on_a.data(), await on_b.data()
        assert first_a["day"] == committed_day(a) and first_a["revenue"]["currency"] == "USD"

        await in_thread(place, b)  # B's order reaches B's subscriber, and nothing reaches A's
        after_b = await on_b.data()
        assert (
            after_b["orders"] == first_b["orders"] + 1 and after_b["version"] > first_b["version"]
        )
        await on_a.nothing()

        (order_id,) = await in_thread(place, a)
        await in_thread(
            run_committed,
            a.tenant,
            lambda: services.update_status(actor=a.actor(), order_id=order_id, status=PAID),
        )
        after_a = await on_a.data()
        assert after_a["orders"] == first_a["orders"] + 1
        assert Decimal(after_a["revenue"]["amount"]) == Decimal(
            first_a["revenue"]["amount"]
        ) + Decimal("12.50")
        assert after_a["version"] > first_a["version"]
        await on_a.nothing()  # paying changes no figure: no second message
        await on_b.nothing()
        await on_a.ws.close()
        await on_b.ws.close()

    run(scenario())


# Orders in the burst: enough that, at hub.INTERVAL, the updates are far fewer than the orders
# even on a loaded machine (300 take about 5 s here, 4 writers: some 20 updates); 1,000 took 30 s.
BURST = 300


def test_a_burst_of_orders_is_coalesced_and_ends_on_the_engines_figures(asgi_server, shops):
    """Coalescing, by what it promises and on the server's own clock (each snapshot carries the
    time it was computed): at most one update per hub.INTERVAL, versions only forward, and the last
    update equal to the engine's figures. How fast a burst goes is bench/subscriptions.py's."""
    a = shops["live-a"]

    async def scenario():
        on_a = await connect(asgi_server, a)
        await on_a.subscribe(TIMED_METRICS)
        first = await on_a.data()
        burst = asyncio.ensure_future(in_thread(place_in_bulk, a, BURST))
        received = []
        while not received or received[-1]["orders"] < first["orders"] + BURST:
            received.append(await on_a.data())
        await burst
        await on_a.nothing(1.0)  # the trailing edge delivered the final figures: nothing follows
        await on_a.ws.close()
        return first, received

    first, received = run(scenario())
    expected = engine_today(a)
    last = received[-1]
    assert last["orders"] == expected["orders"] == first["orders"] + BURST
    assert Decimal(last["revenue"]["amount"]) == expected["gross_sales"]
    assert Decimal(last["averageOrderValue"]["amount"]) == (
        expected["gross_sales"] / expected["orders"]
    ).quantize(Decimal("0.01"))
    versions = [message["version"] for message in received]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    computed = [datetime.fromisoformat(message["at"]) for message in [first, *received]]
    gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(computed)]
    # a timer may fire a clock tick early: a millisecond of slack
    assert min(gaps) >= hub.INTERVAL - 0.001, sorted(gaps)[:5]
    assert len(received) < BURST  # coalesced: fewer updates than orders


def test_real_time_metrics_is_the_subscriptions_first_snapshot(asgi_server, shops):
    a = shops["live-a"]
    fields = "day orders revenue { amount currency } averageOrderValue { amount } visitors conversion version"

    async def scenario():
        on_a = await connect(asgi_server, a)
        await on_a.subscribe(f"subscription {{ liveMetrics {{ {fields} }} }}")
        first = await on_a.data()
        await on_a.ws.close()
        return first

    first = run(scenario())
    with asgi_server.http(a.host) as client:
        answer = client.post(
            "/graphql/",
            json={"query": f"{{ realTimeMetrics {{ {fields} }} }}"},
            headers={"Authorization": f"Bearer {a.tokens['analyst']}"},
        ).json()
    assert answer["data"]["realTimeMetrics"] == first


def test_live_metrics_refuses_viewers_and_foreign_or_missing_credentials(asgi_server, shops):
    a, b = shops["live-a"], shops["live-b"]

    async def scenario():
        viewer = await connect(asgi_server, a, "viewer")
        await viewer.subscribe(METRICS)
        refused = await viewer.next()
        await viewer.ws.close()
        closes = []
        for payload in ({}, {"Authorization": f"Bearer {b.tokens['analyst']}"}):
            async with websockets.connect(
                f"ws://{a.host}:{asgi_server.port}/graphql/",
                host="127.0.0.1",
                port=asgi_server.port,
                subprotocols=["graphql-transport-ws"],
                origin=f"http://{a.host}:{asgi_server.port}",
            ) as ws:
                await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), TIMEOUT)
                closes.append(closed.value.rcvd.code)
        return refused, closes

    refused, closes = run(scenario())
    assert refused["type"] in ("error", "next"), refused
    errors = refused["payload"] if refused["type"] == "error" else refused["payload"]["errors"]
    assert [error["extensions"]["code"] for error in errors] == ["FORBIDDEN"]
    assert closes == [4403, 4403]


# --- orderEvents ----------------------------------------------------------------------------------


def test_order_events_deliver_created_paid_refunded_of_the_own_tenant_only(asgi_server, shops):
    a, b = shops["live-a"], shops["live-b"]

    def paid_and_refunded(order_id: int) -> int:
        services.update_status(actor=a.actor(), order_id=order_id, status=PAID)
        services.create_refund(actor=a.actor(), order_id=order_id, amount=Decimal("2.50"))
        return Order.objects.get(pk=order_id).number

    async def scenario():
        on_a, on_b = await connect(asgi_server, a, "viewer"), await connect(asgi_server, b, "owner")
        async with joining(a.tenant.schema_name, "orders"), joining(b.tenant.schema_name, "orders"):
            await on_a.subscribe(ORDER_EVENTS)
            await on_b.subscribe(ORDER_EVENTS)
        await in_thread(place, b, email="someone@example.com")
        (order_id,) = await in_thread(place, a, email="someone@example.com")
        number = await in_thread(run_committed, a.tenant, lambda: paid_and_refunded(order_id))
        seen_a = [await on_a.data() for _ in range(3)]
        seen_b = [await on_b.data()]
        await on_a.nothing()
        await on_b.nothing()
        await on_a.ws.close()
        await on_b.ws.close()
        return number, seen_a, seen_b

    number, seen_a, seen_b = run(scenario())
    assert [(e["event"], e["status"]) for e in seen_a] == [
        ("CREATED", "PENDING"),
        ("PAID", "PAID"),
        ("REFUNDED", "PARTIALLY_REFUNDED"),
    ]
    # the order as it is now, read with the viewer's permissions: contact details masked
    assert {e["order"]["number"] for e in seen_a} == {number}
    assert all(
        e["order"]["email"] != "someone@example.com" and e["order"]["total"]["amount"] == "12.50"
        for e in seen_a
    )
    assert [e["event"] for e in seen_b] == ["CREATED"] and seen_b[0]["order"][
        "email"
    ] == "someone@example.com"
