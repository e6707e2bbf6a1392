"""Committed data for tests whose readers have database connections of their own (real threads,
a Celery worker, a server): such readers never see rows inside the test's transaction."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.db import connection
from django_tenants.utils import tenant_context

from tenants.models import Domain, Tenant

T = TypeVar("T")


def run_committed(tenant: Tenant, work: Callable[[], T]) -> T:
    """`work()` in `tenant`'s schema, in a thread of its own on a connection of its own, so it
    commits as it goes, outside the test's transaction; what it returns or raises."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            with tenant_context(tenant):
                result["value"] = work()
        except BaseException as error:  # handed to the test thread
            result["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


@contextmanager
def throwaway_tenant(
    django_db_blocker: Any, slug: str, name: str, *, domain: str | None = None
) -> Iterator[Tenant]:
    """A committed tenant of its own (with `domain` as its primary host, if given), dropped on exit.

    Enter it in a fixture the test asks for before `db`, so it is made before the test's
    transaction opens and other connections see it; fill it inside `tenant_context(tenant)`."""
    with django_db_blocker.unblock():
        assert not connection.in_atomic_block
        connection.set_schema_to_public()
        stale = Tenant.objects.filter(slug=slug).first()
        if stale is not None:  # left over by an interrupted run
            stale.delete(force_drop=True)
        tenant = Tenant(schema_name=slug.replace("-", "_"), slug=slug, name=name)
        tenant.save()  # clones the template schema
        if domain is not None:
            Domain.objects.create(domain=domain, tenant=tenant, is_primary=True)
        connection.set_schema_to_public()  # what the caller's `tenant_context` goes back to
        try:
            yield tenant
        finally:
            connection.set_schema_to_public()
            Tenant.objects.get(pk=tenant.pk).delete(force_drop=True)
