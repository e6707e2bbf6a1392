"""What the processes count for Prometheus (prometheus_client), read at /metrics (config/metrics.py).

Several processes serve one deployment (uvicorn workers, `make run-multi`): with
PROMETHEUS_MULTIPROC_DIR set before this module is imported, each process writes its counts to
files there and /metrics adds them up, so a scrape sees the deployment, not the process that
answered it. Labels stay bounded: tenants are the platform's own (a schema name, `public` for the
platform host), operations are the schema's root fields, never a client's operation name.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "shop_http_requests",
    "HTTP requests answered, by tenant schema, method and status code.",
    ["tenant", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "shop_http_request_duration_seconds",
    "Time to answer an HTTP request, by method.",
    ["method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
OPERATIONS = Counter(
    "shop_graphql_operations",
    "GraphQL operations, by tenant schema, first root field and outcome (OK or the error code).",
    ["tenant", "operation", "code"],
)
COST = Counter(
    "shop_graphql_cost_points",
    "Query cost points spent (what the operation really returned), by tenant schema.",
    ["tenant"],
)


# A client may send any method name: the label takes these, and OTHER.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_answered(tenant: str | None, method: str, status: int, seconds: float) -> None:
    method = method if method in METHODS else "OTHER"
    REQUESTS.labels(tenant or "none", method, str(status)).inc()
    REQUEST_SECONDS.labels(method).observe(seconds)


def operation_done(tenant: str, operation: str, code: str, cost: int | None) -> None:
    OPERATIONS.labels(tenant, operation, code).inc()
    if cost:
        COST.labels(tenant).inc(cost)
