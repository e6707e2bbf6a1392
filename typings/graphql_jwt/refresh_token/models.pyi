# django-graphql-jwt ships no type hints. Without this class mypy sees apps.accounts' RefreshToken
# as a subclass of Any, so the Django plugin cannot read its fields or its user's reverse manager.
from typing import Any

from django.db import models
from django.http import HttpRequest
from graphql_jwt.refresh_token.managers import RefreshTokenQuerySet

class AbstractRefreshToken(models.Model):
    token = models.CharField(max_length=255)
    created = models.DateTimeField()
    revoked = models.DateTimeField(null=True)
    objects = RefreshTokenQuerySet.as_manager()
    class Meta:
        abstract = True

    def generate_token(self) -> str: ...
    def get_token(self) -> str: ...
    def is_expired(self, request: HttpRequest | None = None) -> bool: ...
    def revoke(self, request: HttpRequest | None = None) -> None: ...

def __getattr__(name: str) -> Any: ...
