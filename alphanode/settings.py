"""Settings for alphanode, read from the environment.

Production differs from development only by its environment variables; every variable is
listed in README.md and .env.example.
"""

import datetime
import os
import sys
from pathlib import Path

import dj_database_url
import jinja2
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent

TRUE_VALUES = {"1", "true", "yes", "on"}
FALSE_VALUES = {"0", "false", "no", "off"}


def env_bool(name, default=False):
    """Return the boolean in environment variable `name`; only explicit values are accepted.

    Unset or empty means `default`.
    """
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise ImproperlyConfigured(
        f"{name}={raw!r} is not a boolean: use one of 1/true/yes/on or 0/false/no/off."
    )


def env_list(name, default=""):
    """Return the comma-separated list in environment variable `name` (empty means default)."""
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_str(name, default=""):
    """Return environment variable `name`, or `default` when it is unset or empty."""
    return os.environ.get(name, "").strip() or default


def env_int(name, default):
    """Return the integer in environment variable `name`."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None


def env_ints(name, default):
    """Return the comma-separated whole numbers in environment variable `name`, as a tuple."""
    items = env_list(name)
    if not items:
        return default
    try:
        return tuple(int(item) for item in items)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}={os.environ[name]!r} is not a comma-separated list of whole numbers."
        ) from None


def env_float(name, default):
    """Return the number in environment variable `name`."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None


def env_choice(name, default, choices):
    """Return environment variable `name`, which must be one of `choices`."""
    value = env_str(name, default).lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of: {', '.join(choices)}.")
    return value


TESTING = "pytest" in sys.modules or (len(sys.argv) > 1 and sys.argv[1] == "test")
DEBUG = env_bool("DEBUG")

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if DEBUG or TESTING:
        SECRET_KEY = "insecure-development-key-never-used-in-production"
    else:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or set DEBUG=1 for local development."
        )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1" if DEBUG or TESTING else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
INTERNAL_IPS = ["127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Before staticfiles: runserver leaves /static/ to WhiteNoise too, as in production.
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",  # the search vector's field type (posts.SearchDocument)
    "axes",  # failed-login throttling (alphanode/security.py)
    "alphanode.apps.AlphanodeConfig",  # the database's outages and pools (alphanode/database.py)
    # The task queue's table, whichever TASKS_BACKEND: switching to `database` needs no migrate.
    "django_tasks_db",
    "posts",
]

MIDDLEWARE = [
    # First, so the queries and time it reports include every other middleware's.
    "alphanode.observability.RequestCostMiddleware",
    # Before anything reads the database: which one this request reads (alphanode/routers.py).
    "alphanode.routers.ReplicaReadsMiddleware",
    "posts.caching.PrivateByDefaultMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files, before anything that would spend time on them (docs/deploy.md).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before CSRF: a PUT to a reader page is a 405, not the CSRF failure page.
    "alphanode.methods.AllowedMethodsMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # An address with many failed logins on any accounts (alphanode/security.py).
    "alphanode.security.AddressThrottleMiddleware",
    # Last, as django-axes asks: answers a throttled login with templates/locked_out.html.
    "axes.middleware.AxesMiddleware",
]

DEBUG_TOOLBAR = DEBUG and not TESTING and env_bool("DEBUG_TOOLBAR", default=True)
if DEBUG_TOOLBAR:
    INSTALLED_APPS.append("debug_toolbar")
    MIDDLEWARE.insert(0, "debug_toolbar.middleware.DebugToolbarMiddleware")
    # A tab at the edge of the page until clicked, not a panel over most of a phone's screen.
    DEBUG_TOOLBAR_CONFIG = {"SHOW_COLLAPSED": True}

ROOT_URLCONF = "alphanode.urls"
WSGI_APPLICATION = "alphanode.wsgi.application"

