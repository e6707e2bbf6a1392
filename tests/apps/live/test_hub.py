"""A live-metrics hub outlives the request that started it: it reads its tenant's time zone
again for each snapshot, so "today" moves as soon as the tenant's zone changes."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

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
