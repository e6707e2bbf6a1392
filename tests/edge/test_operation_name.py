"""A document with several operations names the one to run (`operationName`); without it the
request is an error (GraphQL spec, GetOperation), never "the first one": over HTTP a 400
BAD_REQUEST for GET and POST, over graphql-transport-ws an `error` message."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync

from tests.conftest import token_for
from tests.test_websocket import bearer, first_answer

TWO_OPERATIONS = "query A { tenant { slug } } query B { me { role } }"
MEDIA = ["application/json", "application/graphql-response+json", None]


def _assert_refused(response) -> None:
    assert response.status_code == 400, (response.status_code, response.content[:300])
    body = json.loads(response.content)
    assert "data" not in body or body["data"] is None, body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_REQUEST"], body
    assert "operationName" in body["errors"][0]["message"], body


@pytest.mark.parametrize("accept", MEDIA)
def test_post_with_two_operations_and_no_name_is_400(gql, alpha, accept):
    headers = {
        "Host": alpha.host,
        "Authorization": f"Bearer {token_for(alpha.email('owner'), alpha.tenant)}",
    }
    if accept:
        headers["Accept"] = accept
    response = async_to_sync(gql.client.post)(
        "/graphql/",
        json.dumps({"query": TWO_OPERATIONS}),
        content_type="application/json",
        headers=headers,
    )
    _assert_refused(response)


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
def test_get_with_two_operations_and_no_name_is_400(gql, alpha, accept):
    token = token_for(alpha.email("owner"), alpha.tenant)
    response = gql.request(
        "get",
        "/graphql/",
        host=alpha.host,
        data={"query": TWO_OPERATIONS},
        headers={"Accept": accept, "Authorization": f"Bearer {token}"},
    )
    _assert_refused(response)


def test_the_named_operation_runs(gql, alpha):
    token = token_for(alpha.email("owner"), alpha.tenant)
    response = gql.request(
        "get",
        "/graphql/",
        host=alpha.host,
        data={"query": TWO_OPERATIONS, "operationName": "B"},
        headers={"Accept": "application/json", "Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    assert json.loads(response.content)["data"] == {"me": {"role": "OWNER"}}


def test_websocket_subscribe_with_two_operations_and_no_name_is_an_error(alpha):
    params = bearer(alpha)

    message = first_answer(alpha, params, {"query": TWO_OPERATIONS})
    assert message["type"] == "error" and message["id"] == "1", message
    assert [e["extensions"]["code"] for e in message["payload"]] == ["BAD_REQUEST"], message
