"""URLs on the platform host (public schema): sign-up and platform GraphQL, Django admin."""

from django.contrib import admin
from django.urls import path

from config import health
from config.openapi import openapi_schema
from schema.views import graphql_view

# An outage of PostgreSQL or Redis is a coded 503, anything else a plain 500 (config.middleware).
handler500 = "config.middleware.server_error"

urlpatterns = [
    path("graphql/", graphql_view, name="graphql"),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz),
    path("readyz", health.readyz),
    path("api/schema/", openapi_schema, name="openapi"),
]
