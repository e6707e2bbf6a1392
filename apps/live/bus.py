"""The live bus: what writes tell subscribers of their tenant (DESIGN §7).

A write publishes a message on a *topic* of its tenant when its transaction commits
(`publish_on_commit`), or at once from work outside a request (`publish`, e.g. a Celery task).
Messages go through the channel layer (channels-redis) to the group `live.<schema>.<topic>`, so
one tenant's subscribers never receive another's: the schema is part of the group's name, and it
comes from the connection that wrote, never from the payload.

Subscriptions listen with `listen(consumer, schema, topic)` inside their resolver (the consumer is
the GraphQL WebSocket consumer, `info.context.request`). Payloads are small JSON-able dicts (ids,
figures): a subscriber reads objects it needs itself, with its own permissions.

Topics (one place, so publishers and subscribers agree):
- `orders`: {"event": created|paid|refunded|cancelled|status_changed, "order": id, "status": ...}
- `metrics`: {"version": n} — the tenant's analytics figures changed (live metrics coalesce these)
- `exports`: {"export": id, "status": ..., "rows": n, "total": n}
- `notifications`: {"notification": id}
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from apps.common.outages import after_commit
from tenants.db import connection

TOPICS = frozenset({"orders", "metrics", "exports", "notifications"})
MESSAGE_TYPE = "live.message"  # the channels message type (handled by strawberry's consumer)


def group(schema: str, topic: str) -> str:
    if topic not in TOPICS:
        raise ValueError(f"unknown live topic {topic!r}")
    return f"live.{schema}.{topic}"


async def publish_async(schema: str, topic: str, payload: dict[str, Any]) -> None:
    await get_channel_layer().group_send(
        group(schema, topic),
        {"type": MESSAGE_TYPE, "topic": topic, "schema": schema, "payload": payload},
    )


def publish(schema: str, topic: str, payload: dict[str, Any]) -> None:
    """Send now (sync code outside a transaction that matters: tasks, after commit)."""
    async_to_sync(publish_async)(schema, topic, payload)


def publish_on_commit(topic: str, payload: dict[str, Any] | Callable[[], dict[str, Any]]) -> None:
    """Send when the current transaction commits (never for one rolled back), to the tenant the
    connection is writing in. A callable payload is made after the commit."""
    schema = connection.schema_name
    group(schema, topic)  # an unknown topic fails here, in the writer, not after commit

    def send() -> None:
        publish(schema, topic, payload() if callable(payload) else payload)

    after_commit(send)


@asynccontextmanager
async def listen(
    consumer: Any, schema: str, topic: str, *, timeout: float | None = None
) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
    """`async with listen(...) as messages: async for message in messages: ...` — the payloads
    published on the tenant's topic while the block runs."""
    async with consumer.listen_to_channel(
        MESSAGE_TYPE, groups=[group(schema, topic)], timeout=timeout
    ) as raw:

        async def payloads() -> AsyncIterator[dict[str, Any]]:
            async for message in raw:
                if message.get("topic") == topic and message.get("schema") == schema:
                    yield message["payload"]

        yield payloads()
