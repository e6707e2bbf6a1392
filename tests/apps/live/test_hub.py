"""A live-metrics hub outlives the request that started it: it reads its tenant's time zone
again for each snapshot, so "today" moves as soon as the tenant's zone changes; and its data
version never goes back, even after Redis lost the counter."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from apps.analytics import cache
from apps.common import redis
from apps.live import hub
from tenants.models import Tenant

# 25 hours apart: their dates always differ.
WEST, EAST = "Pacific/Pago_Pago", "Pacific/Kiritimati"


def test_a_hub_follows_a_new_time_zone(alpha):
    Tenant.objects.filter(pk=alpha.tenant.pk).update(time_zone=WEST)
    held = Tenant.objects.get(pk=alpha.tenant.pk)  # what a hub keeps from its first subscriber
    assert hub._compute(held).day == datetime.now(ZoneInfo(WEST)).date()
    Tenant.objects.filter(pk=alpha.tenant.pk).update(time_zone=EAST)
    assert hub._compute(held).day == datetime.now(ZoneInfo(EAST)).date()


def test_a_version_that_went_back_is_put_back_to_the_last_one_the_hub_made(alpha):
    """Only a Redis that lost the counter (restarted empty) makes the version go back: the hub
    puts it back, so subscribers, which drop older versions, see the new figures."""
    schema = alpha.tenant.schema_name
    redis.client().delete(redis.key("analytics", schema, "version"))  # what a restart leaves
    assert cache.version(schema) == 0
    assert hub._compute(alpha.tenant, floor=7).version == 7
    assert cache.version(schema) == 7 and cache.bump(schema) == 8
    assert hub._compute(alpha.tenant, floor=7).version == 8  # a higher version is left as it is
    assert cache.raise_version(schema, 3) == 8  # never lowered
