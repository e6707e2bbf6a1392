"""The OpenAPI document of the REST side endpoints (`/api/schema/`, on every host)."""

import json
from functools import cache
from pathlib import Path

from django.http import HttpRequest, JsonResponse

DOCUMENT = Path(__file__).with_name("openapi.json")


@cache
def document() -> dict:
    return json.loads(DOCUMENT.read_text())


def openapi_schema(request: HttpRequest) -> JsonResponse:
    return JsonResponse(document())
