"""Settings, all from the environment (django-environ).

DEBUG and a throw-away SECRET_KEY are allowed only under the dev launcher (`config.devserver run`
and `exec`, so `make run` and `make test`, set DJANGO_DEV_SERVER=1) and the test settings; anywhere
else a real SECRET_KEY is required.
"""

import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEV_SERVER = env.bool("DJANGO_DEV_SERVER", default=False)
DEBUG = env.bool("DEBUG", default=DEV_SERVER)
if DEBUG and not DEV_SERVER and not env.bool("DJANGO_ALLOW_DEBUG", default=False):
    raise environ.ImproperlyConfigured(
        "DEBUG is for the dev server only (set DJANGO_DEV_SERVER=1)."
    )

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEV_SERVER:
        raise environ.ImproperlyConfigured("SECRET_KEY must be set outside the dev server.")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789"

# Hosts: the platform host(s) serve the public schema; tenant hosts are `<slug>.<TENANT_DOMAIN_SUFFIX>`
# or any domain registered for a tenant.
PLATFORM_HOSTS = env.list("PLATFORM_HOSTS", default=["localhost", "127.0.0.1"])
TENANT_DOMAIN_SUFFIX = env.str("TENANT_DOMAIN_SUFFIX", default="localhost")
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[*PLATFORM_HOSTS, f".{TENANT_DOMAIN_SUFFIX}", "testserver"]
)

SHARED_APPS = [
    "config",  # no models: its ready() wires the Celery app (config/apps.py)
    "tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    # After the admin: its admin/app_list.html override expects `request.tenant` on the platform
    # host too, where ours is None (the admin lives on the platform host only).
    "django_tenants",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "corsheaders",
    "channels",
    "strawberry_django",
    "graphql_jwt.refresh_token",
    "apps.accounts",
    "apps.audit",
    "apps.live",
    # No models: its management commands (load_demo, seed_demo) are found through this list.
    "apps.provisioning",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "apps.audit",
    "apps.catalog",
    "apps.customers",
    "apps.orders",
    "apps.payments",
    "apps.analytics",
    "apps.alerts",
    "apps.exports",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
ROOT_URLCONF = "config.urls"
# New tenants clone this schema instead of running every migration (DESIGN §3).
TENANT_BASE_SCHEMA = "tenant_template"
TENANT_CREATION_FAKES_MIGRATIONS = True
TENANT_LIMIT_SET_CALLS = True
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)

