"""Redis restarted under traffic (issue 15): a real uvicorn and a real Celery worker whose Redis is
a process of this test's own, killed with SIGKILL and started again empty (no persistence, as
the worst case: every group membership, slot and queued message is gone).

- HTTP keeps answering throughout: no 5xx but the coded 503 UNAVAILABLE.
- Open subscriptions stay open while Redis is away (no error, no close) and resume once it is
  back, without the client reconnecting: a new order reaches `orderEvents` and `liveMetrics`
  within a bounded time; a subscription asked for while Redis is away is refused with the code
  UNAVAILABLE (the socket stays up); the tenant's subscription limit still holds after.
- A task queued after Redis came back runs: the app and the worker reconnect by themselves, even
  when Redis went away while the worker held an unacknowledged task (the worker used to exit
  with "Unrecoverable error" then; config/broker.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import httpx
import pytest
import redis.asyncio
from django_tenants.utils import tenant_context

from apps.accounts.models import Membership, User
from apps.common import redis as redis_config
from config.devserver.asgi_server import uvicorn_server
from tenants.models import Tenant
from tests.apps.orders import shop as order_shop
from tests.committed import throwaway_tenant
from tests.conftest import PASSWORD, gid, token_for
from tests.faults.processes import RedisProcess
from tests.faults.redis_restart_helpers import (
    CeleryWorkerProcess,
    LiveSocket,
    ProcessLog,
    send_task,
    wait_until,
)
from tests.servers import database_url

SLUG = "faults-redis-restart"
DEADLINE = 30  # seconds any wait may take: waited for, never slept
PER_TENANT = 3  # the server's LIVE_SUBSCRIPTIONS_PER_TENANT here
ORDER_EVENTS = "subscription { orderEvents { event order { id } } }"
METRICS = "subscription { liveMetrics { orders version } }"
READ = "{ products(first: 5) { totalCount } }"
ORDER = """mutation($v: ID!) { orderCreate(input: {lines: [{variant: $v, quantity: 1}], email: "r@example.com"})
  { order { id } userErrors { code } } }"""
EXPORT = (
    "mutation { exportCreate(kind: PRODUCTS, format: CSV) { export { id } userErrors { code } } }"
)
EXPORT_STATUS = "query($id: ID!) { node(id: $id) { ... on Export { status } } }"


@dataclass(frozen=True)
class RestartShop:
    tenant: Tenant
    token: str
    variant: str  # the global id of a variant with stock for every order the tests place


@pytest.fixture
def restart_shop(tenants, django_db_blocker):
    """A committed tenant of its own with an owner and a variant in stock (dropped after)."""
    with throwaway_tenant(
        django_db_blocker, SLUG, "Redis restart", domain=f"{SLUG}.localhost"
    ) as tenant:
        with django_db_blocker.unblock():
            owner = User.objects.filter(
                email=f"owner@{SLUG}.test"
            ).first() or User.objects.create_user(email=f"owner@{SLUG}.test", password=PASSWORD)
            Membership.objects.get_or_create(user=owner, tenant=tenant, defaults={"role": "owner"})
            with tenant_context(tenant):
                variant = order_shop.variant("12.50", stock=1000)
            token = token_for(owner.email, tenant)

        try:
            yield RestartShop(
                tenant=tenant, token=token, variant=gid(tenant, "Variant", variant.pk)
            )
        finally:
            with django_db_blocker.unblock():
                owner.delete()


@pytest.fixture
def restart_stack(restart_shop, tmp_path, db):
    """(server port, its log, the Redis process, the environment a worker needs)."""
    redis_process = RedisProcess(tmp_path)
    redis_process.start()
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_process.url,
        "SESSION_COOKIE_SECURE": "false",
        "LIVE_SUBSCRIPTIONS_PER_TENANT": str(PER_TENANT),
    }
    try:
        with uvicorn_server(env=env, start_timeout=60, capture_output=True) as server:
            yield server.port, ProcessLog(server.process.stdout), redis_process, env
    finally:
        redis_process.kill()


def _server_faults(lines: list[str]) -> list[str]:
    """What must never be logged, outage or not: a consumer or request that crashed (uvicorn's
    own lines, not JSON) and errors of the live code."""
    return [
        line
        for line in lines
        if "Exception in ASGI application" in line
        or (line.startswith("{") and '"level": "ERROR"' in line and '"logger": "apps.live' in line)
    ]


class Api:
    """GraphQL over HTTP as the shop's owner; every answer is checked: no 5xx but a coded 503."""

    def __init__(self, port: int, token: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            timeout=DEADLINE,
            headers={"Host": f"{SLUG}.localhost:{port}", "Authorization": f"Bearer {token}"},
        )
        self.answered = 0

    async def ask(self, query: str, variables: dict | None = None) -> httpx.Response:
        response = await self.client.post(
            "/graphql/", json={"query": query, "variables": variables or {}}
        )
        self.answered += 1
        assert response.status_code < 500 or response.status_code == 503, (
            response.status_code,
            response.text,
        )
        if response.status_code == 503:
            assert [e["extensions"]["code"] for e in response.json()["errors"]] == [
                "UNAVAILABLE"
            ], response.text
        return response

    async def order(self, variant: str) -> None:
        placed = await self.ask(ORDER, {"v": variant})
        assert (
            placed.status_code == 200 and placed.json()["data"]["orderCreate"]["userErrors"] == []
        ), placed.text


