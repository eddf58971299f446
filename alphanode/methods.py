"""Answer a request whose method a view does not serve before any other middleware does.

A view declares the methods it serves in its `allowed_methods` attribute (posts.caching's
cached_page does for every reader page: GET and HEAD). OPTIONS gets an empty 200 with `Allow`;
any other method (TRACE, PUT, DELETE, POST) a 405 with `Allow`, rather than the full page or
the CSRF failure page. Views without the attribute decide for themselves.
"""

from django.http import HttpResponse, HttpResponseNotAllowed


class AllowedMethodsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        allowed = getattr(view_func, "allowed_methods", None)
        if allowed is None or request.method in allowed:
            return None
        if request.method == "OPTIONS":
            response = HttpResponse(status=200)
            response.headers["Allow"] = ", ".join((*allowed, "OPTIONS"))
            return response
        response = HttpResponseNotAllowed(allowed)
        response.headers["Allow"] = ", ".join((*allowed, "OPTIONS"))
        return response
