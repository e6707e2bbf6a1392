"""The error a service raises for anything the caller can fix; the API shows it as a userError."""


class UserError(Exception):
    def __init__(self, message: str, *, field: str | None = None, code: str = "INVALID"):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


class NotFound(UserError):
    def __init__(self, message: str = "Not found.", *, field: str | None = "id"):
        super().__init__(message, field=field, code="NOT_FOUND")


class PermissionDenied(UserError):
    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message, field=field, code="PERMISSION_DENIED")
