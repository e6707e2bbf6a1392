"""Errors of tenant resolution and authentication, with the HTTP status and the GraphQL code
they answer with, and the one JSON shape both HTTP and WebSocket refusals use."""

from django.http import JsonResponse

from apps.common.errors import error_codes


class RequestRefused(Exception):
    status = 400
    code = "BAD_REQUEST"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    # WebSocket close codes mirror the HTTP status (4400, 4401, 4403, 4404).
    @property
    def close_code(self) -> int:
        return 4000 + self.status

    def as_response(self) -> JsonResponse:
        body = {"errors": [{"message": self.message, "extensions": {"code": self.code}}]}
        return JsonResponse(body, status=self.status)


class TenantResolutionError(RequestRefused):
    pass


class AuthenticationError(RequestRefused):
    status = 401
    code = "UNAUTHENTICATED"


def bad_request(message: str) -> TenantResolutionError:
    return TenantResolutionError(message, status=400, code="BAD_REQUEST")


def not_found(message: str) -> TenantResolutionError:
    return TenantResolutionError(message, status=404, code="NOT_FOUND")


def forbidden(message: str) -> RequestRefused:
    return RequestRefused(message, status=403, code="FORBIDDEN")


# The userError codes of tenant sign-up and settings (the common ones come with them).
TenantErrorCode = error_codes("Tenant", "RESERVED", "WEAK_PASSWORD")
