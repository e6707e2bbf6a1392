"""Tenants (merchants) and the host names that lead to them. Both live in the public schema."""

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models, transaction
from django_tenants.models import DomainMixin, TenantMixin
from django_tenants.postgresql_backend.base import _check_schema_name
from django_tenants.utils import schema_exists

from tenants import hooks
from tenants.cloning import clone_schema
from tenants.db import connection

SLUG_VALIDATOR = RegexValidator(
    r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$",
    "3 to 40 lower-case letters, digits or '-', starting with a letter.",
)
RESERVED_SLUGS = frozenset({"www", "api", "admin", "public", "static", "media", "platform"})

# The keys a tenant's settings may carry, with the type each must have.
SETTING_TYPES: dict[str, type | tuple[type, ...]] = {
    "cors_allowed_origins": list,
    "vip_threshold": (str, int),
    "high_value_order_threshold": (str, int),
    "low_stock_default": int,
}


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone {value!r}.")


def validate_tenant_settings(value: object) -> None:
    if not isinstance(value, dict):
        raise ValidationError("Settings must be an object.")
    for key, item in value.items():
        expected = SETTING_TYPES.get(key)
        if expected is None:
            raise ValidationError(f"Unknown setting {key!r}.")
        if not isinstance(item, expected):
            raise ValidationError(f"Setting {key!r} has the wrong type.")
    origins = value.get("cors_allowed_origins", [])
    for origin in origins:
        if not isinstance(origin, str) or not origin.startswith(("http://", "https://")):
            raise ValidationError(f"CORS origin {origin!r} must start with http:// or https://.")


class Tenant(TenantMixin):
    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=40, unique=True, validators=[SLUG_VALIDATOR])
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    currency = models.CharField(max_length=3, default="USD")
    settings = models.JSONField(default=dict, blank=True, validators=[validate_tenant_settings])
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # The template schema new tenants are cloned from is a tenant row too, so that
    # `migrate_schemas` keeps it current; it never serves requests.
    is_template = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    auto_create_schema = True
    auto_drop_schema = True

    class Meta:
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return self.slug

    def create_schema(
        self, check_if_exists: bool = False, sync_schema: bool = True, verbosity: int = 1
    ) -> bool | None:
        created = self._create_schema(check_if_exists, sync_schema, verbosity)
        if created is not False:
            hooks.schema_created.send(schema_name=self.schema_name)
        return created

    def _create_schema(
        self, check_if_exists: bool, sync_schema: bool, verbosity: int
    ) -> bool | None:
        """Clone the template (tenants.cloning) and stop there: its `django_migrations` rows come
        along, so the clone is exactly as migrated as the template. django-tenants would then
        run `migrate_schemas --fake`, ~0.15 s of loading the migration graph to record nothing."""
        base = settings.TENANT_BASE_SCHEMA
        if not sync_schema or self.schema_name == base or not schema_exists(base):
            return super().create_schema(check_if_exists, sync_schema, verbosity)
        if check_if_exists and schema_exists(self.schema_name):
            return False
        _check_schema_name(self.schema_name)
        with transaction.atomic():
            clone_schema(base, self.schema_name)
        connection.set_schema_to_public()
        return True

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    def clean(self) -> None:
        if self.currency and (len(self.currency) != 3 or not self.currency.isalpha()):
            raise ValidationError({"currency": "Use a three-letter ISO 4217 code."})
        self.currency = self.currency.upper()


class Domain(DomainMixin):
    def __str__(self) -> str:
        return self.domain
