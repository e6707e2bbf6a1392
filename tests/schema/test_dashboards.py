"""Dashboard widgets through the API: the shared dashboard (kept by owners, admins and analysts)
and each member's own (kept by them alone), CRUD, reorder and the cap; each widget's data is the
metrics engine's answer to its definition, with a constant number of queries however many widgets
a page shows; charts drawn on the server."""

from __future__ import annotations

import base64
import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context
from PIL import Image

from apps.analytics import cache, dashboards, definitions, engine
from apps.analytics.models import Widget
from tests.apps.orders import shop
from tests.conftest import token_for

PAYLOAD = "userErrors { field message code }"
WIDGET = "id title kind shared position definition"
CREATE = f"mutation($input: WidgetCreateInput!) {{ widgetCreate(input: $input) {{ widget {{ {WIDGET} }} {PAYLOAD} }} }}"
UPDATE = f"""mutation($id: ID!, $input: WidgetUpdateInput!) {{ widgetUpdate(id: $id, input: $input) {{
  widget {{ {WIDGET} }} {PAYLOAD} }} }}"""
DELETE = f"mutation($id: ID!) {{ widgetDelete(id: $id) {{ deletedId {PAYLOAD} }} }}"
REORDER = f"""mutation($w: [ID!]!, $shared: Boolean!) {{ widgetsReorder(widgets: $w, shared: $shared) {{
  widgets {{ id position }} {PAYLOAD} }} }}"""
LIST = f"query($mine: Boolean) {{ widgets(mine: $mine) {{ {WIDGET} }} }}"
SALES = {"metrics": ["gross_sales"], "dimension": "time", "range": "last_7_days"}


def token(fixture, role: str) -> str:
    return token_for(fixture.email(role), fixture.tenant)


def create(
    gql, fixture, role="analyst", *, title="Sales", kind="LINE", definition=None, shared=False
):
    response = gql.post(
        CREATE,
        {
            "input": {
                "title": title,
                "kind": kind,
                "definition": definition or SALES,
                "shared": shared,
            }
        },
        host=fixture.host,
        token=token(fixture, role),
    )
    assert response.errors == [], response.body
    return response.data["widgetCreate"]


def made(gql, fixture, role="analyst", **kwargs) -> dict:
    payload = create(gql, fixture, role, **kwargs)
    assert payload["userErrors"] == [], payload
    return payload["widget"]


def test_a_widget_is_saved_normalised_at_the_end_of_its_dashboard(gql, alpha):
    first = made(gql, alpha, shared=True)
    second = made(
        gql,
        alpha,
        title=" KPI ",
        kind="KPI",
        definition={"metrics": ["orders"], "range": "today"},
        shared=True,
    )
    assert (first["position"], second["position"]) == (0, 1)
    assert second["title"] == "KPI" and second["shared"] is True
    assert second["definition"] == {
        "metrics": ["orders"],
        "dimension": None,
        "granularity": "day",
        "range": "today",
        "filters": {"productIds": [], "categoryIds": []},
        "compare": True,
        "limit": None,
    }


@pytest.mark.parametrize(
    ("definition", "kind", "field", "code"),
    [
        ({**SALES, "sql": "1"}, "LINE", "definition.sql", "UNKNOWN_KEY"),
        (
            {**SALES, "metrics": ["gross_sales", "orders"]},
            "LINE",
            "definition.metrics",
            "TOO_MANY_METRICS",
        ),
        ({**SALES, "metrics": ["no_such_metric"]}, "LINE", "definition.metrics", "UNKNOWN_METRIC"),
        (
            {**SALES, "range": {"from": "2020-01-01", "to": "2026-01-01"}},
            "LINE",
            "definition.range",
            "BAD_RANGE",
        ),
        (
            SALES,
            "PIE",
            "definition.dimension",
            "BAD_DIMENSION",
        ),  # a pie shares out products or categories
        ({**SALES, "dimension": None}, "LINE", "definition.dimension", "BAD_DIMENSION"),
    ],
)
def test_a_bad_definition_is_a_user_error(gql, alpha, definition, kind, field, code):
    payload = create(gql, alpha, kind=kind, definition=definition)
    assert payload["widget"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)]
    with tenant_context(alpha.tenant):
        assert not Widget.objects.exists()


@pytest.mark.parametrize(
    ("role", "shared", "allowed"),
    [
        ("owner", True, True),
        ("admin", True, True),
        ("analyst", True, True),
        ("staff", True, False),
        ("owner", False, True),
        ("staff", False, True),
        ("analyst", False, True),
    ],
)
def test_who_keeps_which_dashboard(gql, alpha, role, shared, allowed):
    payload = create(gql, alpha, role, shared=shared)
    assert (payload["widget"] is not None) == allowed
    assert payload["userErrors"] == (
        []
        if allowed
        else [
            {
                "field": "shared",
                "code": "PERMISSION_DENIED",
                "message": "Only owners, admins and analysts change the shared dashboard.",
            }
        ]
    )


