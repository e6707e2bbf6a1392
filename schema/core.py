"""Relay `node` and the `serverTime` subscription that proves the WebSocket pipe end to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Annotated

import strawberry
from strawberry import relay
from strawberry.types import Info

from schema import ids
from schema.errors import bad_request


@strawberry.type
class Query:
    @strawberry.field(
        description="The object an id names, if this tenant has it and you may see it: null for "
        "anything else (another tenant's id, a malformed one, a deleted object)."
    )
    def node(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The ID of the object.")],
    ) -> relay.Node | None:
        return ids.node(info, id)


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def server_time(
        self, interval: float = 1.0, count: int | None = None
    ) -> AsyncGenerator[datetime, None]:
        """The server's clock every `interval` seconds (0.1 to 60), `count` times or forever."""
        if not 0.1 <= interval <= 60 or (count is not None and count < 1):
            raise bad_request("interval must be 0.1 to 60 seconds and count at least 1.")
        sent = 0
        while count is None or sent < count:
            yield datetime.now(UTC)
            sent += 1
            if count is None or sent < count:
                await asyncio.sleep(interval)
