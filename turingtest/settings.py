"""Django settings, read from the environment.

With nothing set this is the *embedded default*: SQLite under ``var/``, Celery tasks
run eagerly in-process, media under ``var/media``. Production behaviour (secure
cookies, HSTS, no debug) is the default; ``DJANGO_DEBUG=1`` opts into development.
See README.md, "Settings".
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from turingtest.objectstore import s3_storage

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DERMGAN_VAR_DIR", BASE_DIR / "var"))


def envbool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0/true/false), got {raw!r}")


def envint(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def envlist(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


DEBUG = envbool("DJANGO_DEBUG", False)

if DEBUG:
    # A development secret, stable per checkout so sessions survive restarts.
    _secret_file = VAR_DIR / "dev-secret-key"
    if not _secret_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        _secret_file.write_text(secrets.token_urlsafe(50))
    SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or _secret_file.read_text().strip()
    ALLOWED_HOSTS = envlist("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
else:
    SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
    if not SECRET_KEY:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is not set (set DJANGO_DEBUG=1 for development)."
        )
    ALLOWED_HOSTS = envlist("DJANGO_ALLOWED_HOSTS")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS is required when DJANGO_DEBUG is not set.")

SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")


_NO_SMTP: dict[str, object] = {
    "EMAIL_HOST": "localhost",
    "EMAIL_PORT": 25,
    "EMAIL_HOST_USER": "",
    "EMAIL_HOST_PASSWORD": "",
    "EMAIL_USE_TLS": False,
    "EMAIL_USE_SSL": False,
    "EMAIL_TIMEOUT": 10,
}


def email_settings(url: str) -> dict[str, object]:
    """Django's e-mail settings from one ``EMAIL_URL``.

    ``console:`` (the default: mails are printed, so nothing fails for want of a mail server),
    ``locmem:`` (kept in memory, for tests), ``dummy:`` (dropped), ``smtp://user:pass@host:port``
    with ``?tls=1`` (STARTTLS) or ``?ssl=1`` (implicit TLS; ``smtps://`` too) and ``?timeout=``
    seconds. User and password are URL-decoded (``%40`` for an ``@``).
    """
    from urllib.parse import parse_qs, unquote, urlsplit

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    simple = {
        "console": "django.core.mail.backends.console.EmailBackend",
        "locmem": "django.core.mail.backends.locmem.EmailBackend",
        "dummy": "django.core.mail.backends.dummy.EmailBackend",
    }
    if scheme in simple:
        return {**_NO_SMTP, "EMAIL_BACKEND": simple[scheme]}
    if scheme not in {"smtp", "smtps"}:
        raise ImproperlyConfigured(
            f"EMAIL_URL must start with smtp://, smtps://, console:, locmem: or dummy:, got {scheme!r}"
        )
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}

    def flag(name: str) -> bool:
        value = query.get(name, "0").lower()
        if value not in {"0", "1", "true", "false", "yes", "no"}:
            raise ImproperlyConfigured(f"EMAIL_URL ?{name}= must be 1 or 0, got {value!r}")
        return value in {"1", "true", "yes"}

    use_ssl = scheme == "smtps" or flag("ssl")
    use_tls = flag("tls")
    if use_ssl and use_tls:
        raise ImproperlyConfigured("EMAIL_URL: choose ?tls=1 (STARTTLS) or ?ssl=1 (implicit TLS), not both")
    try:
        port = parts.port or (465 if use_ssl else 587 if use_tls else 25)
        timeout = int(query["timeout"]) if "timeout" in query else 10
    except ValueError as exc:
        raise ImproperlyConfigured(f"EMAIL_URL has a bad port or timeout: {exc}") from None
    if not parts.hostname:
        raise ImproperlyConfigured("EMAIL_URL needs a host: smtp://user:password@host:port")
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": parts.hostname,
        "EMAIL_PORT": port,
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": use_tls,
        "EMAIL_USE_SSL": use_ssl,
        # Without one, a mail server that does not answer would hang the request that sends.
        "EMAIL_TIMEOUT": timeout,
    }


# --- E-mail (invitations, reminders, password reset) ------------------------------
# Without EMAIL_URL mails go to the console: password reset and invitations work out of the
# box, instead of failing on a connection to an SMTP server on localhost:25 that is not there.
_email = email_settings(os.environ.get("EMAIL_URL", "console:"))
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email["EMAIL_HOST"]
EMAIL_PORT = _email["EMAIL_PORT"]
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"]
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"]
EMAIL_USE_TLS = _email["EMAIL_USE_TLS"]
EMAIL_USE_SSL = _email["EMAIL_USE_SSL"]
EMAIL_TIMEOUT = _email["EMAIL_TIMEOUT"]
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "DermGAN Turing Test <noreply@localhost>")
SERVER_EMAIL = os.environ.get("SERVER_EMAIL", DEFAULT_FROM_EMAIL)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "axes",
    "turingtest.core",
    "turingtest.library",
    "turingtest.studies",
    "turingtest.research",
    "turingtest.evaluation",
    "turingtest.training",
    "turingtest.trail",
]

MIDDLEWARE = [
    "turingtest.trail.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "turingtest.core.middleware.ContentSecurityPolicyMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "turingtest.urls"
WSGI_APPLICATION = "turingtest.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {"timeout": 30}
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "turingtest" / "static"]
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "/media/"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "turingtest.core.staticfiles.ModuleManifestStaticFilesStorage"
    },
}
# S3-compatible object storage for media when AWS_STORAGE_BUCKET_NAME is set (requirements-s3.txt;
# the other AWS_* variables are read in turingtest/objectstore.py), so several hosts share one library.
if _s3 := s3_storage(os.environ):
    STORAGES["default"] = _s3

# Every image a rater sees has this pixel size (see turingtest/images.py).
IMAGE_SIZE = envint("IMAGE_SIZE", 256)
# Images with more pixels are refused from the header, before decoding (decompression bombs).
IMAGE_MAX_PIXELS = envint("IMAGE_MAX_PIXELS", 64_000_000)

# --- Celery -------------------------------------------------------------------
# No broker configured means "run tasks eagerly in this process". We never fall
# back to Celery's default amqp://localhost: a RabbitMQ may really listen there.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"turingtest.library.tasks.render_chunk": {"queue": "gpu"}}
# RabbitMQ (amqp://) is the recommended broker: with acks_late an unacked message goes
# back to its queue the moment the worker's connection drops, so a kill -9'd GPU
# worker's chunk is rendered by the next worker within seconds. With Redis it
# reappears only after visibility_timeout seconds (one hour by default, long enough
# for any one chunk; lower it only if no task ever runs that long, or it runs twice).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 3600),
}
# AMQP heartbeats: a worker whose host dies (no TCP reset) is noticed after about
# two missed beats, so its messages return within two minutes too.
CELERY_BROKER_HEARTBEAT = envint("CELERY_BROKER_HEARTBEAT", 30)
if CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://")):
    # Publisher confirms: batch_schedule returns only once RabbitMQ has taken each chunk.
    CELERY_BROKER_TRANSPORT_OPTIONS["confirm_publish"] = True
    # A worker that loses its RabbitMQ connection stops its running late-ack tasks: RabbitMQ
    # has already handed them to another worker, and finishing both would be wasted work.
    # Not on Redis: its unacked messages outlive a connection blip, and a cancelled task
    # would then wait out the visibility timeout.
    CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_TIMEOUT = 3

# --- Readiness (/readyz; /healthz is the cheap public liveness check) ----------
# Deep probes run at most this often; anonymous callers see only the status.
READINESS_CACHE_SECONDS = envint("READINESS_CACHE_SECONDS", 5)
# Sent as the X-Readiness-Token header, it shows the probe details to a monitor that is not staff.
READINESS_TOKEN = os.environ.get("READINESS_TOKEN", "")

# --- Operators page (/ops/, staff only) ------------------------------------------
# How long workers get to answer the page's inspect broadcast, and how long that answer is reused.
OPS_INSPECT_TIMEOUT = envint("OPS_INSPECT_TIMEOUT_MS", 500) / 1000
OPS_CACHE_SECONDS = envint("OPS_CACHE_SECONDS", 5)

# --- REST framework -----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "DermGAN Turing Test API",
    "DESCRIPTION": "Rater flow and researcher API.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "turingtest.core.openapi.path_integers_are_non_negative",
    ],
}

# --- Client address and login throttling ------------------------------------------
# Behind reverse proxies REMOTE_ADDR is the proxy; the client is read from this header,
# as many entries from the right as there are proxies (turingtest/core/client_ip.py).
# DJANGO_BEHIND_PROXY=1 means one proxy unless told otherwise; 0 trusts no header.
TRUSTED_PROXY_COUNT = envint("DJANGO_TRUSTED_PROXY_COUNT", 1 if envbool("DJANGO_BEHIND_PROXY", False) else 0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured(f"DJANGO_TRUSTED_PROXY_COUNT must be 0 or more, got {TRUSTED_PROXY_COUNT}")
CLIENT_IP_HEADER = "HTTP_" + os.environ.get("DJANGO_CLIENT_IP_HEADER", "X-Forwarded-For").upper().replace(
    "-", "_"
)
AXES_CLIENT_IP_CALLABLE = "turingtest.core.client_ip.client_ip"
# Failures count per (username, address) pair: guessing other usernames from a shared
# address (one proxy, one office NAT) never locks out a user who knows their password.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = envint("AXES_COOLOFF_HOURS", 1)
AXES_RESET_ON_SUCCESS = True

# --- Security -----------------------------------------------------------------
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = envbool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = 0 if DEBUG else envint("DJANGO_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if envbool("DJANGO_BEHIND_PROXY", False):
    # The proxy terminates TLS and says so in this header.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = envlist("DJANGO_CSRF_TRUSTED_ORIGINS")
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'"
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # axes logs every successful login at INFO; failures and lockouts stay visible.
    "loggers": {"axes": {"level": "WARNING"}},
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(VAR_DIR / "cache"),
    }
}
if os.environ.get("CACHE_URL", "").startswith("redis://"):
    CACHES["default"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ["CACHE_URL"],
    }
AXES_VERBOSE = False

# --- Hardening (issue 14): bounded JSON bodies, import archive limits ---------------
# JSON bodies over DATA_UPLOAD_MAX_MEMORY_SIZE or nested too deeply are a 400, not a 500.
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = [
    "turingtest.core.parsers.BoundedJSONParser",
    "rest_framework.parsers.FormParser",
    "rest_framework.parsers.MultiPartParser",
]
# An uploaded import zip may inflate to at most this many bytes in all (default 4 GiB) and
# no member may inflate more than IMPORT_MAX_COMPRESSION_RATIO times its compressed size.
IMPORT_MAX_UNCOMPRESSED_BYTES = envint("IMPORT_MAX_UNCOMPRESSED_BYTES", 4 * 1024**3)
IMPORT_MAX_COMPRESSION_RATIO = envint("IMPORT_MAX_COMPRESSION_RATIO", 100)
