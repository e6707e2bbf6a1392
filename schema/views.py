"""GraphQL over HTTP (a Django view) and over WebSocket (a Channels consumer), both giving
resolvers the same Context: the tenant and the caller found by the middleware."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlencode, urlsplit

from channels.db import database_sync_to_async
from cross_web import HTTPException
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from strawberry.channels import GraphQLWSConsumer
from strawberry.django.views import GraphQLView as StrawberryView
from strawberry.django.views import TemporalHttpResponse
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.parse_content_type import parse_content_type

from apps.accounts.authentication import Principal, authenticate
from apps.accounts.middleware import SESSION_TENANT_KEY, ResolvedRequest, resolved
from apps.live import limits
from schema import schema
from schema.context import Context
from schema.extensions.operation import OperationNotChosen
from tenants.errors import RequestRefused


def _csrf_failure(request: HttpRequest) -> HttpResponse | None:
    """Session-authenticated writes need Django's CSRF token; bearer and API-key calls do not."""
    # Only the request is read: django-stubs asks for a real get_response and view all the same.
    return CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})  # type: ignore[arg-type]


GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
# GraphQL-over-HTTP: with application/graphql-response+json, a request that never executed
# (bad document, variables, credentials, cost) answers with a 4xx and no `data`.
STATUS_BY_CODE = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "THROTTLED": 429, "NOT_FOUND": 404}


def _request_error_status(result) -> int | None:
    if (
        result.data is not None
        or not result.errors
        or any(e.path is not None for e in result.errors)
    ):
        return None
    code = (result.errors[0].extensions or {}).get("code")
    return STATUS_BY_CODE.get(code or "", 400)


# What a GET with `?query=` may answer, in the order that breaks ties: an API client that accepts
# anything (`*/*`, or no Accept at all) gets JSON; a browser, which asks for text/html first,
# gets GraphiQL with the query filled in (how GraphiQL links are shared).
GET_MEDIA_TYPES = ["application/json", GRAPHQL_RESPONSE_JSON, "text/html"]


def _require_object(text: str | bytes, what: str) -> None:
    """A JSON text is an object exactly when its first non-blank character is `{`: checked before
    strawberry parses it, which takes any JSON value for an object (`'str' object has no attribute
    'get'`, a 500). Invalid JSON that starts with `{` is strawberry's 400. There is no batching,
    so an array is refused too."""
    start = text.lstrip()[:1]
    if start not in ("{", b"{"):
        raise HTTPException(
            400, f"{what} must be a JSON object (batches, arrays of operations, are not supported)."
        )


def error_response(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]}, status=status
    )


class _ViewRequest(ResolvedRequest):
    # The response strawberry builds the answer on, kept for process_result, which is not given it.
    graphql_sub_response: TemporalHttpResponse