def _codes(socket: LiveSocket, operation_id: str) -> list[str]:
    """The error codes an operation was answered with (an `error` message, or errors in `next`)."""
    codes = []
    for message in socket.messages.get(operation_id, []):
        errors = (
            message["payload"]
            if message["type"] == "error"
            else message.get("payload", {}).get("errors") or []
        )
        codes += [(error.get("extensions") or {}).get("code") for error in errors]
    return codes


async def _poll(check: Callable[[], Awaitable[bool]], failure: str | Callable[[], str]) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + DEADLINE
    while not await check():
        assert loop.time() < give_up, (
            f"{failure() if callable(failure) else failure} within {DEADLINE} s"
        )
        await asyncio.sleep(0.05)


async def _slots_held(url: str, key: str, count: int) -> None:
    async with redis.asyncio.Redis.from_url(url) as store:
        await _poll(
            lambda: _equals(store.zcard(key), count), f"not {count} subscription slots held"
        )


async def _equals(answer: Awaitable[int], expected: int) -> bool:
    return await answer == expected


async def _order_reaches(api: Api, socket: LiveSocket, variant: str) -> float:
    """Place orders (four a second at most) until one's event reaches `orderEvents`: an order placed
    before the subscriptions have joined their groups again is not lost to the test's deadline,
    only to that subscriber (as documented). The seconds it took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        seen = len(socket.payloads("orders"))
        await api.order(variant)
        left = started + DEADLINE - loop.time()
        try:
            await socket.wait_for(
                lambda seen=seen: len(socket.payloads("orders")) > seen,
                min(0.25, max(0.0, left)),
                "no order event",
            )
            return loop.time() - started
        except AssertionError:
            assert socket.closed is None, f"the socket closed: {socket.closed!r}"
            assert left > 0.25, f"no order event within {DEADLINE} s: {socket.messages}"


async def _metrics_show_every_order(api: Api, socket: LiveSocket) -> None:
    orders = (await api.ask("{ realTimeMetrics { orders } }")).json()["data"]["realTimeMetrics"][
        "orders"
    ]
    await socket.wait_for(
        lambda: any(
            p["data"]["liveMetrics"]["orders"] == orders for p in socket.payloads("metrics")
        ),
        DEADLINE,
        f"live metrics never showed {orders} orders",
    )
    versions = [p["data"]["liveMetrics"]["version"] for p in socket.payloads("metrics")]
    assert versions == sorted(versions), versions  # never goes back, across a restart too


def _logged_at(lines: list[str], text: str) -> float:
    """When the server logged the first line holding `text` (Unix time)."""
    line = next(line for line in lines if text in line)
    return datetime.fromisoformat(json.loads(line)["time"]).timestamp()


async def _traffic(api: Api) -> None:
    """Read until cancelled (each answer is checked by `Api.ask`)."""
    while True:
        await api.ask(READ)
        await asyncio.sleep(0.02)


def test_open_subscriptions_resume_after_redis_restarts_and_the_tenant_limit_still_holds(
    restart_shop, restart_stack
):
    port, log, redis_process, _ = restart_stack
    slots = redis_config.key("live", restart_shop.tenant.schema_name, "subscriptions")
    variant, timings = restart_shop.variant, {}

    async def scenario(api: Api, socket: LiveSocket) -> None:
        await socket.subscribe("orders", ORDER_EVENTS)
        await socket.subscribe("metrics", METRICS)
        await socket.wait_for(lambda: socket.payloads("metrics"), DEADLINE, "no first snapshot")
        await _order_reaches(api, socket, variant)
        for _ in range(3):  # the data version well above what a counter started afresh says
            await api.order(variant)
        await _metrics_show_every_order(api, socket)
        await _slots_held(redis_process.url, slots, 2)

        down = log.mark()
        redis_process.kill()
        during = await api.ask(READ)
        assert during.status_code == 200 and during.json().get("errors") is None, during.text
        await api.order(variant)  # commits; its event is dropped (its figures show after)
        await socket.subscribe("while-down", ORDER_EVENTS)
        await socket.wait_for(
            lambda: _codes(socket, "while-down"), DEADLINE, "no answer to a subscribe"
        )
        assert _codes(socket, "while-down") == ["UNAVAILABLE"]

        await asyncio.to_thread(redis_process.start)
        back, back_at = time.monotonic(), time.time()
        timings["restart: first order event"] = await _order_reaches(api, socket, variant)
        await _metrics_show_every_order(api, socket)
        timings["restart: live metrics"] = time.monotonic() - back
        await _slots_held(redis_process.url, slots, 2)  # the open subscriptions' slots, held again
        timings["restart: slots held again"] = time.monotonic() - back
        await socket.subscribe("third", ORDER_EVENTS)
        await _slots_held(redis_process.url, slots, 3)
        await socket.subscribe("fourth", ORDER_EVENTS)  # over the limit of 3: refused, as before
        await socket.wait_for(lambda: _codes(socket, "fourth"), DEADLINE, "no answer to the fourth")
        assert _codes(socket, "fourth") == ["THROTTLED"]
        lines = log.since(down)
        assert sum("live subscriptions wait for it" in line for line in lines) == 1, (
            lines
        )  # once an outage
        timings["restart: groups joined again"] = (
            _logged_at(lines, "live subscriptions joined") - back_at
        )

        # A Redis that lost everything without a connection error (a restart between two reads,
        # a flush): found by the layer's marker within its WATCH, and mended the same way.
        async with redis.asyncio.Redis.from_url(redis_process.url) as store:
            await store.flushdb()
        flushed = time.monotonic()
        timings["flush: first order event"] = await _order_reaches(api, socket, variant)
        await _metrics_show_every_order(api, socket)
        await _slots_held(redis_process.url, slots, 3)
        timings["flush: slots held again"] = time.monotonic() - flushed

        assert (
            _codes(socket, "orders") == []
            and _codes(socket, "metrics") == []
            and _codes(socket, "third") == []
        )
        assert socket.closed is None
        assert _server_faults(log.since(0)) == []

    async def run() -> None:
        api = Api(port, restart_shop.token)
        reads = asyncio.ensure_future(
            _traffic(api)
        )  # reads all along, each answer checked by `ask`
        async with LiveSocket(
            f"ws://{SLUG}.localhost:{port}/graphql/",
            host="127.0.0.1",
            port=port,
            connection_params={"Authorization": f"Bearer {restart_shop.token}"},
        ) as socket:
            await scenario(api, socket)
        if reads.done():
            reads.result()  # a read answered otherwise than allowed: its assertion
        reads.cancel()
        timings["HTTP answers meanwhile"] = api.answered
        await api.client.aclose()

    asyncio.run(run())
    print("measured:", {what: round(value, 2) for what, value in timings.items()})


async def _export_runs(api: Api, worker: CeleryWorkerProcess, server_log: ProcessLog) -> float:
    """Ask for an export (the app queues its task) and wait for the worker to finish it; seconds."""
    mark = server_log.mark()
    made = (await api.ask(EXPORT)).json()["data"]["exportCreate"]
    assert made["userErrors"] == [], made
    started, status = time.monotonic(), None

    async def done() -> bool:
        nonlocal status
        assert worker.process.poll() is None, ("the worker exited", worker.log.since()[-5:])
        status = (await api.ask(EXPORT_STATUS, {"id": made["export"]["id"]})).json()["data"][
            "node"
        ]["status"]
        assert status in ("QUEUED", "RUNNING", "DONE"), (status, worker.log.since()[-20:])
        return status == "DONE"

    await _poll(
        done,
        lambda: (
            f"the export was not done (last {status}; worker: {worker.log.since()[-10:]}; "
            f"server: {server_log.since(mark)[-10:]})"
        ),
    )
    return time.monotonic() - started


def test_a_task_queued_after_redis_restarts_runs_without_restarting_the_app_or_the_worker(
    restart_shop, restart_stack, tmp_path
):
    """Redis goes away while the worker holds a task it has not acknowledged yet (tasks ack late,
    so under traffic there always is one): the worker reconnects instead of dying, and the app's
    next task runs."""
    port, server_log, redis_process, env = restart_stack
    worker = CeleryWorkerProcess(env, include=("tests.faults.redis_restart_helpers",))
    worker.start()
    started, release = tmp_path / "started", tmp_path / "release"
    timings = {}

    async def scenario() -> None:
        api = Api(port, restart_shop.token)
        timings["first export (worker starting)"] = await _export_runs(api, worker, server_log)
        send_task(redis_process.url, "tests.faults.hold_until", str(started), str(release))
        await asyncio.to_thread(wait_until, started.exists, DEADLINE, "the held task did not start")
        redis_process.kill()
        await asyncio.to_thread(
            wait_until,
            lambda: any("Connection to broker lost" in line for line in worker.log.since()),
            DEADLINE,
            "the worker did not notice Redis was gone",
        )
        assert (await api.ask(READ)).status_code == 200
        await asyncio.to_thread(redis_process.start)
        release.touch()
        timings["export after the restart"] = await _export_runs(api, worker, server_log)
        assert worker.process.poll() is None, worker.log.since()[-20:]
        await api.client.aclose()

    try:
        asyncio.run(scenario())
    finally:
        worker.stop()
    print("measured:", {what: round(value, 2) for what, value in timings.items()})
