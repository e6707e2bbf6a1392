"""Who did something, as the services that record it see it: a signed-in caller (a Principal of
apps.accounts: a user, an API key or both), a user acting outside a request (a sign-in, an
invitation accepted), or a system actor (payments' Stripe webhook, clean-up and reconciler).

Protocols rather than those classes: the services that record actors (audit, orders, customers)
sit below apps.accounts, which defines the users, keys and principals. Each protocol declares only
what those services read, and the classes match it without naming it.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeAlias


class Author(Protocol):
    """Whom records name: a User, or a system actor (whose `pk` is None)."""

    @property
    def pk(self) -> Any: ...  # django-stubs types a model's pk as Any
    @property
    def email(self) -> str: ...


class KeyReference(Protocol):
    """An API key, as records name it."""

    @property
    def prefix(self) -> str: ...


class SignedIn(Protocol):
    """A request's caller (apps.accounts.authentication.Principal)."""

    @property
    def user(self) -> Author | None: ...
    @property
    def api_key(self) -> KeyReference | None: ...
    @property
    def role(self) -> str | None: ...


Actor: TypeAlias = SignedIn | Author
