"""Coalesced live metrics: one hub per (process, tenant) computes the tenant's snapshot once and
hands it to every local subscriber; no subscriber ever queries the database.

The hub starts with the first local subscriber of its tenant and stops with the last. It joins
the tenant's `metrics` group with a channel of its own (one channel-layer message per process per
publish, however many subscribers the process holds), and computes a snapshot:
- at once on the first change after a quiet spell (leading edge),
- then at most once per INTERVAL while changes keep coming; a change during a computation or
  the pause after it marks the hub dirty, so the last change is always followed by a snapshot
  (trailing edge) and the final figures are always delivered,
- and every REFRESH seconds anyway (visitors of the last minutes fall off with time; the day
  turns over at midnight).

Each subscriber has a one-slot mailbox holding the newest undelivered snapshot: a slow
subscriber skips the intermediate ones rather than queueing them, and never gets an older data
version after a newer one. A new subscriber gets the hub's newest snapshot first.

After Redis came back (apps.live.layer re-joined the groups) every hub makes a snapshot at once:
what was written while Redis was away published nothing. A data version lower than the hub's
last one means Redis lost the counter; the hub puts the counter back (see `_compute`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from apps.analytics import cache
from apps.common.outages import REDIS_OUTAGES
from apps.live import bus, layer
from apps.live.snapshot import Snapshot, snapshot
from tenants.context import tenant_context

if TYPE_CHECKING:
    from tenants.models import Tenant

log = logging.getLogger(__name__)

INTERVAL = 0.25  # seconds between two snapshots of a tenant, at most 4 a second
REFRESH = 30.0  # seconds between snapshots when nothing is published
GROUP_REFRESH = 3600.0  # re-join the group well within channels-redis' group expiry (a day)


class Mailbox:
    def __init__(self) -> None:
        self._value: Snapshot | None = None
        self._version = -1
        self._ready = asyncio.Event()

    def put(self, value: Snapshot) -> None:
        if value.version < self._version:
            return
        self._version, self._value = value.version, value
        self._ready.set()

    async def __aiter__(self) -> AsyncIterator[Snapshot]:
        while True:
            await self._ready.wait()
            self._ready.clear()
            assert self._value is not None  # put() sets it before it sets _ready
            yield self._value


def _compute(tenant: Tenant, floor: int = -1) -> Snapshot:
    # The hub outlives requests: read the zone and currency again, so a time zone changed while
    # subscribers listen moves "today" at once (the change bumps the data version, so it comes here).
    tenant.refresh_from_db(fields=["time_zone", "currency"])
    with tenant_context(tenant):
        made = snapshot(tenant)
    if made.version < floor:
        # A hub computes one snapshot after the other, so a version below the last one it made
        # means Redis lost the counter (restarted empty): put it back, and these figures (made
        # after those of `floor`) stand for `floor`, or subscribers would drop them as older.
        cache.raise_version(tenant.schema_name, floor)
        made = replace(made, version=floor)
    return made


class Hub:
    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.group = bus.group(tenant.schema_name, "metrics")
        self.mailboxes: set[Mailbox] = set()
        self.latest: Snapshot | None = None
        self.computed = 0  # snapshots made (what the coalescing saves shows against publishes)
        self._dirty = asyncio.Event()
        self._channel: str | None = None
        self._task = asyncio.ensure_future(self._run())

    def join(self, mailbox: Mailbox) -> None:
        self.mailboxes.add(mailbox)
        if self.latest is not None:
            mailbox.put(self.latest)

    def refresh(self) -> None:
        """Make a snapshot soon, changed or not (e.g. after Redis came back: what was written
        while it was away published nothing)."""
        self._dirty.set()

    async def _join(self, channels) -> None:
        wait = INTERVAL
        while True:
            try:
                return await channels.group_add(self.group, self._channel)
            except REDIS_OUTAGES:  # Redis away as the hub starts: it joins once Redis is back
                await asyncio.sleep(wait)
                wait = min(wait * 2, 2.0)

    async def _run(self) -> None:
        channels = get_channel_layer()
        self._channel = await channels.new_channel()
        await self._join(channels)
        joined = time.monotonic()
        listener = asyncio.ensure_future(self._listen(channels))
        try:
            self._dirty.set()  # the first snapshot, for the first subscribers
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._dirty.wait(), REFRESH)
                self._dirty.clear()
                floor = -1 if self.latest is None else self.latest.version
                try:
                    self._deliver(await database_sync_to_async(_compute)(self.tenant, floor))
                except REDIS_OUTAGES as error:  # the refresh after Redis is back makes it
                    log.warning(
                        "Redis unavailable, live metrics snapshot of %s skipped: %s",
                        self.tenant.schema_name,
                        error,
                    )
                except Exception:  # a failed snapshot must not end the hub: the next change retries
                    log.exception("live metrics snapshot failed for %s", self.tenant.schema_name)
                if time.monotonic() - joined > GROUP_REFRESH:
                    await self._join(channels)
                    joined = time.monotonic()
                await asyncio.sleep(INTERVAL)
        finally:
            listener.cancel()

    async def _listen(self, layer) -> None:
        while True:
            message = await layer.receive(self._channel)
            if message.get("type") == bus.MESSAGE_TYPE and message.get("topic") == "metrics":
                self._dirty.set()

    def _deliver(self, made: Snapshot) -> None:
        self.computed += 1
        if self.latest is not None and made.version < self.latest.version:
            return
        unchanged = self.latest is not None and made.figures() == self.latest.figures()
        self.latest = made
        if unchanged:  # e.g. a catalog edit bumped the version: nothing for the dashboards
            return
        for mailbox in self.mailboxes:
            mailbox.put(made)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._channel is not None:
            await get_channel_layer().group_discard(self.group, self._channel)


_hubs: dict[tuple[asyncio.AbstractEventLoop, str], Hub] = {}
_closing: set[asyncio.Task] = set()


async def _refresh_all() -> None:
    """After a re-join of the channel layer (apps.live.layer): every hub of this event loop makes a
    snapshot, so figures written while Redis was away show without waiting for the next change."""
    loop = asyncio.get_running_loop()
    for (hub_loop, _), hub in list(_hubs.items()):
        if hub_loop is loop:
            hub.refresh()


layer.on_reset(_refresh_all)


@asynccontextmanager
async def updates(tenant: Tenant) -> AsyncIterator[AsyncIterator[Snapshot]]:
    """`async with updates(tenant) as snapshots: async for snapshot in snapshots: ...`"""
    key = (asyncio.get_running_loop(), tenant.schema_name)
    hub = _hubs.get(key)
    if hub is None:
        hub = _hubs[key] = Hub(tenant)
    mailbox = Mailbox()
    hub.join(mailbox)
    try:
        yield aiter(mailbox)
    finally:
        hub.mailboxes.discard(mailbox)
        if not hub.mailboxes and _hubs.get(key) is hub:
            del _hubs[key]
            # Not awaited here: this runs while the subscription is being cancelled.
            task = asyncio.ensure_future(hub.close())
            _closing.add(task)
            task.add_done_callback(_closing.discard)
