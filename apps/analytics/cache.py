"""Analytics answers cached in Redis under the tenant and its data version (DESIGN §7).

Every write that changes what analytics show calls `bump_on_commit()` inside its transaction;
when it commits, the tenant's version goes up, so every answer cached before is never read
again (it expires on its own): a cached answer is never stale and nothing needs a sweep. An
answer computed while a write commits is stored under the version read before it started, which
the bump has already left behind.

Answers hold figures and ids only (names and objects are resolved fresh by the API), so edits
that change no figure need no bump. Hits and misses are counted per tenant."""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections.abc import Callable
from typing import TypeVar

from apps.analytics import hooks
from apps.common import redis
from apps.common.outages import REDIS_OUTAGES, after_commit, without_redis
from tenants.db import connection

T = TypeVar("T")
log = logging.getLogger(__name__)
TTL_SECONDS = 24 * 3600


def _schema() -> str:
    return connection.active_tenant().schema_name


def version(schema: str | None = None) -> int:
    raw = redis.client().get(redis.key("analytics", schema or _schema(), "version"))
    return int(raw or 0)


def bump(schema: str | None = None) -> int:
    return int(redis.client().incr(redis.key("analytics", schema or _schema(), "version")))


_RAISE = """
local now = tonumber(redis.call('GET', KEYS[1]) or '0')
if now < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) return tonumber(ARGV[1]) end
return now
"""


def raise_version(schema: str, floor: int) -> int:
    """Put the version back to at least `floor`, atomically; the version after. For a reader that
    saw `floor` before and the version lower now: only a Redis that lost the key (restarted
    without it) makes the version go back, and a version must never go back (live metrics drop an
    older version; clients are told it never goes back)."""
    return int(redis.client().eval(_RAISE, 1, redis.key("analytics", schema, "version"), floor))


def bump_on_commit() -> None:
    """Call inside the transaction of a write that changes analytics figures. After the bump,
    `hooks.figures_changed` tells of the new version (the live bus: apps.live.hub coalesces)."""
    schema = _schema()
    after_commit(lambda: hooks.figures_changed.send(schema=schema, version=bump(schema)))


def cached(name: str, key: str, compute: Callable[[], T], *, schema: str | None = None) -> T:
    """`compute()`'s answer for (`name`, `key`) in the current tenant at its current data
    version, from Redis when there (computed every time while Redis cannot be reached)."""
    schema = schema or _schema()
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    store = redis.client()
    try:
        slot = redis.key("analytics", schema, "v", version(schema), name, digest)
        raw = store.get(slot)
    except REDIS_OUTAGES as error:
        log.warning("Redis unavailable, analytics answer computed without the cache: %s", error)
        return compute()
    if raw is not None:
        store.hincrby(redis.key("analytics", schema, "stats"), "hits", 1)
        # only this module writes these keys; a client without decode_responses reads bytes, which
        # redis-py's types cannot tell from its options
        return pickle.loads(raw)  # type: ignore[arg-type]
    answer = compute()

    def keep() -> None:
        pipe = store.pipeline(transaction=False)
        pipe.set(slot, pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL), ex=TTL_SECONDS)
        pipe.hincrby(redis.key("analytics", schema, "stats"), "misses", 1)
        pipe.execute()

    without_redis(keep, None, "analytics answer not cached")
    return answer


def stats(schema: str | None = None) -> dict[str, int]:
    raw = redis.client().hgetall(redis.key("analytics", schema or _schema(), "stats"))
    return {"hits": int(raw.get(b"hits", 0)), "misses": int(raw.get(b"misses", 0))}
