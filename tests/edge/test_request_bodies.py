"""Request bodies are parsed and bounded before GraphQL runs: a JSON body (or multipart
`operations`/`map`) that is not an object is a 400 BAD_REQUEST, not strawberry's `'str' object
has no attribute 'get'` (a 500); a NUL in a GraphQL string (literal or variable, HTTP or
WebSocket) is BAD_REQUEST before a resolver hands it to PostgreSQL; a NUL in the login form is
the form's 400. All unauthenticated, through Django's ASGI handler."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import PASSWORD
from tests.edge.responses import assert_bad_request, json_of, post
from tests.test_websocket import bearer, first_answer

NOT_OBJECTS = ['"str"', "null", "42", "true", "[]", '[{"query": "{ __typename }"}]']


@pytest.mark.parametrize("body", NOT_OBJECTS)
def test_graphql_body_that_is_not_an_object_is_400(gql, alpha, body):
    assert_bad_request(post(gql, "/graphql/", body, host=alpha.host))


@pytest.mark.parametrize("operations", NOT_OBJECTS)
def test_multipart_operations_that_are_not_an_object_are_400(gql, alpha, operations):
    response = async_to_sync(gql.client.post)(
        "/graphql/", {"operations": operations, "map": "{}"}, headers={"Host": alpha.host}
    )
    assert_bad_request(response)


MAPS_THAT_DO_NOT_FIT = [
    ({"query": "{ __typename }", "variables": "x"}, {"0": ["variables.f"]}),
    ({"query": "{ __typename }", "variables": {"f": None}}, {"0": [5]}),
    ({"query": "{ __typename }", "variables": {"f": None}}, {"0": ["variables.f.x.y"]}),
    ({"query": "{ __typename }", "variables": {"f": []}}, {"0": ["variables.f.7"]}),
]


@pytest.mark.parametrize(("operations", "file_map"), MAPS_THAT_DO_NOT_FIT)
def test_multipart_map_that_does_not_fit_the_operations_is_400(gql, alpha, operations, file_map):
    """GraphQL multipart uploads: strawberry follows `map`'s paths into `operations` unchecked."""
    form = {
        "operations": json.dumps(operations),
        "map": json.dumps(file_map),
        "0": SimpleUploadedFile("a.txt", b"x"),
    }
    assert_bad_request(
        async_to_sync(gql.client.post)("/graphql/", form, headers={"Host": alpha.host})
    )


@pytest.mark.parametrize("variables", ['"str"', "42", "[1]", "true"])
def test_graphql_get_variables_that_are_not_an_object_are_400(gql, alpha, variables):
    response = gql.request(
        "get",
        "/graphql/",
        host=alpha.host,
        headers={"Accept": "application/json"},
        data={"query": "{ __typename }", "variables": variables},
    )
    assert_bad_request(response)


TOKEN_CREATE = 'mutation($e: String!) { tokenCreate(email: $e, password: "x") { token } }'


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
@pytest.mark.parametrize("where", ["variables", "query"])
def test_nul_in_a_graphql_string_is_bad_request(gql, alpha, where, accept):
    """PostgreSQL text cannot hold NUL: refused before the resolver, not by the database inside it.
    A GraphQL request error: 400 for graphql-response+json, 200 for legacy application/json."""
    if where == "variables":
        body = {"query": TOKEN_CREATE, "variables": {"e": "owner\x00@alpha.test"}}
    else:
        body = {
            "query": 'mutation { tokenCreate(email: "owner\\u0000@alpha.test", password: "x") { token } }'
        }
    response = post(gql, "/graphql/", json.dumps(body), host=alpha.host, headers={"Accept": accept})
    assert response.status_code == (400 if "graphql-response" in accept else 200), response.content
    payload = json_of(response)
    assert payload.get("data") is None
    assert [e["extensions"]["code"] for e in payload["errors"]] == ["BAD_REQUEST"], payload
    assert "NUL" in payload["errors"][0]["message"]


def test_nul_in_a_websocket_variable_is_an_error_message(alpha):
    params = bearer(alpha)

    message = first_answer(
        alpha,
        params,
        {
            "query": "query($n: String!) { customers(first: 1, filter: {search: $n}) { totalCount } }",
            "variables": {"n": "\x00"},
        },
    )
    codes = [
        e["extensions"]["code"]
        for e in (
            message["payload"]
            if message["type"] == "error"
            else message["payload"].get("errors", [])
        )
    ]
    assert codes == ["BAD_REQUEST"], message


@pytest.mark.parametrize("field", ["email", "password"])
def test_nul_in_the_login_form_is_400(gql, alpha, field):
    form = {"email": "owner@alpha.test", "password": PASSWORD}
    form[field] = form[field][:3] + "\x00" + form[field][3:]
    response = gql.request("post", "/login/", host=alpha.host, data=form)
    assert response.status_code == 400, response.status_code
    assert b"Enter an email address and a password." in response.content


def test_the_login_form_still_signs_in(gql, alpha):
    response = gql.request(
        "post",
        "/login/",
        host=alpha.host,
        data={"email": " Owner@Alpha.test ", "password": PASSWORD, "next": "/graphql/"},
    )
    assert response.status_code == 302 and response["Location"] == "/graphql/"