MIDDLEWARE = [
    "config.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before WhiteNoise and the tenant middleware: static files and their refusals carry the CSP too.
    "config.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tenants.middleware.TenantMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.accounts.middleware.PrincipalMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
            ]
        },
    }
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/shop")}
DATABASES["default"]["ENGINE"] = "tenants.backend"
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
# A PostgreSQL that does not answer is an outage answered in seconds (apps.common.outages), not a
# request waiting on the kernel's TCP timeout.
DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
    "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=3)
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# DATABASE_URL is the coordinator of a Citus cluster (docs/scale-out.md): each tenant schema is
# made a distributed schema (schema-based sharding), placed on one worker and moved as a whole.
CITUS = env.bool("CITUS", default=False)

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Every key this deployment writes to Redis starts with it, so two deployments (or a test run)
# can share one server.
REDIS_KEY_PREFIX = env.str("REDIS_KEY_PREFIX", default="shop")

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX,
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 2},
    }
}
CHANNEL_LAYERS = {
    "default": {
        # channels-redis that waits through a Redis restart and joins its groups again (apps.live.layer).
        "BACKEND": "apps.live.layer.RedisChannelLayer",
        # A read timeout above channels-redis' 5 s BZPOPMIN: redis-py 8's default (5 s) lets an idle
        # consumer's blocking receive time out and crash its socket.
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
            "prefix": f"{REDIS_KEY_PREFIX}:asgi",
        },
    }
}

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
# argon2id at OWASP's cost first (apps/accounts/hashers.py); PBKDF2 verifies older hashes.
PASSWORD_HASHERS = [
    "apps.accounts.hashers.OwaspArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/login/"

GRAPHQL_JWT = {
    "JWT_VERIFY_EXPIRATION": True,
    "JWT_EXPIRATION_DELTA": timedelta(minutes=env.int("JWT_EXPIRATION_MINUTES", default=15)),
    "JWT_REFRESH_EXPIRATION_DELTA": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "JWT_LONG_RUNNING_REFRESH_TOKEN": True,
    "JWT_REFRESH_TOKEN_MODEL": "accounts.RefreshToken",
    "JWT_AUTH_HEADER_PREFIX": "Bearer",
    "JWT_ISSUER": "shop-analytics",
}

# GraphQL protections (DESIGN §4).
GRAPHQL_MAX_DEPTH = env.int("GRAPHQL_MAX_DEPTH", default=12)
GRAPHQL_MAX_ALIASES = env.int("GRAPHQL_MAX_ALIASES", default=30)
GRAPHQL_MAX_TOKENS = env.int("GRAPHQL_MAX_TOKENS", default=5000)
GRAPHQL_MAX_COST = env.int("GRAPHQL_MAX_COST", default=1000)
GRAPHQL_BUCKET_SIZE = env.int("GRAPHQL_BUCKET_SIZE", default=2000)
GRAPHQL_RESTORE_RATE = env.float("GRAPHQL_RESTORE_RATE", default=100.0)
# The selection compiler (schema/compiler): hot list queries from one SQL statement; off, every
# query takes the resolver path (the property test compares the two).
GRAPHQL_COMPILER = env.bool("GRAPHQL_COMPILER", default=True)
GRAPHQL_INTROSPECTION_PUBLIC = env.bool("GRAPHQL_INTROSPECTION_PUBLIC", default=DEBUG)
# Live subscriptions (apps.live.limits): per WebSocket connection, and per tenant across the deployment.
LIVE_SUBSCRIPTIONS_PER_CONNECTION = env.int("LIVE_SUBSCRIPTIONS_PER_CONNECTION", default=10)
LIVE_SUBSCRIPTIONS_PER_TENANT = env.int("LIVE_SUBSCRIPTIONS_PER_TENANT", default=1000)

# Security headers. HSTS only outside DEBUG (a dev server on http must stay reachable).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_HSTS_SECONDS = 0 if DEBUG else env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# GraphiQL runs from our own static files: no CDN, no inline script (its styles are injected).
# connect-src gets the request's own host as ws:// and wss:// per request (config.csp).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
    }
}

# CORS: origins come from each tenant's settings (tenants.cors); nothing is allowed globally.
CORS_ALLOWED_ORIGINS: list[str] = []
CORS_ALLOW_HEADERS = [
    "accept",
    "authorization",
    "content-type",
    "x-api-key",
    "x-tenant-id",
    "x-request-id",
    "x-csrftoken",
]

