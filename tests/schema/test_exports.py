"""Exports through the API: `exportCreate` (analyst role and above; coded userErrors), `exports`
(each member's own, owners and admins all), `Export.downloadUrl` fetched over HTTP on the
tenant's host, and the refusals of the download view: a link of another tenant, a tampered one,
an expired one, an export with no file; the media view never serves an export file."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django_tenants.utils import tenant_context

from apps.exports import links
from apps.exports.models import Export
from tests.apps.exports.files import rows_of
from tests.apps.orders import shop
from tests.apps.payments import test_cleanup
from tests.conftest import body_of, token_for

run_on_commit = test_cleanup.tasks_on_commit  # the fixture, under this module's name for it

CREATE = """mutation($k: ExportKind!, $f: ExportFormat!, $filters: JSON, $l: ExportJsonLayout) {
  exportCreate(kind: $k, format: $f, filters: $filters, layout: $l) {
    export { id kind format layout status contactsRedacted downloadUrl } userErrors { field code message } } }"""
LIST = (
    "{ exports(first: 10) { totalCount edges { node { id kind status rowsDone rowsTotal "
    "size fileName downloadUrl } } } }"
)


def _create(gql, fixture, role: str, variables: dict):
    return gql.post(
        CREATE, variables, host=fixture.host, token=token_for(fixture.email(role), fixture.tenant)
    )


@pytest.fixture
def orders(alpha):
    with tenant_context(alpha.tenant):
        hat = shop.variant("15.00", stock=10)
        return [
            shop.place(alpha, [(hat, quantity)], email=f"buyer{quantity}@example.com")
            for quantity in (1, 2)
        ]


def _done(gql, alpha, run_on_commit, role: str = "analyst", format: str = "CSV") -> dict:
    response = _create(gql, alpha, role, {"k": "ORDERS", "f": format})
    assert response.errors == [] and response.data["exportCreate"]["userErrors"] == [], (
        response.body
    )
    assert response.data["exportCreate"]["export"]["status"] == "QUEUED"
    run_on_commit()
    listed = gql.post(LIST, host=alpha.host, token=token_for(alpha.email(role), alpha.tenant))
    return listed.data["exports"]["edges"][0]["node"]


def test_an_analyst_exports_and_downloads_through_the_signed_link(
    gql, alpha, orders, run_on_commit
):
    node = _done(gql, alpha, run_on_commit)
    assert (node["status"], node["rowsDone"], node["rowsTotal"]) == ("DONE", 2, 2)
    url = node["downloadUrl"]
    assert url.startswith(f"http://{alpha.host}/exports/") and "sig=" in url
    response = gql.get(url.removeprefix(f"http://{alpha.host}"), host=alpha.host)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{node["fileName"]}"'
    body = body_of(response)
    assert len(body) == node["size"]
    rows = rows_of(body, "csv")
    assert sorted(row["email"] for row in rows) == [
        "b***@example.com",
        "b***@example.com",
    ]  # masked for analysts


def test_xlsx_and_ndjson_downloads_say_what_they_are(gql, alpha, orders, run_on_commit):
    node = _done(gql, alpha, run_on_commit, "owner", "XLSX")
    response = gql.get(node["downloadUrl"].removeprefix(f"http://{alpha.host}"), host=alpha.host)
    assert (
        response["Content-Type"]
        == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert len(rows_of(body_of(response), "xlsx")) == 2
    made = _create(gql, alpha, "owner", {"k": "EVENTS", "f": "JSON", "l": "NDJSON"}).data[
        "exportCreate"
    ]["export"]
    assert made["layout"] == "NDJSON"


def test_viewers_may_not_export_or_list_exports(gql, alpha):
    response = _create(gql, alpha, "viewer", {"k": "ORDERS", "f": "CSV"})
    assert response.codes == ["FORBIDDEN"]
    assert gql.post(
        LIST, host=alpha.host, token=token_for(alpha.email("viewer"), alpha.tenant)
    ).codes == ["FORBIDDEN"]


@pytest.mark.parametrize(
    ("variables", "field", "code"),
    [
        (
            {"k": "ORDERS", "f": "CSV", "filters": {"statuses": ["lost"]}},
            "filters.statuses",
            "INVALID",
        ),
        (
            {"k": "EVENTS", "f": "CSV", "filters": {"time": {"from": "x", "to": "2026-01-01"}}},
            "filters.time.from",
            "BAD_RANGE",
        ),
        (
            {"k": "REPORT", "f": "XLSX", "filters": {"report": "nope"}},
            "filters.report",
            "NOT_FOUND",
        ),
        ({"k": "ORDERS", "f": "CSV", "l": "NDJSON"}, "layout", "INVALID"),
    ],
)
def test_bad_input_is_a_coded_user_error(gql, alpha, variables, field, code):
    payload = _create(gql, alpha, "analyst", variables).data["exportCreate"]
    assert payload["export"] is None
    assert [(error["field"], error["code"]) for error in payload["userErrors"]] == [(field, code)]


def test_members_see_their_own_exports_and_owners_all(gql, alpha, orders, run_on_commit):
    mine = _create(gql, alpha, "owner", {"k": "ORDERS", "f": "CSV"}).data["exportCreate"]["export"][
        "id"
    ]
    theirs = _create(gql, alpha, "analyst", {"k": "PRODUCTS", "f": "JSON"}).data["exportCreate"][
        "export"
    ]["id"]
    analyst, owner = (token_for(alpha.email(role), alpha.tenant) for role in ("analyst", "owner"))
    listed = gql.post(LIST, host=alpha.host, token=analyst).data["exports"]
    assert [edge["node"]["id"] for edge in listed["edges"]] == [theirs]
    assert gql.post(LIST, host=alpha.host, token=owner).data["exports"]["totalCount"] == 2
    node = "query($id: ID!) { node(id: $id) { ... on Export { id } } }"
    assert gql.post(node, {"id": mine}, host=alpha.host, token=analyst).data == {"node": None}
    assert gql.post(node, {"id": theirs}, host=alpha.host, token=owner).data == {
        "node": {"id": theirs}
    }


def _path(gql, alpha, run_on_commit) -> tuple[str, Export]:
    node = _done(gql, alpha, run_on_commit, "owner")
    with tenant_context(alpha.tenant):
        export = Export.objects.get()
    return node["downloadUrl"].removeprefix(f"http://{alpha.host}"), export


def test_a_link_of_another_tenant_a_tampered_or_expired_one_is_refused(
    gql, alpha, beta, orders, run_on_commit
):
    path, export = _path(gql, alpha, run_on_commit)
    assert gql.get(path, host=alpha.host).status_code == 200
    assert gql.get(path, host=beta.host).status_code == 403  # alpha's link on beta's host
    assert (
        gql.get(links.path("beta", export.pk), host=alpha.host).status_code == 403
    )  # signed for beta
    assert gql.get(links.path("alpha", export.pk + 1), host=alpha.host).status_code in (403, 404)
    assert (
        gql.get(path.replace(f"/{export.pk}/", f"/{export.pk + 1}/"), host=alpha.host).status_code
        == 403
    )
    tampered = path[:-1] + ("A" if path[-1] != "A" else "B")
    assert gql.get(tampered, host=alpha.host).status_code == 403
    assert gql.get(path.split("?")[0], host=alpha.host).status_code == 403
    with override_settings(EXPORT_URL_MAX_AGE=-1):  # every link made so far is past its age
        assert gql.get(path, host=alpha.host).status_code == 403


def test_an_export_without_a_file_is_not_found(gql, alpha, orders):
    with tenant_context(alpha.tenant):
        queued = Export.objects.create(kind="orders", format="csv")
    assert gql.get(links.path("alpha", queued.pk), host=alpha.host).status_code == 404


def test_the_media_view_never_serves_an_export_file(gql, alpha, orders, run_on_commit):
    _, export = _path(gql, alpha, run_on_commit)
    name = export.file.removeprefix("alpha/")
    for media in (
        f"/media/alpha/{export.file}",
        f"/media/alpha/{name}",
        f"/media/alpha/exports/{export.file}",
    ):
        assert gql.get(media, host=alpha.host).status_code == 404