@method_decorator(csrf_exempt, name="dispatch")
class GraphQLView(StrawberryView[Context, None]):
    graphql_ide = "graphiql"
    allow_queries_via_get = True

    def parse_http_body(self, request):
        if request.method == "POST":
            media_type, _ = parse_content_type(request.content_type or "")  # as strawberry reads it
            if "application/json" in media_type:
                _require_object(request.body, "The body")
        return super().parse_http_body(request)

    def parse_multipart(self, request):
        _require_object(request.post_data.get("operations", "{}"), "The operations field")
        _require_object(request.post_data.get("map", "{}"), "The map field")
        try:
            return super().parse_multipart(request)
        except (TypeError, AttributeError, IndexError, ValueError) as exc:
            # strawberry walks `map`'s paths into `operations` trusting both: a path that is not a
            # list of strings, or leads nowhere a file can go, raised from inside its walk (a 500).
            raise HTTPException(
                400,
                "The map field does not fit the operations field (a path that "
                "is not a string or names no variable).",
            ) from exc

    def should_render_graphql_ide(self, request) -> bool:
        if request.method == "GET" and request.query_params.get("query") is not None:
            # No GraphiQL on the platform host: a link there still answers its result.
            return (
                request.request.tenant is not None
                and request.request.get_preferred_type(GET_MEDIA_TYPES) == "text/html"
            )
        return super().should_render_graphql_ide(request)

    def get_context(self, request: HttpRequest, response: HttpResponse) -> Context:
        caller = resolved(request)
        return Context(
            principal=caller.principal, tenant=caller.tenant, request=request, response=response
        )

    def get_sub_response(self, request: HttpRequest) -> TemporalHttpResponse:
        view_request = cast(_ViewRequest, request)
        view_request.graphql_sub_response = super().get_sub_response(request)
        return view_request.graphql_sub_response

    def process_result(self, request: HttpRequest, result):
        data = super().process_result(request, result)
        sub_response = cast(_ViewRequest, request).graphql_sub_response
        if GRAPHQL_RESPONSE_JSON in request.headers.get("Accept", ""):
            sub_response["Content-Type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
            if (status := _request_error_status(result)) is not None:
                sub_response.status_code = status
                data.pop("data", None)
        elif any(isinstance(error, OperationNotChosen) for error in result.errors or ()):
            # Not a request that ran and failed: one that never said what to run (as an unknown
            # operationName, which strawberry answers 400 whatever the Accept).
            sub_response.status_code = 400
            data.pop("data", None)
        return data

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method == "POST" and resolved(request).principal.via == "session":
            failure = _csrf_failure(request)
            if failure is not None:
                return error_response(403, "FORBIDDEN", "CSRF token missing or wrong.")
        try:
            return self.run(request=request)
        except HTTPException as exc:
            return error_response(exc.status_code, "BAD_REQUEST", exc.reason)

    def render_graphql_ide(self, request: HttpRequest) -> HttpResponse:
        principal, tenant = resolved(request).principal, resolved(request).tenant
        if tenant is None:
            return error_response(404, "NOT_FOUND", "GraphiQL is served on tenant hosts.")
        if principal.via != "session":
            # The whole link, so that signing in lands on the shared query.
            return redirect(f"/login/?{urlencode({'next': request.get_full_path()})}")
        return render(
            request,
            "graphiql.html",
            {
                "graphql_url": request.path,
                "tenant_name": tenant.name,
                # A shared link's operation, for init.js to put in the editors (escaped by the template).
                "query": request.GET.get("query"),
                "variables": request.GET.get("variables"),
                "operation_name": request.GET.get("operationName"),
            },
        )


# An init argument: strawberry's BaseView.__init__ sets it on the instance, hiding a class attribute.
graphql_view = GraphQLView.as_view(schema=schema, multipart_uploads_enabled=True)


def _header(params: dict[str, Any], name: str) -> str | None:
    for key, value in params.items():
        if key.lower() == name.lower() and isinstance(value, str):
            return value
    return None


class GraphQLConsumer(GraphQLWSConsumer[Context, None]):
    """graphql-transport-ws on /graphql/. The tenant comes from the WebSocket middleware; the
    caller authenticates in `connection_init` (`Authorization` or `X-API-Key`)."""

    def __init__(self) -> None:
        super().__init__(schema=schema, subscription_protocols=("graphql-transport-ws",))

    async def get_context(self, request, response) -> Context:
        tenant = self.scope.get("tenant")
        return Context(
            principal=Principal(tenant=tenant), tenant=tenant, request=request, response=response
        )

    async def disconnect(self, code: int) -> None:
        await super().disconnect(code)  # ends the connection's operations
        await limits.release_connection(self)  # its subscription slots are free before it is closed

    def _same_origin(self) -> bool:
        """A session cookie counts only for pages of this very host: a browser sends the cookie
        with a socket any page opens, and sends that page's Origin, so a cross-site page never
        rides a signed-in session. A client without Origin is no browser page: no session either.
        Tokens and API keys need no Origin, from any page: a page has them only if given them."""
        headers = dict(self.scope.get("headers") or [])
        origin = headers.get(b"origin", b"").decode("latin-1")
        host = headers.get(b"host", b"").decode("latin-1")
        return bool(origin) and urlsplit(origin).netloc == host

    async def on_ws_connect(self, context: Context):
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        session = self.scope.get("session") if self._same_origin() else None

        def who() -> Principal:  # in a thread: the lazy session reads the database
            return authenticate(
                tenant=context.tenant,
                authorization=_header(params, "Authorization"),
                api_key=_header(params, "X-API-Key"),
                session_user=self.scope.get("user") if session is not None else None,
                session_tenant=session.get(SESSION_TENANT_KEY) if session is not None else None,
                client_ip=(self.scope.get("client") or ("",))[0] or "",
            )

        try:
            context.principal = await database_sync_to_async(who)()
        except RequestRefused as refused:
            raise ConnectionRejectionError(
                {"code": refused.code, "message": refused.message}
            ) from refused
        if not context.principal.is_authenticated:
            raise ConnectionRejectionError({"code": "UNAUTHENTICATED", "message": "Sign in first."})
        return {"tenant": getattr(context.tenant, "slug", None), "role": context.principal.role}
