"""URLs on tenant hosts."""

from django.urls import path

from apps.accounts import views as account_views
from apps.analytics import views as analytics_views
from apps.catalog import views as catalog_views
from apps.exports import views as export_views
from apps.live import views as live_views
from apps.payments import views as payment_views
from config import health
from config.openapi import openapi_schema
from schema.views import graphql_view

# An outage of PostgreSQL or Redis is a coded 503, anything else a plain 500 (config.middleware).
handler500 = "config.middleware.server_error"

urlpatterns = [
    path("graphql/", graphql_view, name="graphql"),
    path("login/", account_views.login_view, name="login"),
    path("dashboard/", live_views.dashboard, name="dashboard"),
    path("logout/", account_views.logout_view, name="logout"),
    path("webhooks/stripe/", payment_views.stripe_webhook, name="stripe-webhook"),
    path("healthz", health.healthz),
    path("readyz", health.readyz),
    path("api/schema/", openapi_schema, name="openapi"),
    path("api/events", analytics_views.track_events, name="events"),
    path("exports/<int:export_id>/download", export_views.download, name="export-download"),
    path(catalog_views.MEDIA_PATTERN, catalog_views.media, name="media"),
]