TEMPLATES = [
    {
        # The site's own pages (templates/): Jinja2, see alphanode/jinja2.py for why.
        "BACKEND": "alphanode.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {
            "environment": "alphanode.jinja2.environment",
            "context_processors": [
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
            ],
            # A misspelt variable fails loudly in tests and development; in production it
            # renders empty rather than turning a page into a 500.
            "undefined": jinja2.StrictUndefined if DEBUG or TESTING else jinja2.Undefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
        },
    },
    {
        # The admin and the debug toolbar (their apps' templates; posts/templates/admin).
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
            ],
        },
    },
]

# Database: SQLite file by default, PostgreSQL through psycopg's connection pool with DATABASE_URL.
def database_from_url(url):
    """Return the DATABASES entry for `url`; PostgreSQL goes through psycopg's connection pool."""
    # The pool owns connection reuse, so Django must not keep connections itself.
    database = dj_database_url.parse(url, conn_max_age=0)
    if database["ENGINE"] == "django.db.backends.postgresql":
        options = database.setdefault("OPTIONS", {})
        from alphanode.pool import check_connection

        options["pool"] = {
            # Each connection is tested before a request gets it, without a round trip, so one
            # that a PostgreSQL restart closed is replaced rather than failing the request
            # (alphanode/pool.py).
            "check": check_connection,
            "min_size": env_int("DATABASE_POOL_MIN_SIZE", 2),
            "max_size": env_int("DATABASE_POOL_MAX_SIZE", 10),
            # How long a request waits for a connection before it is answered 503 (the
            # database away): seconds a reader waits, so a few.
            "timeout": env_float("DATABASE_POOL_TIMEOUT", 3),
        }
        # No JIT compilation: PostgreSQL compiles a statement whose estimated cost is high,
        # which takes tens of milliseconds, and the site's statements run in about one. Search
        # is estimated for its older bands, which it rarely reads: 33 ms of JIT for a search
        # that ran in 9 ms at a million posts (docs/queries.md).
        options["options"] = " ".join(filter(None, [options.get("options"), "-c jit=off"]))
        if env_bool("DATABASE_PREPARED_STATEMENTS", default=True):
            # Planning a page's query took longer than running it (1.3 ms against 0.7 ms for
            # the article): a statement run 5 times on a pooled connection is prepared there
            # and planned once, if PostgreSQL finds its generic plan no costlier
            # (docs/queries.md, "Planned once, for real"). Needs server-side parameters.
            # Turn off behind a pooler in transaction mode (PgBouncer < 1.21), which cannot
            # keep prepared statements.
            options["server_side_binding"] = True
            options["prepare_threshold"] = 5
    return database


DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    database = database_from_url(DATABASE_URL)
else:
    database = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": env_str("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
        "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
    }