def test_viewers_see_no_widgets(gql, alpha):
    made(gql, alpha, shared=True)
    for query, variables in (
        (LIST, {}),
        (CREATE, {"input": {"title": "x", "kind": "LINE", "definition": SALES}}),
    ):
        response = gql.post(query, variables, host=alpha.host, token=token(alpha, "viewer"))
        assert response.codes == ["FORBIDDEN"], response.body


def test_personal_widgets_are_their_users_alone(gql, alpha, beta):
    shared = made(gql, alpha, "admin", title="Shared", shared=True)
    mine = made(gql, alpha, "staff", title="Staff's own")
    theirs = made(gql, alpha, "analyst", title="Analyst's own")

    def titles(role, mine=None):
        response = gql.post(LIST, {"mine": mine}, host=alpha.host, token=token(alpha, role))
        assert response.errors == [], response.body
        return [w["title"] for w in response.data["widgets"]]

    assert titles("staff") == ["Shared", "Staff's own"]
    assert titles("staff", mine=True) == ["Staff's own"]
    assert titles("staff", mine=False) == ["Shared"]
    assert titles("owner") == ["Shared"]
    # someone else's personal widget is not there at all: not changed, not deleted, not fetched
    for query, variables in (
        (UPDATE, {"id": theirs["id"], "input": {"title": "Mine now"}}),
        (DELETE, {"id": theirs["id"]}),
    ):
        response = gql.post(query, variables, host=alpha.host, token=token(alpha, "staff"))
        (payload,) = response.data.values()
        assert [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"], response.body
    node = gql.post(
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": theirs["id"]},
        host=alpha.host,
        token=token(alpha, "owner"),
    )
    assert node.data == {"node": None}, node.body
    # staff may not touch the shared dashboard, but may keep their own
    response = gql.post(DELETE, {"id": shared["id"]}, host=alpha.host, token=token(alpha, "staff"))
    assert [e["code"] for e in response.data["widgetDelete"]["userErrors"]] == ["PERMISSION_DENIED"]
    response = gql.post(
        UPDATE,
        {"id": mine["id"], "input": {"title": "Renamed", "kind": "BAR"}},
        host=alpha.host,
        token=token(alpha, "staff"),
    )
    assert response.data["widgetUpdate"]["widget"]["title"] == "Renamed", response.body
    assert response.data["widgetUpdate"]["widget"]["kind"] == "BAR"
    # another tenant's widget id names nothing here
    response = gql.post(DELETE, {"id": shared["id"]}, host=beta.host, token=token(beta, "owner"))
    assert [e["code"] for e in response.data["widgetDelete"]["userErrors"]] == ["NOT_FOUND"], (
        response.body
    )
    response = gql.post(
        DELETE, {"id": shared["id"]}, host=alpha.host, token=token(alpha, "analyst")
    )
    assert response.data["widgetDelete"] == {"deletedId": shared["id"], "userErrors": []}


def test_a_new_kind_is_checked_against_the_definition(gql, alpha):
    widget = made(gql, alpha)
    response = gql.post(
        UPDATE,
        {"id": widget["id"], "input": {"kind": "PIE"}},
        host=alpha.host,
        token=token(alpha, "analyst"),
    )
    assert [e["code"] for e in response.data["widgetUpdate"]["userErrors"]] == ["BAD_DIMENSION"], (
        response.body
    )


def test_reorder_names_every_widget_once(gql, alpha):
    ids = [made(gql, alpha, title=f"W{i}", shared=True)["id"] for i in range(3)]
    refused = gql.post(
        REORDER, {"w": ids[:2], "shared": True}, host=alpha.host, token=token(alpha, "owner")
    )
    assert [e["code"] for e in refused.data["widgetsReorder"]["userErrors"]] == ["INVALID"], (
        refused.body
    )
    response = gql.post(
        REORDER, {"w": ids[::-1], "shared": True}, host=alpha.host, token=token(alpha, "owner")
    )
    assert response.data["widgetsReorder"]["widgets"] == [
        {"id": i, "position": p} for p, i in enumerate(ids[::-1])
    ]
    listed = gql.post(LIST, {"mine": False}, host=alpha.host, token=token(alpha, "owner"))
    assert [w["id"] for w in listed.data["widgets"]] == ids[::-1]


def test_a_dashboard_holds_at_most_so_many_widgets(gql, alpha):
    with tenant_context(alpha.tenant):
        stored = definitions.normalise(SALES, tenant=alpha.tenant)
        Widget.objects.bulk_create(
            [
                Widget(title=f"W{i}", kind="line", definition=stored, position=i)
                for i in range(dashboards.MAX_WIDGETS)
            ]
        )
    payload = create(gql, alpha, "owner", shared=True)
    assert [e["code"] for e in payload["userErrors"]] == ["LIMIT_REACHED"]
    assert made(gql, alpha, "owner")["position"] == 0  # the owner's own dashboard is another one


# --- data through the engine ---------------------------------------------------------------------

DATA = "data { totals { metric value } previous { metric value } series { labels datasets { metric data } } }"


@pytest.fixture
def sales(alpha):
    with tenant_context(alpha.tenant):
        hat, coat = (
            shop.variant("12.50", stock=50, name="Hat"),
            shop.variant("1250.00", stock=5, name="Coat"),
        )
        shop.place(alpha, [(hat, 2)])
        shop.place(alpha, [(hat, 1), (coat, 1)])
        cache.bump(alpha.tenant.schema_name)  # what the commit of those orders does


def _as_api(values: dict) -> list[dict]:
    return [
        {"metric": name.upper(), "value": None if v is None else str(v)}
        for name, v in values.items()
    ]


def test_widget_data_is_the_engines_answer(gql, alpha, sales):
    made(gql, alpha, title="Sales", definition={**SALES, "compare": True})
    made(
        gql,
        alpha,
        title="Top",
        kind="PIE",
        definition={
            "metrics": ["product_revenue"],
            "dimension": "product",
            "range": "today",
            "limit": 5,
        },
    )
    response = gql.post(
        f"{{ widgets {{ definition {DATA} }} }}", host=alpha.host, token=token(alpha, "analyst")
    )
    assert response.errors == [], response.body
    with tenant_context(alpha.tenant):
        for widget in response.data["widgets"]:
            query = definitions.query(
                definitions.normalise(widget["definition"], tenant=alpha.tenant),
                tenant=alpha.tenant,
            )
            expected = engine.run(alpha.tenant, query)
            data = widget["data"]
            assert data["totals"] == _as_api(expected.totals)
            assert data["previous"] == (
                _as_api(expected.previous) if expected.previous is not None else None
            )
            assert data["series"] == {
                "labels": expected.series.labels,
                "datasets": [
                    {
                        "metric": d.metric.upper(),
                        "data": [None if v is None else str(v) for v in d.data],
                    }
                    for d in expected.series.datasets
                ],
            }
    sales_data, top = (w["data"] for w in response.data["widgets"])
    assert sales_data["totals"] == [
        {"metric": "GROSS_SALES", "value": "1287.50"}
    ]  # 2 x 12.50 + 12.50 + 1250
    assert top["series"]["labels"][:2] == ["Coat", "Hat"]


def _page_queries(gql, fixture) -> int:
    query = f"{{ widgets {{ id title {DATA} }} }}"
    gql.post(query, host=fixture.host, token=token(fixture, "analyst"))  # the engine's cache warmed
    with CaptureQueriesContext(connection) as queries:
        response = gql.post(query, host=fixture.host, token=token(fixture, "analyst"))
    assert response.errors == [], response.body
    return len(queries)


def test_a_page_of_widgets_asks_the_database_a_constant_number_of_times(gql, alpha, sales):
    made(gql, alpha, title="W0")
    one = _page_queries(gql, alpha)
    for i, metric in enumerate(
        ("orders", "units", "net_sales", "refunds", "average_order_value"), 1
    ):
        made(
            gql,
            alpha,
            title=f"W{i}",
            kind="BAR",
            definition={**SALES, "metrics": [metric], "range": "last_30_days"},
        )
    assert _page_queries(gql, alpha) == one


def test_widget_charts(gql, alpha, sales):
    made(gql, alpha, title="Sales", definition=SALES, shared=True)
    chart = (
        "chart(format: $f, width: 320, height: 200) { mediaType width height svg base64 dataUrl }"
    )
    png = gql.post(
        f"query($f: ChartFormat!) {{ widgets {{ {chart} }} }}",
        {"f": "PNG"},
        host=alpha.host,
        token=token(alpha, "staff"),
    )
    (image,) = [w["chart"] for w in png.data["widgets"]]
    assert (image["mediaType"], image["svg"]) == ("image/png", None)
    assert Image.open(io.BytesIO(base64.b64decode(image["base64"]))).size == (320, 200)
    assert image["dataUrl"] == f"data:image/png;base64,{image['base64']}"
    svg = gql.post(
        f"query($f: ChartFormat!) {{ widgets {{ {chart} }} }}",
        {"f": "SVG"},
        host=alpha.host,
        token=token(alpha, "staff"),
    )
    (image,) = [w["chart"] for w in svg.data["widgets"]]
    assert image["mediaType"] == "image/svg+xml" and image["base64"] is None
    ticks = re.findall(r">([^<>]+)</text>", image["svg"])
    assert "$0" in ticks and any(re.fullmatch(r"\$1,\d00", tick) for tick in ticks), (
        ticks
    )  # dollars, separated
    assert f"Days in {alpha.tenant.time_zone}" in image["svg"]
    too_big = gql.post(
        "{ widgets { chart(format: PNG, width: 5000) { mediaType } } }",
        host=alpha.host,
        token=token(alpha, "staff"),
    )
    assert (
        too_big.codes == ["BAD_REQUEST"] and too_big.errors[0]["extensions"]["reason"] == "BAD_SIZE"
    )
