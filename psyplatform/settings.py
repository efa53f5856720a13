"""One settings module, read from the environment.

Every setting has an embedded default (SQLite, in-process tasks, a local media
folder), so a fresh clone runs with no configuration. See README.md for the
full list.
"""

import os
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

# Lets Django's generic classes (ModelAdmin[Study], QuerySet[Study]...) be subscripted at run time
# as they are in type hints.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.getenv("VAR_DIR", BASE_DIR / "var"))
# The embedded defaults keep the SQLite file, media and work files here.
VAR_DIR.mkdir(parents=True, exist_ok=True)


def envbool(name: str, default: str = "False") -> bool:
    return os.getenv(name, default).strip().lower() in ("1", "true", "yes", "on")


def envint(name: str, default: int) -> int:
    return int(os.getenv(name, str(default)))


# Off unless asked for: `make demo` asks (DEBUG=true); a server started any other way is a production one.
DEBUG = envbool("DEBUG")
SECRET_KEY = os.getenv("SECRET_KEY", "")
if not SECRET_KEY:
    # A production server on a key everyone can read would sign sessions and CSRF tokens anyone can forge.
    # mypy's Django plugin imports these settings only to read the models: it signs nothing.
    if not (DEBUG or "mypy" in sys.modules):
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable to a long random string, e.g. "
            "the output of: python3 -c 'import secrets; print(secrets.token_urlsafe(50))' "
            "(or DEBUG=true for a development server)."
        )
    SECRET_KEY = "insecure-embedded-default-change-me"
