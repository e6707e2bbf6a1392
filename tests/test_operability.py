"""Probes, security headers, CORS per tenant, request ids and JSON logs."""

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from celery import shared_task
from django_tenants.utils import tenant_context

from tests.conftest import PLATFORM_HOST, token_for


@contextmanager
def json_lines(name: str, level: int | None = None) -> Iterator[list[dict]]:
    """The lines logger `name` writes while the block runs, as the settings' JSON formatter and
    context filter make them."""
    from config.logging import ContextFilter, JsonFormatter

    lines: list[dict] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(json.loads(JsonFormatter().format(record)))

    handler = Collect()
    handler.addFilter(ContextFilter())
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    if level is not None:
        logger.setLevel(level)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


def test_healthz_answers_on_any_host(gql, alpha):
    for host in (PLATFORM_HOST, alpha.host, "unknown.localhost"):
        response = gql.get("/healthz", host=host)
        assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_checks_database_redis_and_migrations(gql, alpha):
    response = gql.get("/readyz", host=PLATFORM_HOST)
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "migrations": "ok"},
    }


def test_readyz_reports_redis_down(gql, alpha, settings):
    from apps.common import redis as redis_config

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    redis_config.client.cache_clear()
    try:
        response = gql.get("/readyz", host=PLATFORM_HOST)
    finally:
        redis_config.client.cache_clear()
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("error")


def test_security_headers(gql, alpha):
    response = gql.post(
        "{ __typename }", host=alpha.host, token=token_for(alpha.email("viewer"), alpha.tenant)
    )
    headers = {k.lower(): v for k, v in response.headers.items()}
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert headers["x-frame-options"] == "DENY"
    csp = headers["content-security-policy"]
    assert (
        "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp
    )


def test_hsts_outside_debug(gql, alpha):
    response = gql.request("get", "/healthz", host=PLATFORM_HOST, secure=True)
    assert "max-age=31536000" in response.headers["Strict-Transport-Security"]


def test_cors_follows_the_tenants_settings(gql, alpha):
    alpha.tenant.settings = {"cors_allowed_origins": ["https://shop.alpha.test"]}
    alpha.tenant.save()
    allowed = gql.request(
        "options",
        "/graphql/",
        host=alpha.host,
        headers={"Origin": "https://shop.alpha.test", "Access-Control-Request-Method": "POST"},
    )
    assert allowed.headers.get("Access-Control-Allow-Origin") == "https://shop.alpha.test"
    other = gql.request(
        "options",
        "/graphql/",
        host=alpha.host,
        headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in other.headers


def test_request_id_is_echoed_or_made(gql, alpha):
    given = gql.get("/healthz", host=alpha.host, headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    made = gql.get("/healthz", host=alpha.host, headers={"X-Request-ID": "bad id with spaces"})
    assert len(made.headers["X-Request-ID"]) == 32


def test_log_lines_are_json_with_tenant_and_request_id(alpha):
    from graphql import GraphQLError

    from schema.errors import give_codes
    from tenants.context import current_request_id, current_tenant

    tenant_token, request_token = current_tenant.set(alpha.tenant), current_request_id.set("req-42")
    try:  # an unexpected error is logged by the error handler, with the tenant and request id
        with json_lines("graphql") as lines:
            give_codes([GraphQLError("boom", original_error=RuntimeError("boom"))])
    finally:
        current_tenant.reset(tenant_token)
        current_request_id.reset(request_token)
    record = lines[-1]
    assert (
        record["tenant"] == "alpha"
        and record["request_id"] == "req-42"
        and record["level"] == "ERROR"
    )
    assert "RuntimeError" in record["exc"]


def test_unexpected_errors_are_masked(gql, alpha):
    from graphql import GraphQLError

    from schema.errors import give_codes

    error = GraphQLError(
        "SELECT secret FROM users", original_error=ValueError("SELECT secret FROM users")
    )
    give_codes([error])
    assert error.message == "Internal server error." and error.extensions == {"code": "INTERNAL"}


def test_every_request_leaves_one_json_access_line(gql, alpha):
    with json_lines("shop.access", logging.INFO) as lines:
        gql.post(
            "{ tenant { slug } }",
            host=alpha.host,
            token=token_for(alpha.email("owner"), alpha.tenant),
            headers={"X-Request-ID": "req-77"},
        )
    assert len(lines) == 1
    assert lines[0]["tenant"] == "alpha" and lines[0]["request_id"] == "req-77"
    assert lines[0]["message"].startswith("POST /graphql/ 200")


@shared_task(name="tests.test_operability.log_a_line")
def log_a_line() -> None:
    logging.getLogger("shop.test").warning("written by a task")


def test_a_tasks_log_lines_name_the_task_its_id_and_the_tenant_that_queued_it(alpha):
    with json_lines("shop.test") as lines:
        with tenant_context(alpha.tenant):
            ran = log_a_line.apply()  # the worker's tracer, in this process
        logging.getLogger("shop.test").warning("written outside any task")
    in_task, outside = lines
    assert in_task["task_id"] == ran.id and in_task["task"] == "tests.test_operability.log_a_line"
    assert in_task["tenant"] == "alpha" and in_task["message"] == "written by a task"
    assert "task_id" not in outside and "task" not in outside


def test_settings_refuse_debug_and_a_missing_key_outside_the_dev_server():
    import os
    import subprocess
    import sys

    env = {
        k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DJANGO_DEV_SERVER", "DEBUG")
    }
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    check = [sys.executable, "-c", "import django; django.setup()"]
    no_key = subprocess.run(check, env=env, capture_output=True, text=True)
    assert no_key.returncode != 0 and "SECRET_KEY must be set" in no_key.stderr
    debug = subprocess.run(
        check, env={**env, "SECRET_KEY": "x" * 50, "DEBUG": "1"}, capture_output=True, text=True
    )
    assert debug.returncode != 0 and "DEBUG is for the dev server only" in debug.stderr
    dev = subprocess.run(
        check, env={**env, "DJANGO_DEV_SERVER": "1"}, capture_output=True, text=True
    )
    assert dev.returncode == 0, dev.stderr
