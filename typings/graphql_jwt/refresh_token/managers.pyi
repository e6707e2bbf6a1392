# django-graphql-jwt ships no type hints; the refresh token's manager is made from this queryset.
from typing import Any, Self

from django.db import models

class RefreshTokenQuerySet(models.QuerySet[Any]):
    def expired(self) -> Self: ...
