"""Passwords are stored with argon2id at OWASP's cost; older PBKDF2 hashes still sign in and are
re-made with it (apps/accounts/hashers.py). The suite itself hashes with MD5 (settings_test)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.test import override_settings

from apps.accounts.models import User

PRODUCTION_HASHERS = [
    "apps.accounts.hashers.OwaspArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]


def test_the_deployments_hashers_are_argon2id_then_pbkdf2():
    from config import settings as production

    assert production.PASSWORD_HASHERS == PRODUCTION_HASHERS
    assert settings.PASSWORD_HASHERS != PRODUCTION_HASHERS  # the suite's fast MD5


@override_settings(PASSWORD_HASHERS=PRODUCTION_HASHERS)
def test_a_new_password_is_argon2id_at_owasps_cost():
    stored = make_password("correct horse battery")
    assert stored.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert check_password("correct horse battery", stored)
    assert not check_password("wrong horse", stored)


@pytest.mark.django_db
@override_settings(PASSWORD_HASHERS=PRODUCTION_HASHERS)
def test_an_older_pbkdf2_password_signs_in_and_is_stored_again_with_argon2id():
    user = User.objects.create_user(email="old-hash@example.com", password="x")
    with override_settings(PASSWORD_HASHERS=PRODUCTION_HASHERS[1:]):
        user.set_password("correct horse battery")
    user.save()
    assert user.password.startswith("pbkdf2_sha256$")
    assert user.check_password("correct horse battery")  # upgrades and saves
    assert User.objects.get(pk=user.pk).password.startswith("argon2$argon2id$")
