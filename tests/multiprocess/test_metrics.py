"""/metrics in the multi-process stack: either server reports the deployment (both servers'
requests added up), the operations by tenant, root field and outcome, the cost spent, the
Celery queue depth and the live subscriptions held; and it answers nobody outside the allowed
networks (a client behind the proxy, as uvicorn's --proxy-headers reports it)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.live.test_live_metrics import ORDER_EVENTS, connect, run
from tests.multiprocess.conftest import TIMEOUT, Stack
from tests.multiprocess.test_across_processes import _held

pytestmark = pytest.mark.pooled


def scrape(stack: Stack, server: int, **headers: str) -> httpx.Response:
    port = stack.servers[server].port
    return httpx.get(f"http://127.0.0.1:{port}/metrics", headers=headers, timeout=TIMEOUT)


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(figures: dict, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in figures.items()
        if sample == name and set(labels.items()) <= sample_labels
    )


def test_either_server_reports_the_whole_deployment(stack: Stack):
    shop = stack.shops["pool-c"]
    schema = shop.fixture.tenant.schema_name
    query = "{ tenant { slug } }"
    before = samples(scrape(stack, 0).text)
    for server in (0, 1, 1):
        stack.graphql(server, shop, query)

    async def held_open() -> dict:
        socket = await connect(stack.servers[1], shop, "analyst")
        await socket.subscribe(ORDER_EVENTS)
        await _held(stack, schema, 1)
        figures = samples((await asyncio.to_thread(scrape, stack, 0)).text)
        await socket.ws.close()
        await _held(stack, schema, 0)
        return figures

    during = run(held_open())
    after = samples(scrape(stack, 0).text)
    ok = {"tenant": schema, "operation": "Query.tenant", "code": "OK"}
    assert (
        _value(after, "shop_graphql_operations_total", **ok)
        - _value(before, "shop_graphql_operations_total", **ok)
        == 3
    )  # one on A, two on B, read on A
    posts = {"tenant": schema, "method": "POST", "status": "200"}
    assert (
        _value(after, "shop_http_requests_total", **posts)
        - _value(before, "shop_http_requests_total", **posts)
        == 3
    )
    assert _value(after, "shop_graphql_cost_points_total", tenant=schema) > _value(
        before, "shop_graphql_cost_points_total", tenant=schema
    )
    assert _value(after, "shop_http_request_duration_seconds_count", method="POST") >= 3
    assert _value(during, "shop_live_subscriptions", tenant=schema) == 1
    assert ("shop_celery_queue_depth", frozenset({("queue", "celery")})) in after


def test_it_answers_nobody_outside_the_allowed_networks(stack: Stack):
    assert scrape(stack, 0).status_code == 200
    outside = scrape(stack, 1, **{"X-Forwarded-For": "203.0.113.9"})
    assert outside.status_code == 404 and "shop_" not in outside.text