# Pseudonyms are keyed separately so that rotating SECRET_KEY (sessions,
# tokens) does not change every participant's pseudonym in past exports.
PSEUDONYM_KEY = os.getenv("PSEUDONYM_KEY", SECRET_KEY)
ALLOWED_HOSTS = os.getenv("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in os.getenv("CSRF_TRUSTED_ORIGINS", "").split(",") if o]
PUBLIC_BASE_URL = os.getenv("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

# Behind a proxy that terminates TLS (the deployment of docker-compose.yml): the proxy tells the scheme the
# browser used in X-Forwarded-Proto; plain HTTP is redirected to HTTPS, browsers are told to come back over
# HTTPS only (HSTS), and the session and CSRF cookies never travel over plain HTTP.
BEHIND_HTTPS_PROXY = envbool("BEHIND_HTTPS_PROXY")
if BEHIND_HTTPS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # A short HSTS_SECONDS first lets a new deployment find out whether all of it works over HTTPS.
    SECURE_HSTS_SECONDS = envint("HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Only asks: a domain is on the browsers' preload list once it is submitted to hstspreload.org.
    SECURE_HSTS_PRELOAD = envbool("HSTS_PRELOAD", "True")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# Recruiters (docs/recruitment.md). MTurk takes boto3's usual credentials (AWS_* variables,
# a profile, an instance role) unless keys of its own are set here, for a site whose AWS_*
# variables hold another service's keys (an S3-compatible store for media).
MTURK_AWS_ACCESS_KEY_ID = os.getenv("MTURK_AWS_ACCESS_KEY_ID", "")
MTURK_AWS_SECRET_ACCESS_KEY = os.getenv("MTURK_AWS_SECRET_ACCESS_KEY", "")
PROLIFIC_API_TOKEN = os.getenv("PROLIFIC_API_TOKEN", "")
PROLIFIC_API_URL = os.getenv("PROLIFIC_API_URL", "https://api.prolific.com/api/v1/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "stimuli",
    "experiments",
    "workers",
    "recruitment",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "psyplatform.lazy_messages.LazyMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "psyplatform.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            "loaders": [
                "django.template.loaders.filesystem.Loader",
                "django.template.loaders.app_directories.Loader",
                "protocols.loaders.ProtocolTemplateLoader",
            ],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "psyplatform.wsgi.application"

TIME_ZONE = "UTC"
DATABASES = {
    "default": dj_database_url.parse(
        os.getenv("DATABASE_URL", f"sqlite:///{VAR_DIR / 'psyplatform.sqlite3'}"),
        conn_max_age=envint("DB_CONN_MAX_AGE", 0),
        # A persistent connection broken by a database restart is replaced at the next request, not reused.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The session's time zone set at connect, so Django need not send SET TIME ZONE on each new connection.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", f"-c timezone={TIME_ZONE}")
# The participant API's few hot statements (experiments/prepared.py) are prepared on the PostgreSQL server
# once per connection, so that the server parses and plans them once, not at every call: on by default
# with persistent connections, off without (a connection per request would prepare each for one use, and a
# transaction-pooling PgBouncer, the README's other setup, cannot keep them).
DB_PREPARED_STATEMENTS = envbool("DB_PREPARED_STATEMENTS", str(DATABASES["default"]["CONN_MAX_AGE"] != 0))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that a Celery worker thread in the tests sees the
    # same test database; a timeout so that concurrent writers wait, not fail.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
if os.getenv("TEST_DATABASE_NAME"):
    # Lets two test runs share one PostgreSQL server.
    DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DATABASE_NAME"]}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The admin's login locks after this many failures per username or per client address within the window,
# for the window (psyplatform/login_lockout.py).
LOGIN_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5)
LOGIN_LOCKOUT_S = envint("LOGIN_LOCKOUT_S", 900)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "protocols.finders.ProtocolStaticFinder",
]
# Protocols beyond the built-in ones (protocols/__init__.py): "name=dotted.path.Class,name2=...".
EXTRA_PROTOCOLS: dict[str, str] = dict(
    entry.split("=", 1) for entry in os.getenv("EXTRA_PROTOCOLS", "").split(",") if entry.strip()
)
STATIC_ROOT = Path(os.getenv("STATIC_ROOT", VAR_DIR / "staticfiles"))


# Stored media are content-addressed (stimuli/<sha256>.jpg): a name never gets other bytes, so a copy never
# goes stale. Sent by the local media view and stored with every S3 object.
MEDIA_CACHE_CONTROL = "public, max-age=31536000, immutable"


def storage_settings(url: str) -> dict:
    """STORAGES["default"] from STORAGE_URL.

    Unset or file:///path: a local folder served at MEDIA_URL.
    s3://bucket/prefix?endpoint_url=http://minio:9000&region=eu-west-1: S3 or
    any S3-compatible store (credentials from the usual AWS_* variables).
    """
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        options = {
            "bucket_name": parsed.netloc,
            "location": parsed.path.strip("/"),
            "file_overwrite": False,
            "querystring_auth": envbool("S3_QUERYSTRING_AUTH", "False"),
            # Every stored file is named by the hash of its bytes, so browsers and CDNs may keep it for good.
            "object_parameters": {"CacheControl": MEDIA_CACHE_CONTROL},
        }
        if "endpoint_url" in query:
            options["endpoint_url"] = query["endpoint_url"]
        if "region" in query:
            options["region_name"] = query["region"]
        if "custom_domain" in query:
            options["custom_domain"] = query["custom_domain"]
        return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"STORAGE_URL must start with file:// or s3://, not {url!r}")
    return {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": parsed.path or str(MEDIA_ROOT)},
    }


MEDIA_URL = os.getenv("MEDIA_URL", "/media/")
MEDIA_ROOT = Path(os.getenv("MEDIA_ROOT", VAR_DIR / "media"))
STORAGE_URL = os.getenv("STORAGE_URL", "")
STORAGES = {
    "default": storage_settings(STORAGE_URL),
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Local working files of the GPU worker (activation arrays); never served.
WORK_DIR = Path(os.getenv("WORK_DIR", VAR_DIR / "work"))

REDIS_URL = os.getenv("REDIS_URL", "")
# Rate limits count here: Redis when there is one, so that every web process shares the counts;
# on the embedded default each process counts for itself.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Participant limits per client address (see experiments/limits.py); signed local links are exempt.
RATE_LIMIT_STARTS = os.getenv("RATE_LIMIT_STARTS", "20/hour")
RATE_LIMIT_EVENTS = os.getenv("RATE_LIMIT_EVENTS", "120/minute")
MAX_ACTIVE_SESSIONS_PER_ADDRESS = envint("MAX_ACTIVE_SESSIONS_PER_ADDRESS", 3)
# Session starts and consents one server process serves at once (experiments/admission.py); more wait
# their turn with a 503 and Retry-After, so that a burst of arrivals leaves threads for trials. 0: no limit.
ARRIVALS_AT_ONCE = envint("ARRIVALS_AT_ONCE", 1)
# Proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated), e.g. the
# TLS-terminating proxy in front of gunicorn; empty: the connection's own address is the client's.
TRUSTED_PROXIES = [p.strip() for p in os.getenv("TRUSTED_PROXIES", "").split(",") if p.strip()]
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ROUTES = {"workers.tasks.render_*": {"queue": "gpu"}, "workers.tasks.train_*": {"queue": "gpu"}}
CELERY_BEAT_SCHEDULE = {
    "release-abandoned-slots": {
        "task": "experiments.tasks.release_abandoned_slots",
        "schedule": envint("RELEASE_SLOTS_EVERY_S", 300),
    },
    # Reads HITs and submissions, tops up, and expires at the target.
    "recruitment-sync": {
        "task": "recruitment.tasks.sync_recruitments",
        "schedule": envint("RECRUITMENT_SYNC_EVERY_S", 300),
    },
    # Picks up ledger rows left pending or half-sent by a worker that died.
    "recruitment-payments": {
        "task": "recruitment.tasks.run_due_payments",
        "schedule": envint("RECRUITMENT_PAYMENTS_EVERY_S", 600),
    },
    "recruitment-reconcile": {
        "task": "recruitment.tasks.reconcile_recruitments",
        "schedule": envint("RECRUITMENT_RECONCILE_EVERY_S", 3600),
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["experiments.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "experiments.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "psyplatform participant API",
    "DESCRIPTION": "The calls a participant's browser makes: start or resume a session, "
    "fetch the current trial, answer it, record events, complete.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# Torch device for the workers' model forward passes ("cuda", "cpu", or empty for auto).
TORCH_DEVICE = os.getenv("TORCH_DEVICE", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
}
