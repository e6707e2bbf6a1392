"""The channel layer: channels-redis, made to live through a Redis restart (DESIGN §12, degraded
modes; issue 15).

Plain channels-redis has two ways of losing a subscriber when Redis restarts:
- every consumer's receive loop (`channel_layer.receive`, awaited by Channels' dispatcher next to
  the socket) raises the connection error, which ends the consumer: the socket closes without a
  close frame and uvicorn logs "Exception in ASGI application", for every open socket at once;
- group memberships live in Redis only, so a Redis that comes back empty (no persistence, or
  lost since its last write to disk) delivers nothing to anybody, silently, with every socket up.

This layer keeps a copy of the memberships this process made (`group_add`/`group_discard`) and:
- `receive` does not raise while Redis is away: it logs the outage once, waits for Redis (capped
  backoff, REJOIN_BACKOFF) and re-adds every membership, then receives again. The receiver that
  held the Redis connection always sees the error, so one restart means one re-join, for the
  whole process, at most a second after Redis answers again;
- a restart nobody saw fail (redis-py retries a command on a new connection by itself; a restart
  between two receives) is found by a marker key the re-join writes: at most every WATCH seconds
  a receiver sets it if missing; missing means Redis lost what this process wrote, so the
  memberships are re-added. One SET NX per process per WATCH seconds, however many subscribers.
  The marker lasts half of channels-redis' group expiry, so memberships are also refreshed before
  channels-redis drops them as stale (a subscription open longer than the expiry kept nothing).

Measured (tests/faults/test_redis_restart.py, a real uvicorn and Redis on this machine, under
another test run): after a SIGKILL and restart, the groups were joined again 0.15-0.2 s after
Redis answered, and the first order event reached the open subscriptions 0.4 s after (orders
placed every 0.25 s; one placed before the re-join is not delivered); after a flush, which no
connection error reveals, 5 s (WATCH). The other option, a periodic re-join by every subscriber, costs a write per
subscription per period and leaves subscribers deaf for up to a period after every restart: to
match the 0.1 s it would have to run several times a second per subscription.

Others that hold state in Redis for live subscribers (apps.live.limits' slots) register
`on_reset` callbacks, run after each re-join in the receiving event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from weakref import WeakKeyDictionary

from channels_redis.core import RedisChannelLayer as BaseRedisChannelLayer

from apps.common.outages import REDIS_OUTAGES

log = logging.getLogger(__name__)

WATCH = 5.0  # seconds between two checks of the marker, per process
REJOIN_BACKOFF = (0.1, 1.0)  # first and longest wait between two tries to re-join, in seconds

_reset_callbacks: list[Callable[[], Awaitable[None]]] = []


def on_reset(callback: Callable[[], Awaitable[None]]) -> None:
    """Run `await callback()` after each re-join (Redis came back, or lost this process's keys)."""
    _reset_callbacks.append(callback)


class RedisChannelLayer(BaseRedisChannelLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.memberships: dict[str, set[str]] = {}  # group -> this process's channels in it
        self._rejoining: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task] = (
            WeakKeyDictionary()
        )
        self._checked = time.monotonic()
        self._marked = False  # the marker is written with the first membership, then by re-joins

    @property
    def marker(self) -> str:
        return f"{self.prefix}:joined:{self.client_prefix}"

    async def group_add(self, group: str, channel: str) -> None:
        await super().group_add(group, channel)
        self.memberships.setdefault(group, set()).add(channel)
        if not self._marked:
            await self._mark()

    async def group_discard(self, group: str, channel: str) -> None:
        channels = self.memberships.get(group, set())
        channels.discard(channel)  # first: a receiver re-joining meanwhile leaves it out
        if not channels:
            self.memberships.pop(group, None)
        await super().group_discard(group, channel)

    async def receive(self, channel: str) -> dict:
        """The next message of `channel`, waiting through Redis outages instead of raising."""
        while True:
            try:
                return await self._receive_watching(channel)
            except REDIS_OUTAGES as error:
                await self._rejoin_when_back(error)

    async def _receive_watching(self, channel: str) -> dict:
        receiving = asyncio.ensure_future(super().receive(channel))
        try:
            while True:
                done, _ = await asyncio.wait([receiving], timeout=WATCH)
                if done:
                    return receiving.result()
                if time.monotonic() - self._checked >= WATCH:
                    self._checked = time.monotonic()
                    with contextlib.suppress(*REDIS_OUTAGES):  # the receive sees an outage too
                        if await self._marker_lost():
                            log.warning(
                                "This process's channel groups were gone from Redis (it restarted "
                                "empty, or their marker ran out); joining them again"
                            )
                            await self._rejoin()
        finally:
            if not receiving.done():
                receiving.cancel()
                with contextlib.suppress(asyncio.CancelledError, *REDIS_OUTAGES):
                    await receiving

    async def _marker_lost(self) -> bool:
        if not self.memberships:
            return False
        connection = self.connection(0)
        return bool(
            await connection.set(self.marker, 1, nx=True, ex=max(1, self.group_expiry // 2))
        )

    async def _mark(self) -> None:
        await self.connection(0).set(self.marker, 1, ex=max(1, self.group_expiry // 2))
        self._marked = True

    async def _rejoin_when_back(self, error: BaseException) -> None:
        """Wait until Redis answers and this process's groups are joined again; one waiter per
        event loop does the work, the others wait for it."""
        loop = asyncio.get_running_loop()
        task = self._rejoining.get(loop)
        if task is None or task.done():
            log.warning("Redis unavailable, live subscriptions wait for it: %s", error)
            task = self._rejoining[loop] = asyncio.ensure_future(self._rejoin_retrying())
        await asyncio.shield(task)

    async def _rejoin_retrying(self) -> None:
        wait, longest = REJOIN_BACKOFF
        started = time.monotonic()
        while True:
            try:
                joined = await self._rejoin()
            except REDIS_OUTAGES:
                await asyncio.sleep(wait)
                wait = min(wait * 2, longest)
                continue
            log.warning(
                "Redis is back after %.1f s; live subscriptions joined %d groups again",
                time.monotonic() - started,
                joined,
            )
            return

    async def _rejoin(self) -> int:
        """Add this process's channels to their groups again (one pipeline per shard), write the
        marker, then run the reset callbacks; how many groups."""
        now, memberships = (
            time.time(),
            {group: set(channels) for group, channels in self.memberships.items()},
        )
        pipes: dict[int, Any] = {}
        for group, channels in memberships.items():
            index = self.consistent_hash(group)
            if index not in pipes:
                pipes[index] = self.connection(index).pipeline(transaction=False)
            pipe = pipes[index]
            pipe.zadd(self._group_key(group), dict.fromkeys(channels, now))
            pipe.expire(self._group_key(group), self.group_expiry)
        for pipe in pipes.values():
            await pipe.execute()
        await self._mark()
        for callback in _reset_callbacks:
            try:
                await callback()
            except REDIS_OUTAGES:
                raise  # gone again: the whole re-join is tried again
            except Exception:  # one holder's failure must not keep the groups from the others
                log.exception("a channel layer reset callback failed")
        return len(memberships)
