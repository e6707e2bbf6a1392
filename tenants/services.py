"""The template tenant new tenants are cloned from (DESIGN §3). Provisioning a tenant, with its
owner and audit trail, is apps.provisioning's: it needs apps that sit above tenants."""

from __future__ import annotations

from django.conf import settings
from django_tenants.utils import schema_exists

from tenants.models import Tenant

TEMPLATE_SLUG = "tenant-template"


def ensure_template() -> Tenant:
    """The template tenant (no domain), created and migrated once; `migrate_schemas` keeps it
    current on every deploy because it is a tenant row."""
    template = Tenant.objects.filter(schema_name=settings.TENANT_BASE_SCHEMA).first()
    if template is None:
        template = Tenant(
            schema_name=settings.TENANT_BASE_SCHEMA,
            name="Template",
            slug=TEMPLATE_SLUG,
            is_template=True,
        )
        template.save()  # no base schema yet: creates and migrates it
    elif not schema_exists(template.schema_name):
        template.create_schema(check_if_exists=True)
    return template
