"""The Content-Security-Policy header on every response the app serves (static files, media,
error pages, JSON, GraphiQL, the dashboard), with `connect-src` naming the request's own host
and no other: WebSockets go to the page's host only."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import HttpRequest
from django.urls import path
from django_tenants.utils import tenant_context

from config.urls import urlpatterns as tenant_urlpatterns
from tests.conftest import PLATFORM_HOST, HostAsyncClient, token_for
from tests.test_websocket import session_cookie


def _boom(request: HttpRequest):
    raise RuntimeError("a bug in a view")


# This module is also the URL map of the 500 test: the tenant URLs plus a view that fails.
urlpatterns = [*tenant_urlpatterns, path("boom/", _boom)]


def directives(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    parts = (part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    return {name: (rest[0] if rest else "") for name, *rest in parts}


def own_sockets(host: str) -> str:
    return f"'self' ws://{host} wss://{host}"


def get(path: str, host: str, *, session: tuple[str, str] | None = None, **extra):
    client = HostAsyncClient(raise_request_exception=False)
    if session:  # ("Cookie", "<name>=<key>"), as tests.test_websocket.session_cookie makes it
        name, _, key = session[1].partition("=")
        client.cookies[name] = key
    headers = {"Host": host, **extra.pop("headers", {})}
    return async_to_sync(client.get)(path, headers=headers, **extra)


@pytest.mark.parametrize(
    ("what", "path", "status"),
    [
        ("static file", "/static/graphiql/init.js", 200),
        ("404 of the URL map", "/no/such/page", 404),
        ("404 of a static path", "/static/no-such-file.js", 404),
    ],
)
@pytest.mark.parametrize("where", ["tenant", "platform"])
def test_static_files_and_not_found_pages_carry_the_policy(alpha, what, path, status, where):
    host = alpha.host if where == "tenant" else PLATFORM_HOST
    response = get(path, host)
    assert response.status_code == status, what
    policy = directives(response)
    assert policy["connect-src"] == own_sockets(host), what
    assert policy["script-src"] == "'self'" and policy["frame-ancestors"] == "'none'"


def test_an_unknown_tenant_host_is_404_with_the_policy(db, tenants):
    response = get("/graphql/", "nobody.localhost")
    assert response.status_code == 404
    assert directives(response)["connect-src"] == own_sockets("nobody.localhost")


def test_a_host_we_do_not_serve_is_400_with_a_policy_that_names_no_host(db):
    response = get("/graphql/", "evil.example")
    assert response.status_code == 400
    assert directives(response)["connect-src"] == "'self'"


def test_a_server_error_page_carries_the_policy(alpha, settings, caplog):
    settings.ROOT_URLCONF = __name__
    response = get("/boom/", alpha.host)
    assert response.status_code == 500
    assert "a bug in a view" in caplog.text  # the 500 is that bug, logged
    assert directives(response)["connect-src"] == own_sockets(alpha.host)


def test_graphql_json_graphiql_and_dashboard_name_only_their_host(gql, alpha):
    answer = gql.post(
        "{ __typename }", host=alpha.host, token=token_for(alpha.email("viewer"), alpha.tenant)
    )
    assert answer.status == 200
    assert directives(answer)["connect-src"] == own_sockets(alpha.host)
    session = session_cookie(alpha, "owner")
    graphiql = get("/graphql/", alpha.host, session=session, headers={"Accept": "text/html"})
    assert graphiql.status_code == 200 and b"graphiql" in graphiql.content.lower()
    assert directives(graphiql)["connect-src"] == own_sockets(alpha.host)
    dashboard = get("/dashboard/", alpha.host, session=session)
    assert dashboard.status_code == 200
    assert directives(dashboard)["connect-src"] == own_sockets(alpha.host)


def test_the_port_is_part_of_the_host_and_https_pages_allow_wss_only(alpha):
    with_port = get("/no/such/page", f"{alpha.host}:8443")
    assert directives(with_port)["connect-src"] == own_sockets(f"{alpha.host}:8443")
    secure = get("/no/such/page", alpha.host, secure=True)
    assert directives(secure)["connect-src"] == f"'self' wss://{alpha.host}"


def test_media_files_carry_the_policy(alpha):
    with tenant_context(alpha.tenant):
        name = default_storage.save("csp/picture.png", ContentFile(b"\x89PNG not really"))
    try:
        served = get(f"/media/{alpha.tenant.schema_name}/{name}", alpha.host)
        assert served.status_code == 200
        assert directives(served)["connect-src"] == own_sockets(alpha.host)
    finally:
        with tenant_context(alpha.tenant):
            default_storage.delete(name)
