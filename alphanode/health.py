"""Health checks for load balancers and the CDN's backend probe, and the favicon: answers that
touch neither the database nor the cache."""

import functools

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache

from alphanode.observability import query_budget


@query_budget(0)
@never_cache
def healthz(request):
    """Say the process is alive and serving; touches neither the database nor the cache."""
    return HttpResponse("ok\n", content_type="text/plain; charset=utf-8")


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
