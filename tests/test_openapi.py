"""The REST side endpoints are documented in a valid OpenAPI document, served at /api/schema/,
and every documented path exists on the tenant hosts."""

import re

import pytest
from django.urls import Resolver404, resolve
from openapi_spec_validator import validate

from config.openapi import document
from tests.conftest import PLATFORM_HOST


def test_the_document_is_valid_openapi():
    validate(document())


@pytest.mark.parametrize("path", sorted(document()["paths"]))
def test_every_documented_path_is_served_on_tenant_hosts(path):
    try:
        resolve(
            re.sub(r"\{[^}]+\}", "1", path), urlconf="config.urls"
        )  # a value in each {parameter}
    except Resolver404:
        pytest.fail(f"{path} is documented but not served")


def test_served_on_tenant_and_platform_hosts(gql, alpha):
    for host in (alpha.host, PLATFORM_HOST):
        response = gql.get("/api/schema/", host=host)
        assert response.status_code == 200
        assert response.json()["openapi"].startswith("3.")
