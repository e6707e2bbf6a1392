"""Test settings: the real settings with a test key, fast hashing and a private Redis prefix."""

import os
import tempfile
import uuid

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("REDIS_KEY_PREFIX", f"test-{uuid.uuid4().hex[:8]}")
os.environ.setdefault("FIELD_ENCRYPTION_KEY", "dGVzdC1vbmx5LWZpZWxkLWtleS0wMTIzNDU2Nzg5YWI=")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Made only when unset: mypy's Django plugin loads these settings at every run (`make typecheck`).
os.environ["MEDIA_ROOT"] = os.environ.get("MEDIA_ROOT") or tempfile.mkdtemp(
    prefix="shop-test-media-"
)
os.environ["EXPORT_ROOT"] = os.environ.get("EXPORT_ROOT") or tempfile.mkdtemp(
    prefix="shop-test-exports-"
)

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EXTERNAL_CALLS_IN_TRANSACTIONS = "raise"  # the suite checks DESIGN §12 on every path it runs
ALERT_WEBHOOK_ALLOW_PRIVATE = True  # tests run webhook receivers on 127.0.0.1
