"""Settings for the gateway, read from the environment only.

Every value has a development default so a fresh checkout runs (SQLite, no Redis, secrets
generated into the untracked ``var/`` directory). Production sets ``DEBUG=0`` and then must
provide ``SECRET_KEY`` and ``FIELD_ENCRYPTION_KEYS`` (or their ``*_FILE`` variants).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# FileAwareEnv: every variable FOO may instead be given as FOO_FILE, a path whose contents are
# the value (Docker/Kubernetes secrets).
env = environ.FileAwareEnv()


def envbool(name: str, default: bool) -> bool:
    """Read a boolean: 1/true/yes/on are true, anything else false."""
    return env.bool(name, default=default)


def envint(name: str, default: int) -> int:
    """Read an integer setting."""
    return env.int(name, default=default)


def envfloat(name: str, default: float) -> float:
    """Read a float setting."""
    return env.float(name, default=default)


DEBUG = envbool("DEBUG", True)

# Local state that must survive restarts but never be committed: the SQLite database, the
# development secrets, the usage spool.
STATE_DIR = Path(env.str("GATEWAY_STATE_DIR", default=str(BASE_DIR / "var")))


def _dev_secret(name: str, generate: str) -> str:
    """Return a development secret kept in STATE_DIR, creating it on first use.

    Only used when DEBUG is on; production must pass the secret explicitly so that every
    process of a deployment shares it.
    """
    path = STATE_DIR / name
    if path.exists():
        return path.read_text().strip()
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(generate)
    return generate


def _fernet_key() -> str:
    # Imported lazily: settings must stay importable before dependencies are checked.
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) is required when DEBUG=0")
    SECRET_KEY = _dev_secret("secret_key", secrets.token_urlsafe(50))

# Comma-separated Fernet keys: the first encrypts, all decrypt (rotation: put the new key first,
# run `manage.py rotate_encryption_keys`, then drop the old one).
FIELD_ENCRYPTION_KEYS: list[str] = [
    k.strip() for k in env.str("FIELD_ENCRYPTION_KEYS", default="").split(",") if k.strip()
]
if not FIELD_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS (or FIELD_ENCRYPTION_KEYS_FILE) is required when DEBUG=0"
        )
    FIELD_ENCRYPTION_KEYS = [_dev_secret("field_encryption_keys", _fernet_key())]

ALLOWED_HOSTS: list[str] = env.list(
    "ALLOWED_HOSTS", default=["*"] if DEBUG else ["localhost", "127.0.0.1", "[::1]"]
)
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "providers",
    "mappings",
    "gateway",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "gateway.urls"

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
            ],
        },
    },
]

ASGI_APPLICATION = "gateway.asgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{STATE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the gateway's background refresh read while admin writes.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
DATABASES["default"].setdefault("CONN_MAX_AGE", envint("CONN_MAX_AGE", 60))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Optional: without it the gateway keeps config version, circuit and rate-limit state per
# process and the usage queue in process (fine for one process, the demo and tests).
REDIS_URL: str = env.str("REDIS_URL", default="")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(STATE_DIR / "static")))
# Serve static files from the app directories without collectstatic in development.
WHITENOISE_USE_FINDERS = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # --- reports / admin API (gateway/reports, gateway/adminapi): staff API tokens; first,
        # so an unauthenticated call gets 401 with WWW-Authenticate: Bearer ---
        "gateway.reports.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    # --- reports / admin API: schema, filtering, pagination, one error shape ---------------
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "gateway.adminapi.errors.exception_handler",
}
# --- reports / admin API (issue 6): OpenAPI schema at /api/schema/, UI assets served locally
INSTALLED_APPS += ["drf_spectacular", "drf_spectacular_sidecar", "django_filters"]
INSTALLED_APPS += ["gateway.reports"]
INSTALLED_APPS += ["gateway.responses_store"]
SPECTACULAR_SETTINGS = {
    "TITLE": "LLM Gateway admin and reports API",
    "DESCRIPTION": "Staff-only: configuration (providers, keys, mappings, prices, virtual keys)"
    " and cost reports. Authenticate with a staff session or `Authorization: Bearer gwat_...`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
    # No CDN: the Swagger UI's files come from drf-spectacular-sidecar as static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}
LOGIN_URL = "/admin/login/"

# --- gateway behaviour -------------------------------------------------------------------
GATEWAY_MAX_BODY_BYTES = envint("GATEWAY_MAX_BODY_BYTES", 20 * 1024 * 1024)
# How often a process checks whether the configuration changed (seconds).
GATEWAY_CONFIG_CHECK_INTERVAL = envfloat("GATEWAY_CONFIG_CHECK_INTERVAL", 1.0)
# Outbound connection pool of each process.
GATEWAY_HTTP_MAX_CONNECTIONS = envint("GATEWAY_HTTP_MAX_CONNECTIONS", 512)
GATEWAY_HTTP_MAX_KEEPALIVE = envint("GATEWAY_HTTP_MAX_KEEPALIVE", 128)
GATEWAY_CONNECT_TIMEOUT = envfloat("GATEWAY_CONNECT_TIMEOUT", 10.0)
# Routing and failover (README "Routing and failover").
# All attempts of one request (retries, failover, waits) end by this many seconds.
GATEWAY_REQUEST_DEADLINE = envfloat("GATEWAY_REQUEST_DEADLINE", 300.0)
# An upstream Retry-After longer than this is not waited for: fail over instead.
GATEWAY_RETRY_AFTER_CAP = envfloat("GATEWAY_RETRY_AFTER_CAP", 30.0)
# Backoff between retries on one instance: base * 2**n with full jitter, capped.
GATEWAY_BACKOFF_BASE = envfloat("GATEWAY_BACKOFF_BASE", 0.1)
GATEWAY_BACKOFF_CAP = envfloat("GATEWAY_BACKOFF_CAP", 5.0)
# How long an account group cools after a 429 without Retry-After (seconds).
GATEWAY_COOLING_SECONDS = envfloat("GATEWAY_COOLING_SECONDS", 30.0)
# Rate-limit window (seconds): "per minute" limits are counted over this sliding window.
GATEWAY_RATE_LIMIT_WINDOW = envfloat("GATEWAY_RATE_LIMIT_WINDOW", 60.0)

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # httpx logs every request URL at INFO; URLs can carry Azure deployment names, and the
        # volume would swamp the hot path.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

if not DEBUG:
    SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so end-to-end tests can share the test database with the gateway
    # server process they start.
    DATABASES["default"]["TEST"] = {"NAME": str(STATE_DIR / "test_db.sqlite3")}

# --- Celery, usage pipeline, budgets (owned by the usage/Celery work; see gateway/celery.py) --
INSTALLED_APPS += ["django_celery_beat"]

# The broker is Redis when configured. Without one, tasks run eagerly in the calling process so
# `make demo` works with nothing but SQLite (nothing periodic runs then: the gateway writes
# usage itself and computes budget state in process).
CELERY_BROKER_URL: str = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
# At-least-once delivery (DESIGN "Usage events are money"): a task is acknowledged after it
# ran, given back when its worker dies, and a worker holds one message at a time.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", 240)
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 300)
# Redis redelivers an unacknowledged task after the visibility timeout: it must be longer than
# any task may run (the hard time limit), or a slow task would run twice at the same time.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 3600),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# Usage queue: a dotted path to a UsageQueue class; empty picks the Redis stream queue when
# REDIS_URL is set, else the in-process database writer (gateway.usage.queues).
GATEWAY_USAGE_QUEUE: str = env.str("GATEWAY_USAGE_QUEUE", default="")
GATEWAY_USAGE_STREAM: str = env.str("GATEWAY_USAGE_STREAM", default="gw:usage")
GATEWAY_USAGE_GROUP: str = env.str("GATEWAY_USAGE_GROUP", default="recorder")
# Safety cap on the stream (approximate trim). Recorded entries are deleted, so the stream holds
# only the backlog; the cap only bites if the recorder is down for a very long time.
GATEWAY_USAGE_STREAM_MAXLEN = envint("GATEWAY_USAGE_STREAM_MAXLEN", 2_000_000)
GATEWAY_USAGE_BATCH = envint("GATEWAY_USAGE_BATCH", 500)
# Entries pending this long belong to a dead consumer and are claimed by the next drain.
GATEWAY_USAGE_CLAIM_IDLE_SECONDS = envfloat("GATEWAY_USAGE_CLAIM_IDLE_SECONDS", 60.0)
# One drain task stops after this long (the next beat tick continues).
GATEWAY_USAGE_DRAIN_SECONDS = envfloat("GATEWAY_USAGE_DRAIN_SECONDS", 20.0)
# After Redis failed, spool without retrying for this long (then try again).
GATEWAY_USAGE_RETRY_SECONDS = envfloat("GATEWAY_USAGE_RETRY_SECONDS", 1.0)
# After the first event of a batch, the flusher waits this long for more before sending (one
# round trip per batch, not per request).
GATEWAY_USAGE_LINGER_SECONDS = envfloat("GATEWAY_USAGE_LINGER_SECONDS", 0.01)
# The in-process database writer (no Redis) flushes at least this often.
GATEWAY_USAGE_FLUSH_SECONDS = envfloat("GATEWAY_USAGE_FLUSH_SECONDS", 0.5)

# Responses API store (previous_response_id and GET/DELETE /v1/responses/{id}): records live
# this long, one record over this size is not stored, and the database form (no Redis) keeps
# at most this many rows (the oldest go first).
GATEWAY_RESPONSES_TTL_SECONDS = envint("GATEWAY_RESPONSES_TTL_SECONDS", 24 * 3600)
GATEWAY_RESPONSES_MAX_BYTES = envint("GATEWAY_RESPONSES_MAX_BYTES", 8 * 1024 * 1024)
GATEWAY_RESPONSES_MAX_ROWS = envint("GATEWAY_RESPONSES_MAX_ROWS", 100_000)

# Budgets: how often a gateway process re-reads the over-budget state (Redis set, or its own
# database computation when there is no Redis).
GATEWAY_BUDGET_REFRESH_SECONDS = envfloat("GATEWAY_BUDGET_REFRESH_SECONDS", 5.0)
BUDGET_ALERT_EMAILS: list[str] = env.list("BUDGET_ALERT_EMAILS", default=[])
BUDGET_ALERT_WEBHOOK_URL: str = env.str("BUDGET_ALERT_WEBHOOK_URL", default="")
BUDGET_ALERT_WEBHOOK_TIMEOUT = envfloat("BUDGET_ALERT_WEBHOOK_TIMEOUT", 5.0)
DEFAULT_FROM_EMAIL: str = env.str("DEFAULT_FROM_EMAIL", default="llm-gateway@localhost")
EMAIL_BACKEND: str = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
# --- end Celery block ----------------------------------------------------------------------

# --- Health checks and metrics (providers/health.py, gateway/metrics.py) ------------------
# Probe history kept this many days (the health_checks_purge task deletes older rows).
HEALTH_CHECK_RETENTION_DAYS = envint("HEALTH_CHECK_RETENTION_DAYS", 7)
# An instance that answers a probe slower than this is "degraded" (still routable).
HEALTH_CHECK_DEGRADED_MS = envint("HEALTH_CHECK_DEGRADED_MS", 5000)
# A probe gives up after this many seconds (capped by the instance's own timeouts).
HEALTH_CHECK_TIMEOUT = envfloat("HEALTH_CHECK_TIMEOUT", 10.0)
# prometheus-client multiprocess mode: `serve --workers N` (N > 1) sets the environment
# variable PROMETHEUS_MULTIPROC_DIR to this directory (cleared at start) unless it is set.
PROMETHEUS_MULTIPROC_DIR = env.str(
    "PROMETHEUS_MULTIPROC_DIR", default=str(STATE_DIR / "prometheus")
)
