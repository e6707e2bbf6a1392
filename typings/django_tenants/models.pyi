# django-tenants ships no type hints. Without these two classes mypy sees the project's Tenant and
# Domain as subclasses of Any, so the Django plugin cannot read their fields and managers. Only
# what the project uses is declared; anything else is Any (the `__getattr__` at the end).
from typing import Any

from django.db import models

class TenantMixin(models.Model):
    auto_drop_schema: bool
    auto_create_schema: bool
    schema_name = models.CharField(max_length=63)
    # False when `check_if_exists` finds the schema, else None.
    def create_schema(
        self, check_if_exists: bool = False, sync_schema: bool = True, verbosity: int = 1
    ) -> bool | None: ...

class DomainMixin(models.Model):
    domain = models.CharField(max_length=253)
    tenant: models.ForeignKey[Any, Any]
    is_primary = models.BooleanField()

def __getattr__(name: str) -> Any: ...
