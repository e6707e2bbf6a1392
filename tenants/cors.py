"""CORS per tenant: an origin is allowed when the tenant's settings list it."""

from corsheaders.signals import check_request_enabled
from django.dispatch import receiver


def origin_allowed(tenant, origin: str) -> bool:
    if tenant is None:
        return False
    return origin in tenant.settings.get("cors_allowed_origins", [])


@receiver(check_request_enabled)
def _tenant_origin(sender, request, **kwargs) -> bool:
    return origin_allowed(getattr(request, "tenant", None), request.headers.get("Origin", ""))
