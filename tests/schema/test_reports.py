"""Custom reports through the API: saved definitions any analytics role may list and run, kept
by whoever saved them (and owners and admins); runs of saved and unsaved definitions, over their
own range or another, with rows, series and a chart, through the metrics engine."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django_tenants.utils import tenant_context

from apps.analytics import cache, rollups
from apps.orders.models import Order
from tenants.models import Tenant
from tests.apps.orders import shop
from tests.conftest import token_for

PAYLOAD = "userErrors { field message code }"
REPORT = "id name definition mine"
CREATE = f"mutation($input: ReportInput!) {{ reportCreate(input: $input) {{ report {{ {REPORT} }} {PAYLOAD} }} }}"
UPDATE = f"""mutation($id: ID!, $input: ReportUpdateInput!) {{ reportUpdate(id: $id, input: $input) {{
  report {{ {REPORT} }} {PAYLOAD} }} }}"""
DELETE = f"mutation($id: ID!) {{ reportDelete(id: $id) {{ deletedId {PAYLOAD} }} }}"
LIST = f"query {{ reports(first: 10) {{ totalCount edges {{ node {{ {REPORT} }} }} }} }}"
ONE = f"query($id: ID!) {{ report(id: $id) {{ {REPORT} }} }}"
BY_DAY = {
    "metrics": ["gross_sales", "orders", "average_order_value"],
    "dimension": "time",
    "granularity": "day",
    "range": {"from": "2026-01-01", "to": "2026-01-07"},
}


def token(fixture, role: str) -> str:
    return token_for(fixture.email(role), fixture.tenant)


def saved(gql, fixture, role="analyst", *, name="Week", definition=None) -> dict:
    response = gql.post(
        CREATE,
        {"input": {"name": name, "definition": definition or BY_DAY}},
        host=fixture.host,
        token=token(fixture, role),
    )
    assert response.errors == [] and response.data["reportCreate"]["userErrors"] == [], (
        response.body
    )
    return response.data["reportCreate"]["report"]


def test_reports_are_listed_for_every_analytics_role(gql, alpha, beta):
    report = saved(gql, alpha)
    assert report["definition"]["range"] == BY_DAY["range"] and report["mine"] is True
    saved(gql, alpha, "staff", name="Another")
    response = gql.post(LIST, host=alpha.host, token=token(alpha, "staff"))
    assert response.data["reports"]["totalCount"] == 2, response.body
    assert [(e["node"]["name"], e["node"]["mine"]) for e in response.data["reports"]["edges"]] == [
        ("Another", True),
        ("Week", False),
    ]
    assert gql.post(
        ONE, {"id": report["id"]}, host=alpha.host, token=token(alpha, "owner")
    ).data == {"report": {**report, "mine": False}}
    assert gql.post(ONE, {"id": report["id"]}, host=beta.host, token=token(beta, "owner")).data == {
        "report": None
    }
    assert gql.post(LIST, host=alpha.host, token=token(alpha, "viewer")).codes == ["FORBIDDEN"]


def test_a_bad_definition_is_a_user_error(gql, alpha):
    for definition, field, code in [
        (
            {**BY_DAY, "metrics": [f"m{i}" for i in range(11)]},
            "definition.metrics",
            "TOO_MANY_METRICS",
        ),
        ({**BY_DAY, "having": "1=1"}, "definition.having", "UNKNOWN_KEY"),
        (
            {**BY_DAY, "range": {"from": "2026-01-07", "to": "2026-01-01"}},
            "definition.range",
            "BAD_RANGE",
        ),
    ]:
        response = gql.post(
            CREATE,
            {"input": {"name": "Bad", "definition": definition}},
            host=alpha.host,
            token=token(alpha, "analyst"),
        )
        assert response.data["reportCreate"]["report"] is None
        assert [(e["field"], e["code"]) for e in response.data["reportCreate"]["userErrors"]] == [
            (field, code)
        ]


def test_a_report_is_kept_by_whoever_saved_it_and_by_owners_and_admins(gql, alpha):
    report = saved(gql, alpha, "analyst")
    rename = {"id": report["id"], "input": {"name": "Renamed"}}
    refused = gql.post(UPDATE, rename, host=alpha.host, token=token(alpha, "staff"))
    assert [e["code"] for e in refused.data["reportUpdate"]["userErrors"]] == ["PERMISSION_DENIED"]
    for role in ("analyst", "admin"):
        response = gql.post(
            UPDATE,
            {**rename, "input": {"name": f"By {role}"}},
            host=alpha.host,
            token=token(alpha, role),
        )
        assert response.data["reportUpdate"]["report"]["name"] == f"By {role}", response.body
    response = gql.post(
        UPDATE,
        {"id": report["id"], "input": {"definition": {**BY_DAY, "granularity": "week"}}},
        host=alpha.host,
        token=token(alpha, "analyst"),
    )
    assert response.data["reportUpdate"]["report"]["definition"]["granularity"] == "week", (
        response.body
    )
    refused = gql.post(DELETE, {"id": report["id"]}, host=alpha.host, token=token(alpha, "staff"))
    assert [e["code"] for e in refused.data["reportDelete"]["userErrors"]] == ["PERMISSION_DENIED"]
    response = gql.post(DELETE, {"id": report["id"]}, host=alpha.host, token=token(alpha, "owner"))
    assert response.data["reportDelete"] == {"deletedId": report["id"], "userErrors": []}
    gone = gql.post(DELETE, {"id": report["id"]}, host=alpha.host, token=token(alpha, "owner"))
    assert [e["code"] for e in gone.data["reportDelete"]["userErrors"]] == ["NOT_FOUND"]


RUN = """query($id: ID, $d: JSON, $r: JSON) { reportRun(id: $id, definition: $d, range: $r) {
  report { name } result { rows { key label values { metric value } } totals { metric value }
  series { labels datasets { metric data } } currency timeZone }
  chart(format: SVG, kind: TABLE) { mediaType svg } userErrors { field code } } }"""


@pytest.fixture
def january(alpha):
    """Two orders on 3 January (Tokyo time) 2026, placed at 23:30 UTC on the 2nd; the tenant is in
    Tokyo and sells in euros (both rolled back with the test)."""
    Tenant.objects.filter(pk=alpha.tenant.pk).update(time_zone="Asia/Tokyo", currency="EUR")
    with tenant_context(alpha.tenant):
        hat = shop.variant("1500.00", stock=10, name="Hat")
        for _ in range(2):
            order = shop.place(alpha, [(hat, 1)])
            Order.objects.filter(pk=order.pk).update(
                placed_at=datetime(2026, 1, 2, 23, 30, tzinfo=UTC)
            )
        rollups.rebuild(time_zone="Asia/Tokyo")  # the days the orders moved to
        cache.bump(alpha.tenant.schema_name)  # what the commit does


def test_a_saved_report_runs_over_its_range_or_another(gql, alpha, january):
    report = saved(gql, alpha)
    response = gql.post(RUN, {"id": report["id"]}, host=alpha.host, token=token(alpha, "staff"))
    assert response.errors == [], response.body
    run = response.data["reportRun"]
    assert run["report"] == {"name": "Week"}
    result = run["result"]
    assert (result["currency"], result["timeZone"]) == ("EUR", "Asia/Tokyo")
    assert result["series"]["labels"] == [f"2026-01-0{d}" for d in range(1, 8)]
    assert result["rows"][2] == {
        "key": "2026-01-03",
        "label": "2026-01-03",
        "values": [
            {"metric": "GROSS_SALES", "value": "3000.00"},
            {"metric": "ORDERS", "value": "2"},
            {"metric": "AVERAGE_ORDER_VALUE", "value": "1500.00"},
        ],
    }
    assert result["totals"][0] == {"metric": "GROSS_SALES", "value": "3000.00"}
    assert run["chart"]["mediaType"] == "image/svg+xml"
    assert ">€3,000.00<" in run["chart"]["svg"] and ">€1,500.00<" in run["chart"]["svg"]

    other = gql.post(
        RUN,
        {"id": report["id"], "r": {"from": "2026-01-04", "to": "2026-01-05"}},
        host=alpha.host,
        token=token(alpha, "staff"),
    )
    assert other.data["reportRun"]["result"]["totals"][:2] == [
        {"metric": "GROSS_SALES", "value": "0.00"},
        {"metric": "ORDERS", "value": "0"},
    ], other.body


def test_a_definition_can_run_before_it_is_saved(gql, alpha, january):
    definition = {
        "metrics": ["product_revenue", "product_units"],
        "dimension": "product",
        "range": {"from": "2026-01-01", "to": "2026-01-31"},
        "limit": 3,
    }
    response = gql.post(RUN, {"d": definition}, host=alpha.host, token=token(alpha, "analyst"))
    assert response.errors == [], response.body
    run = response.data["reportRun"]
    assert run["report"] is None
    assert run["result"]["series"] == {
        "labels": ["Hat"],
        "datasets": [
            {"metric": "PRODUCT_REVENUE", "data": ["3000.00"]},
            {"metric": "PRODUCT_UNITS", "data": ["2"]},
        ],
    }


@pytest.mark.parametrize(
    ("variables", "field", "code"),
    [
        ({}, "id", "REQUIRED"),  # neither id nor definition
        ({"d": {**BY_DAY, "select": "*"}}, "definition.select", "UNKNOWN_KEY"),
        (
            {"d": BY_DAY, "r": {"from": "2010-01-01", "to": "2026-01-01"}},
            "definition.range",
            "BAD_RANGE",
        ),
        ({"d": BY_DAY, "r": "last_decade"}, "definition.range", "BAD_RANGE"),
    ],
)
def test_a_bad_run_says_what_to_fix(gql, alpha, variables, field, code):
    response = gql.post(RUN, variables, host=alpha.host, token=token(alpha, "analyst"))
    assert response.errors == [], response.body
    assert response.data["reportRun"] == {
        "report": None,
        "result": None,
        "chart": None,
        "userErrors": [{"field": field, "code": code}],
    }


def test_another_tenants_report_does_not_run(gql, alpha, beta):
    report = saved(gql, alpha)
    response = gql.post(RUN, {"id": report["id"]}, host=beta.host, token=token(beta, "analyst"))
    assert response.data["reportRun"]["userErrors"] == [{"field": "id", "code": "NOT_FOUND"}], (
        response.body
    )