CELERY_BROKER_URL = REDIS_URL
# kombu's Redis transport, whose worker reconnects when Redis drops during a task (config/broker.py).
CELERY_BROKER_TRANSPORT = "config.broker:Transport"
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ACKS_LATE = True
# One message at a time per pool process: a killed worker's prefetched messages would otherwise
# all wait out the visibility timeout (bench/faults.py saw exports wait ~3 min for that).
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A task is acknowledged when it ends (acks late): a worker that dies mid-task leaves its message
# unacknowledged, and Redis hands it to another worker once the visibility timeout has passed.
# So the timeout must outlast the longest task (or a task still running is handed out twice),
# and it is how long a crashed task waits to run again: every task is cut at CELERY_TASK_TIME_LIMIT
# (an export of a million rows takes about 6 minutes here), and the timeout is half as long again.
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=600)
# The soft limit raises in the task (an export marks itself failed) before the hard one kills it.
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - min(30, CELERY_TASK_TIME_LIMIT // 4)
CELERY_VISIBILITY_TIMEOUT = env.int(
    "CELERY_VISIBILITY_TIMEOUT", default=CELERY_TASK_TIME_LIMIT * 3 // 2
)
if CELERY_VISIBILITY_TIMEOUT <= CELERY_TASK_TIME_LIMIT:
    raise environ.ImproperlyConfigured(
        "CELERY_VISIBILITY_TIMEOUT must be longer than CELERY_TASK_TIME_LIMIT."
    )
# How a lost message comes back (kombu's Redis transport): each worker looks for messages unacked
# for longer than the visibility timeout every CELERY_RESTORE_INTERVAL seconds (kombu's default
# looks only every tenth time, so about every 100 s) and once when it starts. The look is guarded
# by a lock in Redis; a worker killed while holding it stops every look until the lock expires
# (kombu's default: 5 minutes), so it expires sooner.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "global_keyprefix": f"{REDIS_KEY_PREFIX}:celery:",
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "unacked_restore_interval": env.int("CELERY_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": 1,
    "unacked_mutex_expire": env.int("CELERY_RESTORE_LOCK_SECONDS", default=60),
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"global_keyprefix": f"{REDIS_KEY_PREFIX}:celery:"}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    # apps.alerts: queues each active tenant's rule evaluation
    "alerts.evaluate": {"task": "apps.alerts.tasks.evaluate_all_tenants", "schedule": 60.0},
    # apps.exports: queues each tenant's clean-up of expired export files
    "exports.expire": {"task": "apps.exports.tasks.expire_all_tenants", "schedule": 3600.0},
    # apps.payments: finishes Stripe calls a crash or an outage left between record and answer
    "payments.reconcile": {"task": "apps.payments.tasks.reconcile_all_tenants", "schedule": 60.0},
    # apps.catalog: queues each active tenant's check for renditions whose message was lost
    "catalog.renditions": {
        "task": "apps.catalog.tasks.requeue_lost_renditions_all_tenants",
        "schedule": 300.0,
    },
    # apps.exports: queues each active tenant's check for exports whose message was lost
    "exports.reconcile": {
        "task": "apps.exports.tasks.reconcile_all_tenants",
        "schedule": env.float("EXPORT_RECONCILE_SECONDS", default=300.0),
    },
}

# /metrics (config/metrics.py): answered only to these networks (the scraper's address as the
# ASGI server sees it: behind a proxy with --proxy-headers, the forwarded client) and, when the
# token is set, only with `Authorization: Bearer <token>`. The queues whose depth it reports.
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_CELERY_QUEUES = ["celery"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Without collectstatic (dev server, tests) WhiteNoise finds files where Django's finders do,
# and its warning that STATIC_ROOT does not exist yet says nothing useful.
WHITENOISE_USE_FINDERS = True
warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / ".data" / "media")
MEDIA_URL = "media/"
# Uploaded files live under MEDIA_ROOT/<tenant schema>/ (django-tenants' storage).
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django_tenants.files.storage.TenantFileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # Data exports (apps.exports): outside MEDIA_ROOT, which is served publicly; files are named
    # <schema>/<random>.<ext> and downloaded only through a signed URL on the tenant's host.
    "exports": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": env.path("EXPORT_ROOT", default=BASE_DIR / ".data" / "exports")},
    },
}
MULTITENANT_RELATIVE_MEDIA_ROOT = "%s"

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "config.logging.ContextFilter"},
        "outage_answered": {"()": "config.logging.OutageAnswered"},
    },
    "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["context"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "django.request": {"filters": ["outage_answered"]},
    },
}

