"""URLs on the platform host (public schema): sign-up and platform GraphQL, Django admin."""

from django.contrib import admin
from django.urls import path

from config import health
from config.openapi import openapi_schema
from schema.views import graphql_view

urlpatterns = [
    path("graphql/", graphql_view, name="graphql"),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz),
    path("readyz", health.readyz),
    path("api/schema/", openapi_schema, name="openapi"),
]
