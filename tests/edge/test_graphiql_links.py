"""GraphiQL links: a signed-in browser's `GET /graphql/?query=…[&variables=…&operationName=…]`
opens GraphiQL with that operation filled in; a client that asks for JSON (or accepts anything,
or sends no Accept) gets the result, as before. Through Django's ASGI handler with a real
session; tests/edge/test_graphiql_browser.py opens such a link in Chromium."""

from __future__ import annotations

import html
import json
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from asgiref.sync import async_to_sync

from apps.accounts.middleware import SESSION_TENANT_KEY
from apps.accounts.models import User
from tests.conftest import PLATFORM_HOST, HostAsyncClient

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
QUERY = (
    'query A { tenant { slug } }\nquery B($n: Int!) { members(first: $n) { totalCount } } # "<&>"'
)
LINK = {"query": QUERY, "variables": '{"n": 2}', "operationName": "B"}


@pytest.fixture
def browser_session(alpha):
    """A client holding a signed-in session of alpha's owner, as the login page makes it."""
    client = HostAsyncClient()
    async_to_sync(client.aforce_login)(User.objects.get(email=alpha.email("owner")))
    session = async_to_sync(client.asession)()
    session[SESSION_TENANT_KEY] = alpha.slug
    async_to_sync(session.asave)()
    return client


def _get(client, host: str, accept: str | None, params: dict):
    headers = {"Host": host, **({"Accept": accept} if accept else {})}
    return async_to_sync(client.get)(f"/graphql/?{urlencode(params)}", headers=headers)


def _data_attributes(page: str) -> dict[str, str]:
    start = page.index('<div id="graphiql"')
    tag = page[start : page.index(">", start)]
    attributes = {}
    for part in tag.split(" data-")[1:]:
        name, _, value = part.partition("=")
        attributes[name.strip()] = html.unescape(value.strip().strip('"'))
    return attributes


def test_a_browser_opens_graphiql_with_the_link_filled_in(browser_session, alpha):
    response = _get(browser_session, alpha.host, BROWSER_ACCEPT, LINK)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert 'src="/static/graphiql/init.js"' in page
    attributes = _data_attributes(page)
    assert attributes["query"] == QUERY  # escaped in the page, whole in the attribute
    assert attributes["variables"] == LINK["variables"]
    assert attributes["operation-name"] == "B"
    assert "<&>" not in page  # the template escaped it


def test_a_link_with_only_a_query_fills_only_the_query(browser_session, alpha):
    page = _get(
        browser_session, alpha.host, "text/html", {"query": "{ me { role } }"}
    ).content.decode()
    attributes = _data_attributes(page)
    assert attributes["query"] == "{ me { role } }"
    assert "variables" not in attributes and "operation-name" not in attributes


@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "application/graphql-response+json",
        "*/*",
        None,
        "application/json, text/html;q=0.5",
    ],
)
def test_a_client_that_asks_for_json_gets_the_result(browser_session, alpha, accept):
    response = _get(browser_session, alpha.host, accept, LINK)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith(
        ("application/json", "application/graphql-response+json")
    )
    assert json.loads(response.content)["data"] == {"members": {"totalCount": 5}}


def test_a_link_on_the_platform_host_answers_its_result(alpha):
    """GraphiQL is served on tenant hosts only: there, a browser gets the result as before."""
    response = _get(HostAsyncClient(), PLATFORM_HOST, BROWSER_ACCEPT, {"query": "{ __typename }"})
    assert response.status_code == 200
    assert json.loads(response.content)["data"] == {"__typename": "Query"}


def test_a_signed_out_browser_signs_in_and_comes_back_to_the_link(alpha):
    response = _get(HostAsyncClient(), alpha.host, BROWSER_ACCEPT, LINK)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/login/"
    back = urlsplit(parse_qs(location.query)["next"][0])
    assert back.path == "/graphql/" and {k: v[0] for k, v in parse_qs(back.query).items()} == LINK
