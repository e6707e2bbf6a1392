"""Django admin on the platform host for platform staff; `createsuperuser` works as usual."""

import os

import pytest
from django.core.management import call_command

from apps.accounts.models import User
from tests.conftest import PASSWORD, PLATFORM_HOST


def test_createsuperuser_makes_platform_staff(db, monkeypatch):
    monkeypatch.setitem(os.environ, "DJANGO_SUPERUSER_PASSWORD", "a-Long-pass-42")
    call_command("createsuperuser", "--noinput", "--email", "Root@Platform.Test", verbosity=0)
    user = User.objects.get(email__iexact="root@platform.test")
    assert user.is_staff and user.is_superuser and user.check_password("a-Long-pass-42")


@pytest.mark.parametrize(
    "page",
    [
        "tenants/tenant/",
        "tenants/domain/",
        "accounts/user/",
        "accounts/membership/",
        "accounts/apikey/",
    ],
)
def test_staff_admin_lists_platform_models(gql, alpha, page):
    User.objects.filter(email="staff@platform.test").update(is_superuser=True)
    client = gql.client
    assert async_login(client)
    response = gql.get(f"/admin/{page}", host=PLATFORM_HOST)
    assert response.status_code == 200, response.status_code
    if page == "tenants/tenant/":
        assert b"alpha" in response.content and b"tenant-template" not in response.content


def test_admin_is_not_on_tenant_hosts_and_refuses_non_staff(gql, alpha):
    assert gql.get("/admin/", host=alpha.host).status_code == 404
    response = gql.get("/admin/", host=PLATFORM_HOST)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def async_login(client) -> bool:
    from asgiref.sync import async_to_sync

    return async_to_sync(client.alogin)(email="staff@platform.test", password=PASSWORD)
