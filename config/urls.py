"""URLs on tenant hosts."""

from django.urls import path

from apps.accounts import views as account_views
from apps.catalog import views as catalog_views
from config import health
from schema.views import graphql_view

urlpatterns = [
    path("graphql/", graphql_view, name="graphql"),
    path("login/", account_views.login_view, name="login"),
    path("logout/", account_views.logout_view, name="logout"),
    path("healthz", health.healthz),
    path("readyz", health.readyz),
    path(catalog_views.MEDIA_PATTERN, catalog_views.media, name="media"),
]