DATABASES = {"default": database}
# Streaming replicas of the primary (alphanode/routers.py, docs/deploy.md): reader pages read
# from one, everything else from the primary. A replica that is unreachable, or further behind
# than REPLICA_MAX_LAG_SECONDS, is skipped; its lag is measured every REPLICA_CHECK_SECONDS
# per process, waiting at most REPLICA_CHECK_TIMEOUT, and an unreachable one is asked again
# after REPLICA_RETRY_SECONDS. After a write, a logged-in user reads from the primary for
# REPLICA_READ_YOUR_WRITES_SECONDS.
DATABASE_REPLICA_URLS = env_list("DATABASE_REPLICA_URLS")
REPLICA_MAX_LAG_SECONDS = env_float("REPLICA_MAX_LAG_SECONDS", 5)
REPLICA_CHECK_SECONDS = env_float("REPLICA_CHECK_SECONDS", 2)
REPLICA_CHECK_TIMEOUT = env_float("REPLICA_CHECK_TIMEOUT", 0.5)
REPLICA_RETRY_SECONDS = env_float("REPLICA_RETRY_SECONDS", 10)
REPLICA_READ_YOUR_WRITES_SECONDS = env_int("REPLICA_READ_YOUR_WRITES_SECONDS", 30)
# How long after a commit every replica still serving reads has replayed it: the most lag it
# may have had when last measured, plus the time until it is measured again.
REPLICA_SETTLE_SECONDS = REPLICA_MAX_LAG_SECONDS + REPLICA_CHECK_SECONDS + REPLICA_CHECK_TIMEOUT
if DATABASE_REPLICA_URLS:
    if database["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            "DATABASE_REPLICA_URLS needs DATABASE_URL set to the PostgreSQL primary they "
            "replicate."
        )
    if REPLICA_READ_YOUR_WRITES_SECONDS < REPLICA_SETTLE_SECONDS:
        raise ImproperlyConfigured(
            f"REPLICA_READ_YOUR_WRITES_SECONDS={REPLICA_READ_YOUR_WRITES_SECONDS} is shorter "
            f"than a replica in use may lag ({REPLICA_SETTLE_SECONDS:g} s: "
            "REPLICA_MAX_LAG_SECONDS + REPLICA_CHECK_SECONDS + REPLICA_CHECK_TIMEOUT), so an "
            "editor could miss their own change. Raise it, or lower those."
        )
    for number, url in enumerate(DATABASE_REPLICA_URLS, start=1):
        replica = database_from_url(url)
        if replica["ENGINE"] != "django.db.backends.postgresql":
            raise ImproperlyConfigured(
                f"DATABASE_REPLICA_URLS: replica {number} is not a postgres:// URL; replicas "
                "are PostgreSQL streaming replicas of DATABASE_URL."
            )
        # Tests read the primary's test database through it: no test database of its own.
        replica["TEST"] = {"MIRROR": "default"}
        DATABASES[f"replica_{number}"] = replica
    DATABASE_ROUTERS = ["alphanode.routers.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The database away (alphanode/health.py): the 503's Retry-After, and how long /readyz waits.
UNAVAILABLE_RETRY_AFTER = env_int("UNAVAILABLE_RETRY_AFTER", 30)
READY_TIMEOUT = env_float("READY_TIMEOUT", 2)

# Cache: Redis through django-redis with REDIS_URL, otherwise the per-process local-memory cache.
# Every call is bounded by a short socket timeout, so a frozen Redis costs milliseconds, and
# the page cache stops asking it for CACHE_RETRY_SECONDS after a failure (posts/caching.py).
REDIS_URL = env_str("REDIS_URL")
REDIS_SOCKET_TIMEOUT = env_float("REDIS_SOCKET_TIMEOUT", 0.25)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "alphanode"),
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
                "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CACHE_RETRY_SECONDS = env_float("CACHE_RETRY_SECONDS", 5)
CACHE_OUTAGE_LOG_SECONDS = env_float("CACHE_OUTAGE_LOG_SECONDS", 60)

# Sessions live in PostgreSQL: a Redis outage must not log editors out or lock them out.
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# Reader pages (posts/caching.py, docs/caching.md): kept in the cache until their content
# changes (at most PAGE_CACHE_TIMEOUT), and marked for browsers and the CDN.
PAGE_CACHE = env_bool("PAGE_CACHE", default=True)
PAGE_CACHE_TIMEOUT = env_int("PAGE_CACHE_TIMEOUT", 86_400)
CACHE_MAX_AGE = env_int("CACHE_MAX_AGE", 60)  # browsers
CACHE_S_MAXAGE = env_int("CACHE_S_MAXAGE", 86_400)  # the CDN, which is purged on change
CACHE_STALE_WHILE_REVALIDATE = env_int("CACHE_STALE_WHILE_REVALIDATE", 60)
CACHE_STALE_IF_ERROR = env_int("CACHE_STALE_IF_ERROR", 86_400)
# Purging the CDN by content key after a change (posts/purging.py).
PURGER = env_choice("PURGER", "none", ("none", "log", "http"))
PURGE_URLS = env_list("PURGE_URLS")
if PURGER == "http" and not PURGE_URLS:
    raise ImproperlyConfigured(
        "PURGER=http needs PURGE_URLS: the CDN or Varnish addresses to send PURGE requests to, "
        "comma-separated (e.g. http://127.0.0.1:6081/)."
    )
