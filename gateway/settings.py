"""Settings for the gateway, read from the environment only.

Every value has a development default so a fresh checkout runs (SQLite, no Redis, secrets
generated into the untracked ``var/`` directory) when ``DEBUG=1``, as ``make demo`` and the
tests set it. ``DEBUG`` is off unless set, and then ``SECRET_KEY`` and ``FIELD_ENCRYPTION_KEYS``
(or their ``*_FILE`` variants) are required.

Sections: paths and environment helpers, core Django, database, cache/Redis, Celery, security,
DRF/OpenAPI, gateway tunables, logging.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from gateway import env as env_readers
from gateway.env import ENV_NAMES_READ, env, envbool, envfloat, envint, envlist, envstr
from gateway.redis_env import redis_settings

# === Paths and environment helpers ===========================================================

BASE_DIR = Path(__file__).resolve().parent.parent

# The readers (gateway/env.py) take every variable FOO as FOO_FILE too (a file's contents).
# Every variable they read (the same set, filled as they read): ${VAR} in provider
# configuration may never resolve one of them (providers/envsubst.py).
GATEWAY_SETTINGS_ENV_NAMES = ENV_NAMES_READ

# Off unless set: DEBUG shows tracebacks (with posted values) and loosens hosts, cookies and
# secrets. `make demo` and the test suite set DEBUG=1.
DEBUG = envbool("DEBUG", False)

# Local state that must survive restarts but never be committed: the SQLite database, the
# development secrets, the usage spool.
STATE_DIR = Path(envstr("GATEWAY_STATE_DIR", str(BASE_DIR / "var")))


def _dev_secret(name: str, generate: Callable[[], str]) -> str:
    """Return a development secret kept in STATE_DIR, creating it on first use."""
    path = STATE_DIR / name
    if path.exists():
        return path.read_text().strip()
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    value = generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def envsecret(name: str) -> str:
    """Read a secret from ``name`` or from the file ``name_FILE`` points at; empty when unset.

    Secrets usually arrive as files (Docker/Kubernetes secrets), hence the ``_FILE`` variant;
    every other setting accepts it too.
    """
    return envstr(name, "")


def missing_secret(name: str, *, dev_file: str, generate: Callable[[], str]) -> str:
    """The value for a secret that is not set.

    With DEBUG on: a secret generated once into ``STATE_DIR/dev_file``. With DEBUG off: an
    error, because every process of a deployment must share the secret and only the operator
    can provide that.
    """
    if not DEBUG:
        raise ImproperlyConfigured(f"{name} (or {name}_FILE) is required when DEBUG=0")
    return _dev_secret(dev_file, generate)


def _fernet_key() -> str:
    # Imported lazily: settings must stay importable before dependencies are checked.
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


# === Core Django: applications, middleware, templates, static files, locale ==================

# One list: an app is added with one line.
INSTALLED_APPS = [
    "gateway.admin_site.GatewayAdminConfig",  # django.contrib.admin with the gateway's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "providers",
    "mappings",
    # The gateway's apps; gateway.keys keeps the app label "gateway" (its tables and migrations).
    "gateway.keys",
    "gateway.usage",
    "gateway.adminapi",
    "gateway.config_io",
    "gateway.proxy",
    "gateway.monitoring",
    "gateway.responses_store",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "gateway.reports",
    "django_celery_beat",
    "axes",
]
# The mappings admin shows each alias's route now with this function (alias -> explanation);
# mappings may not import gateway, so it is named here and imported when a page renders.
GATEWAY_ROUTE_EXPLAINER = "gateway.routing.plan.explain_alias_sync"

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "gateway.urls"
ASGI_APPLICATION = "gateway.asgi.application"

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

# Staff pages (admin, reports) log in through the admin's login page.
LOGIN_URL = "/admin/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(envstr("STATIC_ROOT", str(STATE_DIR / "static")))
# Serve static files from the app directories without collectstatic in development.
WHITENOISE_USE_FINDERS = DEBUG

# Mail carries budget alerts only; development prints it to the console.
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "llm-gateway@localhost")
EMAIL_BACKEND = envstr(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)

# === Database ================================================================================

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{STATE_DIR / 'db.sqlite3'}"),
}
GATEWAY_SETTINGS_ENV_NAMES.update(("DATABASE_URL", "DATABASE_URL_FILE"))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the gateway's background refresh read while admin writes.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    # A file, not :memory:, so end-to-end tests can share the test database with the gateway
    # server process they start.
    DATABASES["default"]["TEST"] = {"NAME": str(STATE_DIR / "test_db.sqlite3")}
DATABASES["default"].setdefault("CONN_MAX_AGE", envint("CONN_MAX_AGE", 60))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# === Cache / Redis ===========================================================================

# Optional (without it state and the usage queue are per process: one process, demo, tests).
# One server, Sentinel or Cluster (REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER): redis_env.py.
_redis = redis_settings()
REDIS_URL = _redis.url
REDIS_CLUSTER = _redis.cluster

# === Celery (gateway/celery.py): usage recording, rollups, health probes, budget alerts ======

# The broker is Redis when configured. Without one, tasks run eagerly in the calling process so
# `make demo` works with nothing but SQLite (nothing periodic runs then: the gateway writes
# usage itself and computes budget state in process).
CELERY_BROKER_URL = _redis.broker_url
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
# At-least-once delivery (usage is billed): a task is acknowledged after it ran, given back
# when its worker dies, and a worker holds one message at a time.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", 240)
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 300)
# Redis redelivers an unacknowledged task after the visibility timeout: it must be longer than
# any task may run (the hard time limit), or a slow task would run twice at the same time.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 3600),
    **_redis.broker_options,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# === Security: secrets, encryption keys, hosts, CSRF, cookies, passwords =====================

SECRET_KEY = envsecret("SECRET_KEY") or missing_secret(
    "SECRET_KEY", dev_file="secret_key", generate=lambda: secrets.token_urlsafe(50)
)

# Comma-separated Fernet keys: the first encrypts, all decrypt (rotation: put the new key first,
# run `manage.py rotate_encryption_keys`, then drop the old one).
FIELD_ENCRYPTION_KEYS = [
    k.strip() for k in envsecret("FIELD_ENCRYPTION_KEYS").split(",") if k.strip()
] or [
    missing_secret("FIELD_ENCRYPTION_KEYS", dev_file="field_encryption_keys", generate=_fernet_key)
]

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["*"] if DEBUG else ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

# HTTPS: a TLS-terminating proxy in front sets X-Forwarded-Proto; trust it only when told to
# (TRUST_X_FORWARDED_PROTO=1), since a client reaching the server directly could set it too.
if envbool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
# /health and /metrics are probed over plain HTTP from inside the network.
SECURE_REDIRECT_EXEMPT = envlist("SECURE_REDIRECT_EXEMPT", [r"^health", r"^metrics"])
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", 12 * 3600)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Admin login throttling (django-axes): after AXES_FAILURE_LIMIT failed logins for one
# username from one IP address, that pair is locked out (HTTP 429) for AXES_COOLOFF_MINUTES.
# Failures are counted in the database (shared by every process, listed in the admin), or with
# AXES_STORE=cache in the cache (Redis when REDIS_URL is set, else per process).
AXES_ENABLED = envbool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = envfloat("AXES_COOLOFF_MINUTES", 15.0) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = {
    "database": "axes.handlers.database.AxesDatabaseHandler",
    "cache": "axes.handlers.cache.AxesCacheHandler",
}.get(envstr("AXES_STORE", "database"), "")
if not AXES_HANDLER:
    raise ImproperlyConfigured("AXES_STORE must be 'database' or 'cache'")
AXES_CACHE = "axes"
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "axes": _redis.axes_cache,
}
# The client's address is REMOTE_ADDR: `serve` (uvicorn) takes it from X-Forwarded-For only
# when the peer is in FORWARDED_ALLOW_IPS (default 127.0.0.1), so clients cannot pick theirs.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# === DRF and OpenAPI: the staff-only admin and reports API (gateway/adminapi, gateway/reports) ===

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Staff API tokens first, so an unauthenticated call gets 401 with
        # WWW-Authenticate: Bearer (DRF takes the header from the first class).
        "gateway.reports.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Staff plus the model's view/add/change/delete permission, as in the admin.
    "DEFAULT_PERMISSION_CLASSES": ["gateway.adminapi.permissions.GatewayModelPermissions"],
    # Schema, filtering, pagination and one error shape for every endpoint.
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["gateway.adminapi.strict.StrictFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "gateway.adminapi.pagination.CheckedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "gateway.adminapi.errors.exception_handler",
}

# OpenAPI schema at /api/schema/; the UI's assets are served locally.
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
    # Every operation also documents its error answers (one shape, gateway.adminapi.errors).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "gateway.adminapi.schema.error_responses",
    ],
}

# === Gateway tunables ========================================================================

# --- request path ----------------------------------------------------------------------------
GATEWAY_MAX_BODY_BYTES = envint("GATEWAY_MAX_BODY_BYTES", 20 * 1024 * 1024)
# When set, /metrics and the detailed /health need "Authorization: Bearer <this>" (or a staff
# session); /health/live and /health/ready stay open.
GATEWAY_METRICS_TOKEN = envstr("GATEWAY_METRICS_TOKEN", "")
# A config change (key disabled, alias added) applies to every request starting this many
# seconds after its commit; each process polls the config version several times per window.
# (GATEWAY_CONFIG_CHECK_INTERVAL is its former name, still read.)
GATEWAY_CONFIG_MAX_STALENESS = envfloat(
    "GATEWAY_CONFIG_MAX_STALENESS", envfloat("GATEWAY_CONFIG_CHECK_INTERVAL", 1.0)
)
# Server limits of `manage.py serve` (its flags override them; 0 turns one off).
GATEWAY_MAX_HEADER_BYTES = envint("GATEWAY_MAX_HEADER_BYTES", 64 * 1024)
GATEWAY_HEADER_TIMEOUT = envfloat("GATEWAY_HEADER_TIMEOUT", 10.0)
GATEWAY_BODY_TIMEOUT = envfloat("GATEWAY_BODY_TIMEOUT", 60.0)
GATEWAY_KEEPALIVE_TIMEOUT = envint("GATEWAY_KEEPALIVE_TIMEOUT", 75)
GATEWAY_LIMIT_CONCURRENCY = envint("GATEWAY_LIMIT_CONCURRENCY", 2048)
# ${VAR} in provider configuration may resolve only these names (NAME or PREFIX_*); empty:
# any name except the gateway's own settings and process internals (providers/envsubst.py).
GATEWAY_ENV_ALLOW = envlist("GATEWAY_ENV_ALLOW", [])
# Outbound connection pool of each process.
GATEWAY_HTTP_MAX_CONNECTIONS = envint("GATEWAY_HTTP_MAX_CONNECTIONS", 512)
GATEWAY_HTTP_MAX_KEEPALIVE = envint("GATEWAY_HTTP_MAX_KEEPALIVE", 128)
GATEWAY_CONNECT_TIMEOUT = envfloat("GATEWAY_CONNECT_TIMEOUT", 10.0)

# --- routing and failover (README "Routing and failover") ------------------------------------
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

# --- usage pipeline (gateway/usage) -----------------------------------------------------------
# Usage queue: a dotted path to a UsageQueue class; empty picks the Redis stream queue when
# REDIS_URL is set, else the in-process database writer (gateway.usage.queues).
GATEWAY_USAGE_QUEUE = envstr("GATEWAY_USAGE_QUEUE", "")
GATEWAY_USAGE_STREAM = envstr("GATEWAY_USAGE_STREAM", "gw:usage")
# Warn (system check, /health/ready) when the usage queue's Redis has no AOF; 0 silences it.
GATEWAY_REDIS_AOF_WARNING = envbool("GATEWAY_REDIS_AOF_WARNING", True)
GATEWAY_USAGE_GROUP = envstr("GATEWAY_USAGE_GROUP", "recorder")
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
# The usage flusher waits this long after a batch's first event (one round trip per batch);
# queued routing releases ride it, or their timer sends them after twice this (0: at once).
# Without Redis a batch is a transaction on the database thread, whose ORM work holds the GIL
# against the event loop: 100 ms batches, the journal keeps them through a SIGKILL.
GATEWAY_USAGE_LINGER_SECONDS = envfloat("GATEWAY_USAGE_LINGER_SECONDS", 0.01 if REDIS_URL else 0.1)
# The in-process database writer (no Redis) flushes at least this often.
GATEWAY_USAGE_FLUSH_SECONDS = envfloat("GATEWAY_USAGE_FLUSH_SECONDS", 0.5)

# Responses API store (previous_response_id and GET/DELETE /v1/responses/{id}): records live
# this long, one record over this size is not stored, and the database form (no Redis) keeps
# at most this many rows (the oldest go first).
GATEWAY_RESPONSES_TTL_SECONDS = envint("GATEWAY_RESPONSES_TTL_SECONDS", 24 * 3600)
GATEWAY_RESPONSES_MAX_BYTES = envint("GATEWAY_RESPONSES_MAX_BYTES", 8 * 1024 * 1024)
GATEWAY_RESPONSES_MAX_ROWS = envint("GATEWAY_RESPONSES_MAX_ROWS", 100_000)

# --- budgets (gateway/usage/budgets.py) -------------------------------------------------------
# How often a gateway process re-reads the over-budget state (Redis set, or its own database
# computation when there is no Redis).
GATEWAY_BUDGET_REFRESH_SECONDS = envfloat("GATEWAY_BUDGET_REFRESH_SECONDS", 5.0)
BUDGET_ALERT_EMAILS = envlist("BUDGET_ALERT_EMAILS", [])
BUDGET_ALERT_WEBHOOK_URL = envstr("BUDGET_ALERT_WEBHOOK_URL", "")
BUDGET_ALERT_WEBHOOK_TIMEOUT = envfloat("BUDGET_ALERT_WEBHOOK_TIMEOUT", 5.0)

# --- health checks and metrics (providers/health.py, gateway/monitoring/metrics.py) -----------
# Probe history kept this many days (the health_checks_purge task deletes older rows).
HEALTH_CHECK_RETENTION_DAYS = envint("HEALTH_CHECK_RETENTION_DAYS", 7)
# Usage records (gateway/usage/partitions.py): PostgreSQL months created ahead; raw records
# older than USAGE_RETENTION_DAYS (0: kept) dropped once rolled up (rollups re-read 7 days).
USAGE_PARTITIONS_AHEAD = envint("USAGE_PARTITIONS_AHEAD", 3)
USAGE_ROLLUP_WINDOW_DAYS = 7
USAGE_RETENTION_DAYS = env_readers.envretention(
    "USAGE_RETENTION_DAYS", window=USAGE_ROLLUP_WINDOW_DAYS
)
# An instance that answers a probe slower than this is "degraded" (still routable).
HEALTH_CHECK_DEGRADED_MS = envint("HEALTH_CHECK_DEGRADED_MS", 5000)
# A probe gives up after this many seconds (capped by the instance's own timeouts).
HEALTH_CHECK_TIMEOUT = envfloat("HEALTH_CHECK_TIMEOUT", 10.0)
# prometheus-client multiprocess mode: `serve --workers N` (N > 1) sets the environment
# variable PROMETHEUS_MULTIPROC_DIR to this directory (cleared at start) unless it is set.
PROMETHEUS_MULTIPROC_DIR = envstr("PROMETHEUS_MULTIPROC_DIR", str(STATE_DIR / "prometheus"))

# === Logging =================================================================================

LOG_LEVEL = envstr("LOG_LEVEL", "INFO")
LOGGING: dict[str, Any] = {
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
