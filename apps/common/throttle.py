"""A leaky bucket per tenant and credential in Redis, as Shopify's: each query costs points,
the bucket refills at a steady rate, and a query that costs more than is left is refused.
One Lua script reads, refills and spends atomically, on Redis' own clock."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from apps.common import redis as redis_config
from apps.common.outages import without_redis

_SPEND = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = math.max(0, tonumber(ARGV[3]))
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'level', 'ts')
local level = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
level = math.min(capacity, level + math.max(0, now - ts) * rate)
local allowed = 0
if level >= cost then
  level = level - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'level', tostring(level), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return {allowed, tostring(level)}
"""

_PEEK = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'level', 'ts')
local level = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
return tostring(math.min(capacity, level + math.max(0, now - ts) * rate))
"""

_REFUND = """
local capacity = tonumber(ARGV[1])
local level = tonumber(redis.call('HGET', KEYS[1], 'level') or capacity)
level = math.min(capacity, level + tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'level', tostring(level))
return tostring(level)
"""


@dataclass(frozen=True)
class BucketStatus:
    allowed: bool
    currently_available: float
    maximum_available: int
    restore_rate: float

    def retry_after(self, cost: int) -> float:
        """Seconds until the bucket holds `cost` points again."""
        return max(0.0, (cost - self.currently_available) / self.restore_rate)

    def as_extension(self) -> dict[str, float | int]:
        return {
            "maximumAvailable": self.maximum_available,
            "currentlyAvailable": int(self.currently_available),
            "restoreRate": self.restore_rate,
        }


def bucket_key(schema_name: str, credential_id: str) -> str:
    return redis_config.key("throttle", schema_name, credential_id)


def spend(bucket: str, cost: int) -> BucketStatus | None:
    """Pay `cost` from the bucket; None while Redis cannot be reached: the operation runs
    unmetered (apps.common.outages, the degraded modes)."""
    capacity, rate = settings.GRAPHQL_BUCKET_SIZE, settings.GRAPHQL_RESTORE_RATE

    def pay() -> BucketStatus:
        allowed, level = redis_config.client().eval(_SPEND, 1, bucket, capacity, rate, cost)
        return BucketStatus(bool(allowed), float(level), capacity, rate)

    return without_redis(pay, None, "operation not metered")


def peek(bucket: str) -> BucketStatus | None:
    """The bucket as it stands, charging nothing (for refused operations); None without Redis."""
    capacity, rate = settings.GRAPHQL_BUCKET_SIZE, settings.GRAPHQL_RESTORE_RATE

    def look() -> BucketStatus:
        level = redis_config.client().eval(_PEEK, 1, bucket, capacity, rate)
        return BucketStatus(True, float(level), capacity, rate)

    return without_redis(look, None, "bucket not read")


def refund(bucket: str, points: int) -> float | None:
    """Give back what a query was charged but did not use; None without Redis."""
    capacity = settings.GRAPHQL_BUCKET_SIZE
    return without_redis(
        lambda: float(redis_config.client().eval(_REFUND, 1, bucket, capacity, points)),
        None,
        "unused points not given back",
    )
