"""Subscription limits (through the real ASGI app, in-process) and the live visitor counts."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

from asgiref.sync import async_to_sync
from django.test import override_settings
from django.utils import timezone

from apps.analytics.events import ingest
from apps.common import redis
from apps.live import limits
from apps.live.snapshot import snapshot
from tenants.context import tenant_context
from tests.test_websocket import bearer, communicator, open_session

ORDER_EVENTS = "subscription { orderEvents { event } }"
DEADLINE = 30  # seconds an answer may take on a busy machine (waited for, never slept)


async def _session(fixture, credentials: dict):
    ws = communicator(fixture.host)
    ack = await open_session(ws, credentials)
    assert json.loads(ack["text"])["type"] == "connection_ack"
    return ws


async def _subscribe(ws, id: str, query: str = ORDER_EVENTS) -> None:
    await ws.send_json_to({"id": id, "type": "subscribe", "payload": {"query": query}})


async def _answer(ws, id: str) -> dict:
    """The next message, waited for up to a deadline (an error comes as `error`, or as `next` with
    errors followed by `complete`)."""
    answer = await ws.receive_json_from(timeout=DEADLINE)
    if answer["type"] == "next" and "errors" in answer["payload"]:
        assert await ws.receive_json_from(timeout=DEADLINE) == {"id": id, "type": "complete"}
    return answer


async def _runs(ws, id: str, fixture, held: int, query: str = ORDER_EVENTS) -> dict | None:
    """Subscribe; None once it runs (the tenant then holds `held` slots, its own included: a
    subscription takes its slot only after every check), else the error it answered."""
    await _subscribe(ws, id, query)
    key, client = limits._key(fixture.tenant.schema_name), redis.client()
    give_up = time.monotonic() + DEADLINE
    while client.zcard(key) != held:
        if not await ws.receive_nothing(timeout=0.01):
            return await _answer(ws, id)
        assert time.monotonic() < give_up, (
            f"neither running nor refused: {client.zcard(key)} slots held"
        )
    return None


async def _refused(ws, id: str, query: str = ORDER_EVENTS) -> dict:
    await _subscribe(ws, id, query)
    return await _answer(ws, id)


async def _until_held(fixture, count: int) -> None:
    """Wait (bounded) until the tenant's slots in Redis number `count`."""
    key, client = limits._key(fixture.tenant.schema_name), redis.client()
    give_up = time.monotonic() + DEADLINE
    while client.zcard(key) != count:
        assert time.monotonic() < give_up, f"the tenant still holds {client.zcard(key)} slots"
        await asyncio.sleep(0.01)


def _limit_error(message: dict) -> dict:
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    (error,) = errors
    return error["extensions"]


def test_a_connection_holds_at_most_its_limit_and_stays_up(alpha):
    redis.client().delete(limits._key(alpha.tenant.schema_name))

    credentials = bearer(alpha, "viewer")

    async def scenario():
        ws = await _session(alpha, credentials)
        assert await _runs(ws, "1", alpha, 1) is None
        assert await _runs(ws, "2", alpha, 2) is None
        refused = await _refused(ws, "3")
        await ws.send_json_to(
            {"id": "1", "type": "complete"}
        )  # frees a slot once its task has ended
        await _until_held(alpha, 1)
        again = await _runs(ws, "4", alpha, 2)
        await _subscribe(ws, "5", "subscription { serverTime(interval: 0.1, count: 1) }")
        still_up = await ws.receive_json_from(timeout=DEADLINE)
        await ws.disconnect(timeout=DEADLINE)
        return refused, again, still_up

    with override_settings(LIVE_SUBSCRIPTIONS_PER_CONNECTION=2):
        refused, again, still_up = async_to_sync(scenario)()
    assert refused["id"] == "3"
    assert _limit_error(refused) == {
        "code": "THROTTLED",
        "reason": "TOO_MANY_SUBSCRIPTIONS",
        "limit": 2,
        "scope": "connection",
    }
    assert again is None
    assert still_up["type"] == "next" and "serverTime" in still_up["payload"]["data"]


def test_a_tenant_holds_at_most_its_limit_across_connections_and_other_tenants_do_not_count(
    alpha, beta
):
    for fixture in (alpha, beta):
        redis.client().delete(limits._key(fixture.tenant.schema_name))

    on_alpha, on_beta = bearer(alpha, "viewer"), bearer(beta, "viewer")

    async def scenario():
        first, second = await _session(alpha, on_alpha), await _session(alpha, on_alpha)
        other = await _session(beta, on_beta)
        assert await _runs(first, "1", alpha, 1) is None
        assert await _runs(second, "1", alpha, 2) is None
        refused = await _refused(second, "2")
        beta_runs = await _runs(other, "1", beta, 1)
        # Redis holds writes for a moment (as under load), so a release left to run after the
        # connection has closed would still be pending when the next line reads.
        redis.client().execute_command("CLIENT", "PAUSE", 300, "WRITE")
        await first.disconnect(
            timeout=DEADLINE
        )  # a deadline, not a pause: returns once the app has ended
        # Read with a blocking client, so nothing else on this loop runs first: the slot must be
        # free by the time the server has closed the connection, not a moment later.
        held_after_close = redis.client().zcard(limits._key(alpha.tenant.schema_name))
        again = await _runs(second, "3", alpha, 2)
        await second.disconnect()
        await other.disconnect()
        return refused, beta_runs, held_after_close, again

    with override_settings(LIVE_SUBSCRIPTIONS_PER_TENANT=2):
        refused, beta_runs, held_after_close, again = async_to_sync(scenario)()
    assert _limit_error(refused) == {
        "code": "THROTTLED",
        "reason": "TOO_MANY_SUBSCRIPTIONS",
        "limit": 2,
        "scope": "tenant",
    }
    assert beta_runs is None and held_after_close == 1 and again is None


def test_visitors_are_distinct_sessions_or_customers_of_the_last_minutes(
    alpha, django_capture_on_commit_callbacks
):
    now = timezone.now()
    with tenant_context(alpha.tenant):  # a snapshot reads the schema the connection is in
        before = snapshot(alpha.tenant, now=now)
    tag = now.timestamp()
    events = [
        {"type": "page_viewed", "time": now.isoformat(), "sessionId": f"s1-{tag}"},
        {
            "type": "product_viewed",
            "time": now.isoformat(),
            "sessionId": f"s1-{tag}",
        },  # the same visitor
        {
            "type": "page_viewed",
            "time": (now - timedelta(minutes=2)).isoformat(),
            "sessionId": f"s2-{tag}",
        },
        {
            "type": "page_viewed",
            "time": (now - timedelta(minutes=30)).isoformat(),
            "sessionId": f"s3-{tag}",
        },
    ]
    with tenant_context(alpha.tenant), django_capture_on_commit_callbacks(execute=True):
        outcome = ingest(tenant=alpha.tenant, events=enumerate(events), now=now)
    assert outcome.accepted == 4
    with tenant_context(alpha.tenant):
        after = snapshot(alpha.tenant, now=now)
    assert after.visitors - before.visitors == 2  # s3 is older than 5 minutes
    assert after.version > before.version
