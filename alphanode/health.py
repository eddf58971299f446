"""Health checks for load balancers and the CDN's backend probe."""

from django.http import HttpResponse
from django.views.decorators.cache import never_cache

from alphanode.observability import query_budget


@query_budget(0)
@never_cache
def healthz(request):
    """Say the process is alive and serving; touches neither the database nor the cache."""
    return HttpResponse("ok\n", content_type="text/plain; charset=utf-8")
