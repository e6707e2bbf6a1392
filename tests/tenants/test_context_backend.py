"""The database backend follows the tenant context (tenants.backend, tenants.context): every new
entry of a tenant is applied at the next cursor, even the same tenant entered again after code in
an earlier block switched the connection explicitly (make test-stress seed 45337 failed on that:
a live-metrics test read the public schema)."""

from __future__ import annotations

from django.db import connection
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.catalog.models import Product
from tenants.context import tenant_context


def test_entering_a_tenant_again_after_an_explicit_switch_applies_it_again(alpha):
    with tenant_context(alpha.tenant):
        Product.objects.count()
        connection.set_schema_to_public()  # an explicit switch inside the block wins there
        assert connection.schema_name == "public"
    with tenant_context(alpha.tenant):  # the same tenant object, entered anew
        Product.objects.count()  # ProgrammingError (no catalog_product in public) before the fix
        assert connection.schema_name == alpha.tenant.schema_name


def test_an_explicit_switch_inside_the_block_still_wins(alpha, beta):
    with tenant_context(alpha.tenant):
        Product.objects.count()
        connection.set_tenant(beta.tenant)
        Product.objects.count()
        assert connection.schema_name == beta.tenant.schema_name


def test_a_task_run_in_place_leaves_the_callers_context_as_it_was(alpha):
    from celery import shared_task

    from tenants.context import current_tenant

    @shared_task
    def noop() -> None:
        return None

    before = current_tenant.get()
    with tenant_context(alpha.tenant):
        noop.apply(headers={"_schema_name": alpha.tenant.schema_name})
        assert current_tenant.get() is alpha.tenant
    assert current_tenant.get() is before


def test_after_the_last_block_the_connection_is_back_where_it_was(alpha):
    """make test-stress seed 2845: a block of ours left the connection in alpha's schema, and a
    sign-in after it (no block) wrote its audit entry there."""
    connection.set_schema_to_public()
    with tenant_context(alpha.tenant):
        Product.objects.count()
    assert connection.active_tenant().schema_name == "public"
    User.objects.count()  # a query outside every block
    assert connection.schema_name == "public"


def test_a_block_inside_an_explicit_switch_returns_to_that_switch(alpha, beta):
    # From a known start: schema_context gives back what it found, and an earlier test's explicit
    # switch may have left beta (make test-stress seed 62909 found 'beta' at the end).
    connection.set_schema_to_public()
    with schema_context(alpha.tenant.schema_name):  # django-tenants' explicit switch
        with tenant_context(beta.tenant):
            Product.objects.count()
            assert connection.schema_name == beta.tenant.schema_name
        Product.objects.count()
        assert connection.schema_name == alpha.tenant.schema_name
    assert connection.schema_name == "public"


def test_a_task_run_in_place_inside_an_explicit_switch_returns_to_it(alpha, beta):
    """tenant-schemas-celery puts the caller's schema back while the task's block is still
    entered: that explicit switch holds after the block (make test-stress seed 28663: an export
    test read beta's export in alpha's schema)."""
    from celery import shared_task

    @shared_task
    def count_products() -> int:
        return Product.objects.count()

    with schema_context(beta.tenant.schema_name):
        count_products.apply(headers={"_schema_name": alpha.tenant.schema_name})
        Product.objects.count()
        assert connection.schema_name == beta.tenant.schema_name
