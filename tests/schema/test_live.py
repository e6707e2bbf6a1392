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
from apps.live import limits
from apps.live.snapshot import snapshot
from config import redis
from tenants.context import tenant_context
from tests.test_websocket import bearer, communicator, open_session

ORDER_EVENTS = "subscription { orderEvents { event } }"


async def _session(fixture, credentials: dict):
    ws = communicator(fixture.host)
    ack = await open_session(ws, credentials)
    assert json.loads(ack["text"])["type"] == "connection_ack"
    return ws


async def _subscribe(ws, id: str, query: str = ORDER_EVENTS) -> dict | None:
    """The error the subscription answers with at once, or None when it runs."""
    await ws.send_json_to({"id": id, "type": "subscribe", "payload": {"query": query}})
    if await ws.receive_nothing(timeout=0.5):
        return None
    answer = await ws.receive_json_from()
    if answer["type"] == "next" and "errors" in answer["payload"]:
        assert await ws.receive_json_from() == {"id": id, "type": "complete"}
    return answer


async def _until_held(fixture, count: int, deadline: float = 30.0) -> None:
    """Wait (bounded) until the tenant's slots in Redis number `count`."""
    key, client = limits._key(fixture.tenant.schema_name), redis.client()
    give_up = time.monotonic() + deadline
    while client.zcard(key) != count:
        assert time.monotonic() < give_up, f"the tenant still holds {client.zcard(key)} slots"
        await asyncio.sleep(0.01)


def _limit_error(message: dict) -> dict:
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    error, = errors
    return error["extensions"]


def test_a_connection_holds_at_most_its_limit_and_stays_up(alpha):
    redis.client().delete(limits._key(alpha.tenant.schema_name))

    credentials = bearer(alpha, "viewer")

    async def scenario():
        ws = await _session(alpha, credentials)
        assert await _subscribe(ws, "1") is None
        assert await _subscribe(ws, "2") is None
        refused = await _subscribe(ws, "3")
        await ws.send_json_to({"id": "1", "type": "complete"})  # frees a slot once its task has ended
        await _until_held(alpha, 1)
        again = await _subscribe(ws, "4")
        still_up = await _subscribe(ws, "5", "subscription { serverTime(interval: 0.1, count: 1) }")
        await ws.disconnect()
        return refused, again, still_up

    with override_settings(LIVE_SUBSCRIPTIONS_PER_CONNECTION=2):
        refused, again, still_up = async_to_sync(scenario)()
    assert refused["id"] == "3"
    assert _limit_error(refused) == {"code": "THROTTLED", "reason": "TOO_MANY_SUBSCRIPTIONS", "limit": 2,
                                     "scope": "connection"}
    assert again is None
    assert still_up["type"] == "next" and "serverTime" in still_up["payload"]["data"]


def test_a_tenant_holds_at_most_its_limit_across_connections_and_other_tenants_do_not_count(alpha, beta):
    for fixture in (alpha, beta):
        redis.client().delete(limits._key(fixture.tenant.schema_name))

    on_alpha, on_beta = bearer(alpha, "viewer"), bearer(beta, "viewer")

    async def scenario():
        first, second = await _session(alpha, on_alpha), await _session(alpha, on_alpha)
        other = await _session(beta, on_beta)
        assert await _subscribe(first, "1") is None
        assert await _subscribe(second, "1") is None
        refused = await _subscribe(second, "2")
        beta_runs = await _subscribe(other, "1")
        # Redis holds writes for a moment (as under load), so a release left to run after the
        # connection has closed would still be pending when the next line reads.
        redis.client().execute_command("CLIENT", "PAUSE", 300, "WRITE")
        await first.disconnect(timeout=30)  # a deadline, not a pause: returns once the app has ended
        # Read with a blocking client, so nothing else on this loop runs first: the slot must be
        # free by the time the server has closed the connection, not a moment later.
        held_after_close = redis.client().zcard(limits._key(alpha.tenant.schema_name))
        again = await _subscribe(second, "3")
        await second.disconnect()
        await other.disconnect()
        return refused, beta_runs, held_after_close, again

    with override_settings(LIVE_SUBSCRIPTIONS_PER_TENANT=2):
        refused, beta_runs, held_after_close, again = async_to_sync(scenario)()
    assert _limit_error(refused) == {"code": "THROTTLED", "reason": "TOO_MANY_SUBSCRIPTIONS", "limit": 2,
                                     "scope": "tenant"}
    assert beta_runs is None and held_after_close == 1 and again is None


def test_visitors_are_distinct_sessions_or_customers_of_the_last_minutes(alpha, django_capture_on_commit_callbacks):
    now = timezone.now()
    before = snapshot(alpha.tenant, now=now)
    tag = now.timestamp()
    events = [
        {"type": "page_viewed", "time": now.isoformat(), "sessionId": f"s1-{tag}"},
        {"type": "product_viewed", "time": now.isoformat(), "sessionId": f"s1-{tag}"},  # the same visitor
        {"type": "page_viewed", "time": (now - timedelta(minutes=2)).isoformat(), "sessionId": f"s2-{tag}"},
        {"type": "page_viewed", "time": (now - timedelta(minutes=30)).isoformat(), "sessionId": f"s3-{tag}"},
    ]
    with tenant_context(alpha.tenant), django_capture_on_commit_callbacks(execute=True):
        outcome = ingest(tenant=alpha.tenant, events=enumerate(events), now=now)
    assert outcome.accepted == 4
    after = snapshot(alpha.tenant, now=now)
    assert after.visitors - before.visitors == 2  # s3 is older than 5 minutes
    assert after.version > before.version
