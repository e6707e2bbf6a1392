"""A real worker (threads, Redis broker) runs each task in the schema of the tenant that queued it,
and retries a task under the retry policy as a new message with the policy's countdown."""

import logging
from datetime import UTC, datetime

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import connection

from apps.common import retry
from config.celery import app
from tenants.tasks import worker_probe


@app.task(bind=True, base=retry.RetryingTask, name="tests.refused_once")
def refused_once(self) -> dict[str, object]:
    """Refused on its first run (a network error), answered on its retry. Registered at import,
    before the worker starts, so the worker knows it."""
    if self.request.retries == 0:
        raise ConnectionRefusedError(111, "Connection refused")
    return {
        "retries": self.request.retries,
        "eta": self.request.eta,
        "schema": connection.schema_name,
    }


@pytest.fixture(scope="module")
def worker():
    with start_worker(
        app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=10
    ):
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


def test_a_retry_waits_the_policys_first_backoff_and_keeps_the_tenant(worker, alpha):
    connection.set_tenant(alpha.tenant)
    sent = datetime.now(UTC)
    result = refused_once.delay()
    connection.set_schema_to_public()
    answer = result.get(timeout=retry.ceiling(0) + 20)
    assert answer["retries"] == 1 and answer["schema"] == "alpha"
    waited = (datetime.fromisoformat(answer["eta"]) - sent).total_seconds()
    assert 0 <= waited <= retry.ceiling(0) + 5  # the countdown, counted from the first run's end


def test_celerys_logging_set_up_leaves_the_logging_of_settings_as_it_was():
    """What a starting worker runs (celery.contrib.testing's set-up for its worker): Celery's own
    logging set-up would take over the root logger (its handlers, and its level: ERROR for a test
    worker), so warnings logged in this process after a worker started vanished. config.celery
    keeps Celery's hands off: the root keeps settings.LOGGING's level and handlers."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    type(app.log)._setup = False  # as celery.contrib.testing does before each worker
    app.log.setup(loglevel="ERROR")
    assert root.level == logging.getLevelName(settings.LOGGING["root"]["level"])
    assert root.handlers == handlers
