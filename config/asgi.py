"""ASGI entry point: HTTP through Django, WebSocket GraphQL (graphql-transport-ws) on /graphql/."""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from config.metrics import with_metrics  # noqa: E402
from schema.views import GraphQLConsumer  # noqa: E402
from tenants.channels import TenantWebSocketMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        # /metrics for Prometheus, before Django's host check (config/metrics.py).
        "http": with_metrics(django_asgi_app),
        # No Origin check in front: clients that are not browsers send no Origin and authenticate
        # with a token or an API key, which no other page can ride. The check guards the one
        # ambient credential, the session cookie: GraphQLConsumer counts it only for a page of
        # this very host (DESIGN §12).
        "websocket": TenantWebSocketMiddleware(
            # The session (for GraphiQL in a signed-in browser) is one way to authenticate.
            AuthMiddlewareStack(URLRouter([path("graphql/", GraphQLConsumer.as_asgi())]))
        ),
    }
)

# Everything imported so far lives as long as the process: keep it out of the collector's
# generations, so collections only walk what requests allocate (DESIGN §4 measured this).
gc.freeze()