PURGE_KEY_HEADER = env_str("PURGE_KEY_HEADER", "xkey-purge")
PURGE_TIMEOUT = env_float("PURGE_TIMEOUT", 2)
PURGE_BATCH_SECONDS = env_float("PURGE_BATCH_SECONDS", 0.2)
# A purge task that fails is queued again PURGE_RETRY_SECONDS later, then twice as long each
# time up to a minute, for PURGE_ATTEMPTS attempts in all (about 15 minutes of a CDN outage).
PURGE_ATTEMPTS = env_int("PURGE_ATTEMPTS", 20)
PURGE_RETRY_SECONDS = env_float("PURGE_RETRY_SECONDS", 2)

# Background work (posts/tasks.py, docs/deploy.md): Django's tasks run at once in the process
# that queues them (immediate), or are rows in the database that `manage.py run_worker` runs
# (django-tasks-db), written by the transaction of the change they follow (CDN purges: right
# after its commit, once the new cache versions are in Redis).
TASKS_BACKEND = env_choice("TASKS_BACKEND", "immediate", ("immediate", "database"))
TASKS = {
    "default": {
        "BACKEND": {
            "immediate": "django.tasks.backends.immediate.ImmediateBackend",
            "database": "django_tasks_db.DatabaseBackend",
        }[TASKS_BACKEND],
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# Static files are served by the app (WhiteNoise) from STATIC_ROOT, which `manage.py
# collectstatic` fills: each name carries a hash of its content (site.3f2a….css), with a gzip
# and a Brotli copy, and is sent with ten years' max-age, immutable. Pages link the hashed
# names, so a change is a new address and no cache needs purging. Without a manifest
# (development, tests, or STATIC_MANIFEST=0) names are plain and files come from static/ as
# they are.
STATIC_MANIFEST = env_bool("STATIC_MANIFEST", default=not (DEBUG or TESTING))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage",
    },
}
# Without collectstatic, serve static/ directly. Hashed names get WhiteNoise's ten years and
# `immutable`; a plain name (an old link) its default minute.
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST

LOGIN_URL = "admin:login"
# Where a login goes when its ?next= is refused (another site's address): the admin, not
# Django's /accounts/profile/, which does not exist here.
LOGIN_REDIRECT_URL = "admin:index"
# A form posted with a missing or stale CSRF token: the site's 403 page (Django's own has an
# inline style, which the Content Security Policy blocks).
CSRF_FAILURE_VIEW = "alphanode.security.csrf_failure"

# Proxies in front of the app that append the client's address to X-Forwarded-For (Varnish:
# 1; a CDN and Varnish: 2). Only then is that header, and the proxy's X-Request-ID, trusted.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# Failed logins (django-axes, alphanode/security.py, docs/operations.md): an account is locked
# at one address after LOGIN_FAILURE_LIMIT failures there, for LOGIN_LOCKOUT_MINUTES.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out login before the password
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 15)
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 20)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = datetime.timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True  # a successful login forgets that account's failures there
AXES_CLIENT_IP_CALLABLE = "alphanode.security.client_ip"
AXES_LOCKOUT_TEMPLATE = "locked_out.html"
AXES_VERBOSE = False  # alphanode.auth logs each failure, lockout and login in one line

POSTS_PER_PAGE = env_int("POSTS_PER_PAGE", 20)
SIMILAR_POSTS_COUNT = 6
# Similar posts are precomputed (posts/derived.py, docs/queries.md): each post stores a few
# more than it shows, so unpublishing one still leaves a full list; candidates are the newest
# SIMILAR_CANDIDATES_PER_TAG published posts of each of its SIMILAR_RAREST_TAGS rarest tags.
SIMILAR_POSTS_STORED = env_int("SIMILAR_POSTS_STORED", 8)
SIMILAR_RAREST_TAGS = env_int("SIMILAR_RAREST_TAGS", 3)
SIMILAR_CANDIDATES_PER_TAG = env_int("SIMILAR_CANDIDATES_PER_TAG", 10)
# Search (posts/searching.py): only the newest this many matches of a query are ranked.
SEARCH_WINDOW = env_int("SEARCH_WINDOW", 200)
# ...found band by band: the newest 2,000 published documents, then down to the newest 20,000,
# then 200,000, then the rest, each band with its own full-text index (docs/queries.md).
SEARCH_BANDS = env_ints("SEARCH_BANDS", (2_000, 20_000, 200_000))
if len(SEARCH_BANDS) != 3 or not 0 < SEARCH_BANDS[0] < SEARCH_BANDS[1] < SEARCH_BANDS[2]:
    raise ImproperlyConfigured(
        f"SEARCH_BANDS={','.join(map(str, SEARCH_BANDS))}: expected three growing numbers of "
        "posts, e.g. 2000,20000,200000 (the migrations made four bands' indexes)."
    )
