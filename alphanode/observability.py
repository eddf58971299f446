"""What each request cost, on every response and in one log line.

RequestCostMiddleware counts the SQL statements of a request with a connection
`execute_wrapper` (a counter, not the debug toolbar), times the request, and reports both:

- a `Server-Timing` header: `db;dur=<ms>;desc="<N> queries", cache;desc="hit|miss|bypass",
  app;dur=<ms>` (on with DEBUG, otherwise with the SERVER_TIMING setting);
- one log line per request on the `alphanode.requests` logger (JSON with LOG_FORMAT=json);
- a warning on `alphanode.budget` when a view ran more queries than the budget declared next to
  it with @query_budget; with QUERY_BUDGET_STRICT (on in tests) the request fails instead, so a
  test fails when any page exceeds its budget.
"""

import contextvars
import logging
import re
import time
import uuid
from contextlib import ExitStack

from django.conf import settings
from django.db import connections
from django.utils.functional import SimpleLazyObject, empty

request_log = logging.getLogger("alphanode.requests")
budget_log = logging.getLogger("alphanode.budget")

REQUEST_ID_HEADER = "X-Request-ID"
# A request id passed in by the CDN or load balancer is kept when it is this plain (and the
# proxies in front are trusted: TRUSTED_PROXY_COUNT).
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# The id of the request being served, for every log line written meanwhile (RequestIdFilter).
current_request_id = contextvars.ContextVar("current_request_id", default="")


class QueryBudgetExceeded(AssertionError):
    """A view ran more SQL queries than its @query_budget (raised with QUERY_BUDGET_STRICT)."""


def query_budget(queries: int):
    """Declare the most SQL queries a view may run per request (checked by the middleware)."""

    def declare(view):
        view.query_budget = queries
        return view

    return declare


class QueryCounter:
    """An execute_wrapper that counts statements and adds up their time."""

    def __init__(self):
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            self.seconds += time.perf_counter() - started


def request_id(request) -> str:
    """Return the request's id: the one a trusted proxy sent when it is plain, else a new one."""
    given = request.headers.get(REQUEST_ID_HEADER, "") if settings.TRUSTED_PROXY_COUNT else ""
    return given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def known_user_id(request):
    """The id of the request's user if serving it loaded the user; None otherwise. Never
    loads it itself (that would read the session after the response was made)."""
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        user = None if user._wrapped is empty else user._wrapped
    return getattr(user, "pk", None)


class RequestIdFilter(logging.Filter):
    """Give every log record the id of the request being served ("" outside requests)."""

    def filter(self, record):
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id.get()
        return True


class WithoutTraceback(logging.Filter):
    """Drop the traceback of django.security's records: a bad Host header or a refused admin
    lookup is the client's mistake, logged as one line, not a bug with a stack to read."""

    def filter(self, record):
        if record.name.startswith("django.security"):
            record.exc_info = record.exc_text = None
        return True


class RequestCostMiddleware:
    """Count and time each request; report it in Server-Timing, the log, and against budgets."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        request.id = request_id(request)
        request.cache_status = "bypass"  # set by the page cache on the pages it serves
        request.query_budget = None
        counter = QueryCounter()
        token = current_request_id.set(request.id)
        try:
            with ExitStack() as stack:
                for connection in connections.all():
                    stack.enter_context(connection.execute_wrapper(counter))
                response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        app_ms = (time.perf_counter() - started) * 1000
        db_ms = counter.seconds * 1000
        response.headers[REQUEST_ID_HEADER] = request.id
        if settings.SERVER_TIMING:
            response.headers["Server-Timing"] = (
                f'db;dur={db_ms:.1f};desc="{counter.count} queries", '
                f'cache;desc="{request.cache_status}", app;dur={app_ms:.1f}'
            )
        fields = {
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(app_ms, 1),
            "db_ms": round(db_ms, 1),
            "queries": counter.count,
            "cache": request.cache_status,
            "request_id": request.id,
            "user_id": known_user_id(request),
        }
        request_log.info(
            "%s %s %s %.1fms %d queries cache=%s",
            request.method, request.path, response.status_code, app_ms, counter.count,
            request.cache_status, extra=fields,
        )
        budget = request.query_budget
        if budget is not None and counter.count > budget:
            message = (
                f"{request.method} {request.path} ran {counter.count} SQL queries, over its "
                f"view's budget of {budget} (@query_budget)"
            )
            budget_log.warning(message, extra={**fields, "budget": budget})
            if settings.QUERY_BUDGET_STRICT:
                raise QueryBudgetExceeded(message)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        request.query_budget = getattr(view_func, "query_budget", None)
