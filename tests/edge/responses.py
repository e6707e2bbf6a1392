"""What the edge tests assert about refusals: a 400 with a coded JSON error, the shape /graphql/
and the REST endpoints share (tenants.errors.RequestRefused, schema.views.error_response)."""

from __future__ import annotations

import json

from asgiref.sync import async_to_sync


def json_of(response) -> dict:
    assert response["Content-Type"].startswith(
        ("application/json", "application/graphql-response+json")
    )
    return json.loads(response.content)


def assert_bad_request(response) -> None:
    assert response.status_code == 400, (response.status_code, response.content[:300])
    errors = json_of(response)["errors"]
    assert errors[0]["extensions"]["code"] == "BAD_REQUEST", errors
    assert errors[0]["message"]


def post(
    gql, path: str, body: str, *, host: str, content_type: str = "application/json", headers=None
):
    """A raw body through Django's ASGI handler, with a real Host."""
    return async_to_sync(gql.client.post)(
        path, body, content_type=content_type, headers={"Host": host, **(headers or {})}
    )
