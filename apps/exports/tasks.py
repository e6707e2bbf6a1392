"""Export background work. `run_export` runs in the schema of the tenant that asked
(tenant-schemas-celery, headers from apps.exports.services). Beat calls two tasks in public that
queue work once in each tenant's schema: `expire_all_tenants` (`expire_exports`, every tenant) and
`reconcile_all_tenants` (`reconcile_exports`, active tenants: exports whose message was lost).
All of them run under the one retry policy (apps.common.retry)."""

from celery import shared_task

from apps.common.retry import RetryingTask
from apps.exports import services
from tenants.tasks import queue_in_each_tenant


# Retried on outages only (the database or Redis away: the export is queued again, not failed);
# any other failure marks the export failed for the user who asked, and a retry would find it
# failed and do nothing. A worker killed mid-run leaves the message unacknowledged: the broker
# hands it out again and the run starts over (services.run_export).
@shared_task(base=RetryingTask, bind=True)
def run_export(self, export_id: int) -> str:
    """Write one export's file (a failure marks the export failed)."""
    return services.run_export(export_id=export_id, run_id=self.request.id or "")


@shared_task(base=RetryingTask)
def expire_exports() -> int:
    """Delete this tenant's expired export files."""
    return services.expire_exports()


@shared_task(base=RetryingTask)
def reconcile_exports() -> dict[str, int]:
    """Queue again this tenant's exports whose message was lost."""
    return services.reconcile_exports()


@shared_task
def expire_all_tenants() -> int:
    # Suspended tenants too: their files expire all the same.
    return queue_in_each_tenant(expire_exports, active_only=False)


@shared_task
def reconcile_all_tenants() -> int:
    # Active tenants only: a suspended tenant's exports wait for it to come back.
    return queue_in_each_tenant(reconcile_exports, active_only=True)
