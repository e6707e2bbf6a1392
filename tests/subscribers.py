"""Waiting for a subscription to be listening, instead of sleeping and hoping: a subscription
listens once its consumer has joined its tenant's topic group in the channel layer (Redis),
which any process sharing that Redis can see."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from channels.layers import get_channel_layer

from apps.live import bus


@asynccontextmanager
async def joining(schema: str, topic: str, *, timeout: float = 30.0) -> AsyncIterator[None]:
    """`async with joining(schema, topic): <subscribe>` ends once one more listener than before
    has joined the group of the tenant's topic."""
    layer = get_channel_layer()
    group = bus.group(schema, topic)
    redis, key = layer.connection(layer.consistent_hash(group)), layer._group_key(group)
    before = await redis.zcard(key)
    yield
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await redis.zcard(key) <= before:
        if loop.time() > deadline:
            raise AssertionError(f"no subscription joined {group} within {timeout} s")
        await asyncio.sleep(0.02)
