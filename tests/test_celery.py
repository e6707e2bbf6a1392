"""A real worker (threads, Redis broker) runs each task in the schema of the tenant that queued it."""

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connection

from config.celery import app
from tenants.tasks import worker_probe


@pytest.fixture(scope="module")
def worker():
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=10):
        yield


def test_task_runs_in_the_schema_of_the_tenant_that_queued_it(worker, alpha, beta):
    results = {}
    for fixture in (alpha, beta):
        connection.set_tenant(fixture.tenant)
        results[fixture.slug] = worker_probe.delay()
    connection.set_schema_to_public()
    public = worker_probe.delay()
    assert results["alpha"].get(timeout=20) == {"schema": "alpha", "current_schema": "alpha"}
    assert results["beta"].get(timeout=20) == {"schema": "beta", "current_schema": "beta"}
    assert public.get(timeout=20) == {"schema": "public", "current_schema": "public"}
