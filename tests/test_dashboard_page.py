"""The /dashboard/ page itself (the browser test in tests/live drives it): members with a session
who may read analytics get it, from our own static files under the CSP; others are sent to sign
in or refused."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.test_websocket import session_cookie


def _get(fixture, *, cookie: tuple[str, str] | None = None, token: str | None = None):
    headers = {"Host": fixture.host}
    if cookie:
        headers[cookie[0]] = cookie[1]
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return Client().get("/dashboard/", headers=headers)


@pytest.mark.parametrize("role", ["owner", "admin", "staff", "analyst"])
def test_members_who_read_analytics_get_the_page(alpha, role):
    response = _get(alpha, cookie=session_cookie(alpha, role))
    assert response.status_code == 200
    page = response.content.decode()
    assert (
        'src="/static/dashboard/dashboard.js"' in page
        and 'src="/static/graphiql/graphql-ws.min.js"' in page
    )
    assert "<script>" not in page  # no inline code: script-src 'self'
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert f'data-currency="{alpha.tenant.currency}"' in page


def test_viewers_are_refused_and_strangers_sent_to_sign_in(alpha):
    assert _get(alpha, cookie=session_cookie(alpha, "viewer")).status_code == 403
    anonymous = _get(alpha)
    assert (
        anonymous.status_code == 302 and anonymous.headers["Location"] == "/login/?next=/dashboard/"
    )


def test_a_session_of_another_tenant_is_not_a_session_here(alpha, beta):
    response = _get(beta, cookie=session_cookie(alpha, "owner"))
    assert (
        response.status_code == 403
    )  # the session middleware refuses a session opened for another tenant


def test_the_platform_host_has_no_dashboard(alpha):
    response = Client().get("/dashboard/", headers={"Host": "localhost"})
    assert response.status_code == 404
