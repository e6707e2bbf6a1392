"""Export background work. `run_export` runs in the schema of the tenant that asked
(tenant-schemas-celery, headers from apps.exports.services); beat calls `expire_all_tenants` in
public, which queues `expire_exports` once in each tenant's schema. `expire_exports` is retried
under the one policy (apps.common.retry); `run_export` never is (below)."""

from celery import shared_task
from django_tenants.utils import get_public_schema_name

from apps.common.retry import RetryingTask
from apps.exports import services
from tenants.models import Tenant


# Not retried: a failure marks the export failed for the user who asked (who asks again), and a
# retry would find it failed and do nothing.
@shared_task
def run_export(export_id: int) -> str:
    """Write one export's file (a failure marks the export failed)."""
    return services.run_export(export_id=export_id)


@shared_task(base=RetryingTask)
def expire_exports() -> int:
    """Delete this tenant's expired export files."""
    return services.expire_exports()


@shared_task
def expire_all_tenants() -> int:
    # Suspended tenants too: their files expire all the same.
    schemas = list(Tenant.objects.filter(is_template=False).exclude(schema_name=get_public_schema_name())
                   .values_list("schema_name", flat=True))
    for schema in schemas:
        expire_exports.apply_async(headers={"_schema_name": schema})
    return len(schemas)
