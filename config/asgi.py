"""ASGI entry point: HTTP through Django, WebSocket GraphQL (graphql-transport-ws) on /graphql/."""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from schema.views import GraphQLConsumer  # noqa: E402
from tenants.channels import TenantWebSocketMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            TenantWebSocketMiddleware(
                # The session (for GraphiQL in a signed-in browser) is one way to authenticate.
                AuthMiddlewareStack(URLRouter([path("graphql/", GraphQLConsumer.as_asgi())]))
            )
        ),
    }
)

# Everything imported so far lives as long as the process: keep it out of the collector's
# generations, so collections only walk what requests allocate (DESIGN §4 measured this).
gc.freeze()