# Product images (apps.catalog.images): checked before anything is stored.
PRODUCT_IMAGE_MAX_BYTES = env.int("PRODUCT_IMAGE_MAX_BYTES", default=10_000_000)
PRODUCT_IMAGE_MAX_PIXELS = env.int(
    "PRODUCT_IMAGE_MAX_PIXELS", default=40_000_000
)  # all frames together
PRODUCT_IMAGE_MAX_FILES = env.int("PRODUCT_IMAGE_MAX_FILES", default=20)  # per productImagesUpload
PRODUCT_IMAGE_RENDITIONS = (160, 640, 1280)  # WebP, longest side in px

# Payments (apps.payments): Stripe secrets are encrypted with FIELD_ENCRYPTION_KEY (Fernet keys,
# comma-separated to rotate: the first encrypts). No default outside the dev server and tests.
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")
if not FIELD_ENCRYPTION_KEY and DEV_SERVER:
    FIELD_ENCRYPTION_KEY = "ZGV2LW9ubHktZmllbGQta2V5LW5vdC1mb3ItcHJvZCE="  # dev only
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")  # empty: api.stripe.com
STRIPE_WEBHOOK_TOLERANCE = env.int("STRIPE_WEBHOOK_TOLERANCE", default=300)  # seconds
# Seconds Stripe may stay silent (to connect, or between bytes of an answer) before a call gives up
# (the SDK waits 80 s): a hung Stripe must not hold a request, or the refund it is making, for long.
# The SDK retries twice more with the same idempotency key, so a call lasts ~3x this at worst.
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=20)
# A Stripe request, webhook POST or email made inside a database transaction (DESIGN §12; see
# apps.common.external): "log" an error and go ahead, or "raise" (the test settings).
EXTERNAL_CALLS_IN_TRANSACTIONS = env.str("EXTERNAL_CALLS_IN_TRANSACTIONS", default="log")
# A Stripe call recorded before it is made (apps.payments.refunds) is held by one caller for this
# long (longer than the SDK's call with its network retries); after it, a retry or the reconciler
# may take it over. The reconciler leaves records younger than PAYMENTS_RECONCILE_AFTER_SECONDS.
PAYMENTS_CALL_LEASE_SECONDS = env.int("PAYMENTS_CALL_LEASE_SECONDS", default=300)
PAYMENTS_RECONCILE_AFTER_SECONDS = env.int("PAYMENTS_RECONCILE_AFTER_SECONDS", default=60)

# Alerts (apps.alerts): email through Django's backend (EMAIL_URL, e.g. smtp+tls://user:pass@host:587;
# the default prints mails to the log), webhooks signed per rule. Webhooks to private, loopback and
# reserved addresses are refused unless ALERT_WEBHOOK_ALLOW_PRIVATE (tests post to 127.0.0.1).
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="alerts@localhost")
ALERT_WEBHOOK_ALLOW_PRIVATE = env.bool("ALERT_WEBHOOK_ALLOW_PRIVATE", default=False)

# Exports (apps.exports): how long a signed download URL stays valid, and a file is kept (seconds).
EXPORT_URL_MAX_AGE = env.int("EXPORT_URL_MAX_AGE", default=3600)
EXPORT_TTL = env.int("EXPORT_TTL", default=7 * 24 * 3600)
# Files being written (apps.exports.files): on the same disk as the storage, so a finished file is
# moved, not copied.
EXPORT_PARTIAL_ROOT = env.str(
    "EXPORT_PARTIAL_ROOT",
    default=str(Path(STORAGES["exports"]["OPTIONS"]["location"]) / ".partial"),
)
# The reconciler (apps.exports.tasks.reconcile_all_tenants) queues again an export queued for
# longer than this whose message was lost (the broker down when it was sent, or restarted without
# it); one still running after the visibility timeout is dead (every run ends within the time
# limit, and the broker would have handed a message it still had back by then), and starts over,
# at most EXPORT_MAX_RESTARTS times, then fails.
EXPORT_REQUEUE_AFTER = env.int("EXPORT_REQUEUE_AFTER", default=600)
EXPORT_MAX_RESTARTS = env.int("EXPORT_MAX_RESTARTS", default=3)
