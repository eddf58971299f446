"""Health checks for load balancers and the CDN's backend probe, the pages for a server error
and for the database being away, and the favicon (docs/operations.md)."""

import functools
import logging
import sys

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse
from django.template import loader
from django.utils.cache import add_never_cache_headers
from django.views.decorators.cache import never_cache

from alphanode import database
from alphanode.observability import query_budget

log = logging.getLogger("alphanode.health")


@query_budget(0)
@never_cache
def healthz(request):
    """Say the process is alive and serving; touches neither the database nor the cache."""
    return HttpResponse("ok\n", content_type="text/plain; charset=utf-8")


def check_database():
    """Take a connection and run SELECT 1, waiting at most READY_TIMEOUT seconds."""
    pool = connection.pool if connection.vendor == "postgresql" else None
    if pool is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return
    pool.open()  # as Django does on its first connection; nothing once open
    with pool.connection(timeout=settings.READY_TIMEOUT) as conn:
        conn.execute("SELECT 1")


def check_cache():
    """Write and read a key; a Redis call gives up after REDIS_SOCKET_TIMEOUT seconds."""
    cache.set("readyz", "ok", timeout=10)
    if cache.get("readyz") != "ok":
        raise RuntimeError("a value written was not read back")


READY_CHECKS = {"database": check_database, "cache": check_cache}


@query_budget(1)  # SQLite: SELECT 1 through Django; PostgreSQL: through the pool, uncounted
@never_cache
def readyz(request):
    """Say whether this process can serve pages: the database and the cache answer in time.

    200 with "database: ok" and "cache: ok", or 503 naming the part that failed (why is
    logged). A load
    balancer sends traffic only to instances whose /readyz is 200 (docs/operations.md).
    """
    lines, failed = [], False
    for part, check in READY_CHECKS.items():
        try:
            check()
        except Exception as error:  # any failure is the answer, not an error of this page
            failed = True
            lines.append(f"{part}: unavailable")
            # Why, in the log only: a driver's message can name internal hosts and users.
            log.warning("readyz: the %s check failed: %s", part, database.first_line(error))
        else:
            lines.append(f"{part}: ok")
    response = HttpResponse("\n".join(lines) + "\n", status=503 if failed else 200,
                            content_type="text/plain; charset=utf-8")
    response._has_been_logged = True  # the line above says why, not Django's "Service Unavailable"
    return response


def error_page(request, template, status, **context):
    """Render an error page from templates/ without touching the database or the session.

    The template is rendered without the request's context processors (their messages read the
    session, which is in the database); base.html gets the request and no messages.
    """
    body = loader.get_template(template).render({"request": request, "messages": (), **context})
    response = HttpResponse(body, status=status)
    add_never_cache_headers(response)
    return response


def server_error(request):
    """handler500: the database away is a 503 with Retry-After and one log line per outage
    (alphanode/database.py); any other error is the site's 500 page, logged with its
    traceback by Django as usual."""
    error = sys.exc_info()[1]
    if database.is_unavailable(error):
        database.outage.failed(error)
        response = error_page(request, "503.html", 503, part="database")
        response.headers["Retry-After"] = str(settings.UNAVAILABLE_RETRY_AFTER)
        response._has_been_logged = True  # the outage's own line instead of a traceback each
        return response
    return error_page(request, "500.html", 500)


FAVICON = settings.BASE_DIR / "static" / "favicon.ico"


@functools.cache  # read once per process
def favicon_bytes():
    return FAVICON.read_bytes()


@query_budget(0)
def favicon(request):
    """/favicon.ico, which browsers ask for whatever the page links: the site's icon, served
    by the app so that it needs no static file server, and cached for a day."""
    response = HttpResponse(favicon_bytes(), content_type="image/x-icon")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
