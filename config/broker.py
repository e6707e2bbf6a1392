"""Celery's broker transport: kombu's Redis transport, made to survive losing Redis while a task
is running (issue 15, "queued tasks still run").

Found by tests/faults/test_redis_restart.py: when the connection to Redis drops while the worker
holds a message it has not acknowledged yet (every running task: tasks ack late), Celery closes
the dead connection after kombu has already let go of its transport, and closing the consumer's
channel then tries to give the unacknowledged messages back to Redis through a connection that no
longer has its parameters (`'NoneType' object has no attribute 'hostname'` in `_connparams`). That
AttributeError is not a connection error, so it escapes Celery's guard: "Unrecoverable error",
and the worker process exits instead of reconnecting (kombu 5.7, celery 5.7).

Here a channel whose transport is gone says so with a connection error, which Celery ignores
while closing; the worker goes on to reconnect. The unacknowledged messages are not given back at
that moment (Redis is unreachable anyway): the running task finishes, its acknowledgement fails,
and the message comes back once CELERY_VISIBILITY_TIMEOUT has passed (tasks are idempotent), or
is gone with a Redis that restarted empty."""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if (
            self.connection.client is None
        ):  # the transport was collected after the connection dropped
            raise RedisConnectionError("the broker connection is closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
