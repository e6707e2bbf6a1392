"""One Redis client per process for the work that talks to Redis directly (rate buckets)."""

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=1)
def client() -> redis.Redis:
    # Bounded waits: a Redis that is down or unreachable is an answer within a second or two
    # (apps.common.outages), never a request hanging on a socket.
    return redis.Redis.from_url(
        settings.REDIS_URL, health_check_interval=30, socket_connect_timeout=1, socket_timeout=2
    )


def key(*parts: object) -> str:
    """A key under this deployment's prefix: `key("throttle", schema, who)`."""
    return ":".join([settings.REDIS_KEY_PREFIX, *(str(part) for part in parts)])
