"""How many subscriptions a connection and a tenant may hold. Subscription resolvers use it
through schema.live.subscription_slot, which turns TooManySubscriptions into a GraphQL error.

- Per connection (LIVE_SUBSCRIPTIONS_PER_CONNECTION): counted on the consumer, in its process.
- Per tenant, across the deployment (LIVE_SUBSCRIPTIONS_PER_TENANT): a Redis sorted set per
  tenant of the slots held, each scored with its expiry. Taking a slot drops the expired ones
  and counts the rest in one Lua script (atomic across processes); each process renews the
  expiry of its slots every HEARTBEAT seconds, so the slots of a process that died without
  releasing them lapse after SLOT_TTL instead of counting forever (what a plain counter with a
  TTL would do under steady traffic).

Over a limit, `slot()` raises TooManySubscriptions before the subscription starts; the socket
stays up. A connection's slots are free again by the time the server has closed it
(release_connection, called on disconnect), so a client that reconnects at once is not refused.

Redis restarted empty: the channel layer's re-join (apps.live.layer.on_reset) writes every slot
this process holds back at once, so the limit still counts the open subscriptions; a heartbeat
or release while Redis is away is logged and skipped (slots lapse after SLOT_TTL at worst)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from weakref import WeakKeyDictionary

import redis.asyncio
from django.conf import settings

from apps.common import redis as redis_config
from apps.common.outages import REDIS_OUTAGES
from apps.live import layer

log = logging.getLogger(__name__)

SLOT_TTL = 120  # seconds a slot lives without being renewed
HEARTBEAT = 30

_PROCESS = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
_serial = itertools.count(1)
_clients: WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = WeakKeyDictionary()
_held: dict[str, set[str]] = {}  # this process's slots: tenant key -> members
_background: set[asyncio.Task] = set()
_heartbeats: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task] = WeakKeyDictionary()

# KEYS[1] the tenant's slots; ARGV: now, limit, expiry, member, key ttl
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


def _client() -> redis.asyncio.Redis:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        # Blocking: a burst of subscribes waits for a connection instead of failing.
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            settings.REDIS_URL, max_connections=32, timeout=10
        )
        client = _clients[loop] = redis.asyncio.Redis(connection_pool=pool)
    return client


def _key(schema: str) -> str:
    return redis_config.key("live", schema, "subscriptions")


class TooManySubscriptions(Exception):
    def __init__(self, limit: int, scope: str) -> None:
        super().__init__(f"At most {limit} subscriptions per {scope}; end one first.")
        self.limit, self.scope = limit, scope


def _in_background(coroutine) -> asyncio.Task:
    task = asyncio.ensure_future(coroutine)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


async def _write_held(*, only_existing: bool) -> int:
    """Write this process's slots with a new expiry (only those still there, or all); how many
    were added."""
    expiry = time.time() + SLOT_TTL
    pipe = _client().pipeline(transaction=False)
    for key, members in list(_held.items()):
        pipe.zadd(key, dict.fromkeys(members, expiry), xx=only_existing)
        pipe.expire(key, SLOT_TTL)
    return sum((await pipe.execute())[::2])  # ZADD's answers (EXPIRE's between them)


async def _renew() -> None:
    """Push the expiry of this process's slots forward while it holds any. A heartbeat while Redis
    is away is skipped, not the end of the heartbeats (the slots would lapse under open
    subscriptions, and the tenant's limit stop counting them)."""
    while _held:
        await asyncio.sleep(HEARTBEAT)
        try:
            await _write_held(only_existing=True)
        except REDIS_OUTAGES as error:
            log.warning("Redis unavailable, subscription slots not renewed: %s", error)


async def _hold_again() -> None:
    """After Redis came back empty (apps.live.layer re-joined its groups): the open subscriptions
    take their slots again, so the tenant's limit counts them. A slot released while this runs
    may be written back; it lapses after SLOT_TTL."""
    if _held and (added := await _write_held(only_existing=False)):
        log.warning("Redis lost %d live subscription slots; held again", added)


layer.on_reset(_hold_again)


async def _release(key: str, member: str) -> None:
    await _client().zrem(key, member)


def _connection_slots(consumer: Any) -> dict[str, str]:
    """The tenant slots a connection holds and has not yet seen released: member -> key."""
    slots = getattr(consumer, "live_slots", None)
    if slots is None:
        slots = consumer.live_slots = {}
    return slots


async def release_connection(consumer: Any) -> None:
    """Free every tenant slot a closing connection still holds. Called by the consumer when it
    disconnects: a subscription's own clean-up runs in a task graphql-core does not wait for, so
    without this a client that reconnects at once could find its old slots still counted."""
    slots = _connection_slots(consumer)
    if not slots:
        return
    pipe = _client().pipeline(transaction=False)
    for member, key in list(slots.items()):
        pipe.zrem(key, member)
    try:
        await pipe.execute()
    except (
        REDIS_OUTAGES
    ) as error:  # a socket closing while Redis is away: they lapse after SLOT_TTL
        log.warning("Redis unavailable, %d subscription slots left to lapse: %s", len(slots), error)
    slots.clear()


@asynccontextmanager
async def slot(consumer: Any, schema: str) -> AsyncIterator[None]:
    """Hold one subscription slot of the connection (`consumer`) and of the tenant while the
    block runs; TooManySubscriptions when either is full."""
    per_connection, per_tenant = (
        settings.LIVE_SUBSCRIPTIONS_PER_CONNECTION,
        settings.LIVE_SUBSCRIPTIONS_PER_TENANT,
    )
    held = getattr(consumer, "live_subscriptions", 0)
    if held >= per_connection:
        raise TooManySubscriptions(per_connection, "connection")
    consumer.live_subscriptions = held + 1  # before any await: a concurrent subscribe sees it
    key, member, now = _key(schema), f"{_PROCESS}:{next(_serial)}", time.time()
    slots = _connection_slots(consumer)
    slots[member] = key  # before the take: a disconnect during it frees the slot too
    try:
        if not await _client().eval(
            _TAKE, 1, key, now, per_tenant, now + SLOT_TTL, member, SLOT_TTL
        ):
            raise TooManySubscriptions(per_tenant, "tenant")
    except BaseException:
        consumer.live_subscriptions -= 1
        slots.pop(member, None)
        raise
    _held.setdefault(key, set()).add(member)
    loop = asyncio.get_running_loop()
    if (beat := _heartbeats.get(loop)) is None or beat.done():
        _heartbeats[loop] = asyncio.ensure_future(_renew())
    try:
        yield
    finally:
        consumer.live_subscriptions -= 1
        members = _held.get(key, set())
        members.discard(member)
        if not members:
            _held.pop(key, None)
        # Not awaited: this runs while the subscription is being cancelled. A release still
        # pending when the connection closes is done by release_connection; one lost in a crash
        # lapses after SLOT_TTL.
        release = _in_background(_release(key, member))

        def released(done: asyncio.Task) -> None:
            if not done.cancelled() and done.exception() is None:
                slots.pop(member, None)

        release.add_done_callback(released)