# Feeds (posts/feeds.py) and sitemaps (posts/sitemaps.py, at most 50,000 URLs per file).
FEED_SIZE = env_int("FEED_SIZE", 20)
SITEMAP_SECTION_SIZE = env_int("SITEMAP_SECTION_SIZE", 50_000)
# The stacks the header links to, by tag name (of kind stack; check that each exists, the header
# does not query). From settings rather than counted per request: the header is on every page.
HEADER_STACKS = env_list(
    "HEADER_STACKS",
    "python services,django,react frontends,postgresql,kubernetes clusters,go microservices",
)
# The filter bar of lists and search (posts/filters.py): the values it offers, by tag name for
# stacks and tools; any tag can still be filtered by from a link.
FILTER_STACKS = env_list("FILTER_STACKS", ",".join(HEADER_STACKS))
FILTER_TOOLS = env_list(
    "FILTER_TOOLS", "pytest,django orm,vite,psql,kubectl,docker compose,cargo,terraform"
)
FILTER_LANGUAGES = env_list(
    "FILTER_LANGUAGES", "python,javascript,typescript,php,sql,go,rust,java,yaml,bash"
)
SIMILAR_BATCH_SIZE = 1000  # posts per statement when lists are recomputed in bulk
# import_posts: threads writing batches, each on its own connection, while the main thread
# parses (PostgreSQL only); 0 writes on the main thread.
IMPORT_WORKERS = env_int("IMPORT_WORKERS", 2)

# Security. Behind a TLS-terminating CDN/proxy, SECURE_PROXY_SSL_HEADER trusts its header.
# Tests speak plain HTTP to the test client; production redirects to HTTPS unless told not to.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not (DEBUG or TESTING))
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # probed over plain HTTP by the load balancer and CDN
if env_bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
# Cookies only over HTTPS, except in development (and `make demo`, which serves plain HTTP).
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "img-src": [CSP.SELF, "https:", "data:"],
    "style-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}

# What each request cost (alphanode/observability.py): the Server-Timing header on every
# response, and failing a request that runs more queries than its view's @query_budget.
SERVER_TIMING = env_bool("SERVER_TIMING", default=DEBUG)
QUERY_BUDGET_STRICT = env_bool("QUERY_BUDGET_STRICT", default=TESTING)

LOG_FORMAT = env_choice("LOG_FORMAT", "text", ("text", "json"))
LOG_FORMATTERS = {
    "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    # One JSON object per line, with the request fields (method, path, status, ...) as keys.
    "json": {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": LOG_FORMATTERS[LOG_FORMAT]},
    "filters": {
        "request_id": {"()": "alphanode.observability.RequestIdFilter"},
        "without_traceback": {"()": "alphanode.observability.WithoutTraceback"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "line",
            "filters": ["request_id", "without_traceback"],
        },
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    # Django's own loggers already print to the console; without this each line shows twice.
    "loggers": {
        "django": {"handlers": [], "propagate": True},
        # The pool logs each failed reconnection while the database is away (two lines every
        # second or so); alphanode.database logs the outage once, and its end.
        "psycopg.pool": {"level": "ERROR"},
        # django-axes' notes on its own work; alphanode.auth logs each failure and lockout.
        "axes": {"level": "WARNING"},
    },
}
