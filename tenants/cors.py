"""CORS per tenant: an origin is allowed when the tenant's settings list it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from corsheaders.signals import check_request_enabled
from django.dispatch import receiver

if TYPE_CHECKING:
    from tenants.models import Tenant


def origin_allowed(tenant: Tenant | None, origin: str) -> bool:
    if tenant is None:
        return False
    return origin in tenant.settings.get("cors_allowed_origins", [])


@receiver(check_request_enabled)
def _tenant_origin(sender, request, **kwargs) -> bool:
    return origin_allowed(getattr(request, "tenant", None), request.headers.get("Origin", ""))
