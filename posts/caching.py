"""Reader pages cached in Redis with exact invalidation, and the HTTP caching the CDN follows.

Every cacheable page lists the content it shows as *content keys* (docs/caching.md):

    post:<id>       the post's own article page (its body, meta box, flags)
    card:<id>       the post as other pages show it: a card on a list, an entry among similar
    tag:<id>        a tag's name and address, wherever it is shown
    tag-list:<id>   which posts a tag page lists, and its count
    list:home       which posts the home page lists, and the total
    search          which posts any search or filtered list finds (every write of posts)
    indexable       which posts the feeds and sitemaps list (writes and review actions)
    tag-index       which tags /tags/ and the tag sitemap list, and their counts

Each key has a *version* in the cache, replaced by a new random value whenever the content
changes (invalidate(), after the write's transaction commits). A stored page records the
versions its keys had when it was rendered, and is served only while they all still match:
invalidating a key makes stale exactly the pages that show it, and no other. The same keys
are sent to the CDN (Surrogate-Key, Cache-Tag, xkey) and purged there (posts/purging.py).

A page rendered while an invalidation ran might show what was just replaced: the *epoch*
version changes with every invalidation, and a page whose render saw it change is served but
not stored.

Redis being down or frozen never fails a page: every cache call is bounded by the socket
timeout, and after a failure the page cache is skipped for CACHE_RETRY_SECONDS (pages render
from the database), with one log line per outage interval.
"""

import datetime
import hashlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.http import HttpResponse
from django.utils import timezone
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import http_date, parse_http_date_safe

from posts import purging  # which imports this module only inside its functions

log = logging.getLogger("alphanode.cache")

VERSION_PREFIX = "content-version:"
EPOCH = VERSION_PREFIX + "*"
PAGE_PREFIX = "page:1:"  # the number changes with StoredPage, so old entries are not read
# The query parameters reader pages read (pagination); others (utm_source=...) change nothing
# on a page, and must not make a copy of it each.
PAGE_PARAMETERS = ("after", "before", "page", "q", "stack", "tool", "difficulty", "language")
HOME_LIST = "list:home"
SEARCH = "search"  # every search page: any write may change what matches
# Feeds and sitemaps: they list the indexable posts, which any write or review may change.
INDEXABLE = "indexable"
READER_METHODS = ("GET", "HEAD")  # what a reader page answers
TAG_INDEX = "tag-index"  # /tags/: its counts move with any tag's
# The response headers a stored page keeps; the middleware adds the rest on every response.
STORED_HEADERS = (
    "Content-Type", "Content-Language", "X-Robots-Tag", "Cache-Control", "ETag",
    "Last-Modified", "Surrogate-Key", "Cache-Tag", "xkey",
)


def post_key(pk) -> str:
    return f"post:{pk}"


def card_key(pk) -> str:
    return f"card:{pk}"


def tag_key(pk) -> str:
    return f"tag:{pk}"


def tag_list_key(pk) -> str:
    return f"tag-list:{pk}"


def depends_on(request, *keys) -> None:
    """Record that the page being rendered for `request` shows the content of `keys`."""
    found = getattr(request, "content_keys", None)
    if found is not None:
        found.update(keys)


# Invalidation.


class PendingRefresh:
    """The keys a transaction changed, refreshed once when it commits (dropped if it rolls back)."""

    def __init__(self, keys):
        self.keys = set(keys)
        self.done = False

    def __call__(self):
        self.done = True
        refresh(self.keys)
        if settings.DATABASE_REPLICA_URLS:
            refresh_once_replicas_settle(self.keys)


def invalidate(keys) -> None:
    """Make stale every cached page showing any of `keys`, once the current transaction commits
    (at once outside one), here and at the CDN: one refresh per transaction, however many
    writes it made."""
    keys = set(keys)
    if not keys:
        return
    for _, callback, _ in connection.run_on_commit:
        if isinstance(callback, PendingRefresh) and not callback.done:
            callback.keys |= keys
            return
    transaction.on_commit(PendingRefresh(keys))


def refresh(keys) -> None:
    """Give each of `keys` a new version now, and have the CDN purge them."""
    if not bump_versions(keys):
        purging.retry_versions(keys)  # Redis is unreachable: try again from the purge thread
    purging.purge(keys)


def refresh_once_replicas_settle(keys) -> None:
    """Refresh `keys` again once every replica in use has replayed the write (at most
    REPLICA_SETTLE_SECONDS from now): a reader's page rendered meanwhile from a replica still
    showing the old content was cached under the new versions, here and at the CDN.

    A task for the worker when the backend can defer one; otherwise a timer in this process.
    """
    from posts.tasks import refresh_keys  # which imports this module

    delay = settings.REPLICA_SETTLE_SECONDS
    if refresh_keys.get_backend().supports_defer:
        run_after = timezone.now() + datetime.timedelta(seconds=delay)
        try:
            refresh_keys.using(run_after=run_after).enqueue(sorted(keys))
            return
        except DatabaseError as error:  # the change is committed: its refresh must not fail it
            log.warning("could not queue the refresh of %d keys (%s); timing it here",
                        len(keys), error)
    timer = threading.Timer(delay, refresh, args=(set(keys),))
    timer.daemon = True
    timer.start()


def bump_versions(keys, *, retrying=False) -> bool:
    """Replace the versions of `keys` and the epoch; return whether the cache took them.

    A retry (the purge thread's) asks Redis even while pages leave it alone after a failure:
    it is what makes the pages shown before the outage stale once Redis answers again.
    """
    token = secrets.token_hex(8)
    versions = {VERSION_PREFIX + key: token for key in keys}
    versions[EPOCH] = token
    if not retrying:
        return guarded(lambda: cache.set_many(versions, timeout=None) or True, False)
    try:
        cache.set_many(versions, timeout=None)
    except Exception:  # still down: the purge thread tries again
        return False
    return True


# Talking to Redis without depending on it.


@dataclass
class Outage:
    """When the cache last failed, so a dead Redis costs one timeout per interval, not per call."""

    until: float = 0.0
    logged_at: float = -1e9


outage = Outage()


def cache_down() -> bool:
    """Whether the cache failed moments ago and is being left alone, or has not yet taken the
    new versions of content this process changed (its stored pages are not to be trusted)."""
    return time.monotonic() < outage.until or purging.versions_waiting()


def guarded(call, default):
    """Return call(), or `default` when the cache fails or failed moments ago."""
    now = time.monotonic()
    if now < outage.until:
        return default
    try:
        return call()
    except Exception as error:  # redis-py and django-redis raise several; none may fail a page
        outage.until = now + settings.CACHE_RETRY_SECONDS
        if now - outage.logged_at >= settings.CACHE_OUTAGE_LOG_SECONDS:
            outage.logged_at = now
            log.error(
                "cache unreachable (%s: %s): pages render from the database, retrying every "
                "%ss", type(error).__name__, error, settings.CACHE_RETRY_SECONDS,
            )
        return default


# Serving pages.


class PrivateByDefaultMiddleware:
    """Mark every response that did not say how it may be cached `private, no-store`: staff
    pages, forms, redirects after a POST. Reader pages say it themselves (cached_page)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        cache_control = response.headers.get("Cache-Control", "")
        if not cache_control:
            patch_cache_control(response, private=True, no_store=True)
        elif "public" in cache_control and (response.cookies or has_vary_cookie(response)):
            # The middleware after the view set a cookie (e.g. a fresh CSRF token for a
            # malformed one): this response is the reader's own, not one to share.
            unmark_public(response, "private, no-store")
        return response


def has_vary_cookie(response) -> bool:
    return "cookie" in response.headers.get("Vary", "").lower()


@dataclass
class StoredPage:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]
    keys: tuple[str, ...]
    versions: tuple[str | None, ...]

    def response(self) -> HttpResponse:
        response = HttpResponse(self.body, status=self.status)
        for name, value in self.headers:
            response.headers[name] = value
        return response


def page_key(request) -> str:
    """Return the cache key of the page `request` asks for: its host, path and pagination."""
    parameters = [
        (name, value) for name in PAGE_PARAMETERS for value in request.GET.getlist(name)
    ]
    address = f"{request.get_host()}{request.path}?{parameters}"
    return PAGE_PREFIX + hashlib.blake2b(address.encode(), digest_size=16).hexdigest()


def is_reader_request(request) -> bool:
    """Whether the request may be served a shared page: a GET or HEAD without a session, and
    without messages waiting to be shown to this browser."""
    return (
        request.method in ("GET", "HEAD")
        and settings.SESSION_COOKIE_NAME not in request.COOKIES
        and CookieStorage.cookie_name not in request.COOKIES
    )


def cached_page(view):
    """Serve `view`'s pages to readers from the page cache and mark them cacheable by the CDN.

    Staff, anyone with a session, and non-GET requests get a fresh page marked private.
    The view names the content it shows with depends_on().
    """

    @wraps(view)
    def serve(request, *args, **kwargs):
        if not is_reader_request(request):
            request.cache_status = "bypass"
            response = view(request, *args, **kwargs)
            patch_cache_control(response, private=True, no_store=True)
            return response
        # No session cookie: the reader is anonymous, and nothing on the page depends on a
        # cookie (reading the session would add Vary: Cookie for nothing).
        request.user = AnonymousUser()
        key = page_key(request)
        use_cache = settings.PAGE_CACHE and not cache_down()
        found = guarded(lambda: cache.get_many([key, EPOCH]), {}) if use_cache else {}
        page, epoch = found.get(key), found.get(EPOCH)
        if page is not None and is_current(page):
            request.cache_status = "hit"
            return conditional(request, page.response())
        # Asked again: the look-up itself may just have found Redis gone.
        request.cache_status = "miss" if use_cache and not cache_down() else "bypass"
        request.content_keys = set()
        response = view(request, *args, **kwargs)
        if hasattr(request, "session") and not request.session.modified:
            # There is no session to read: a page that looked still depends on no cookie.
            request.session.accessed = False
        if response.status_code != 200 or response.streaming or response.cookies:
            patch_cache_control(response, no_cache=True)
            return response
        mark_public(response, request.content_keys)
        if use_cache and not store(key, response, request.content_keys, epoch):
            # What it shows may already have been replaced: the CDN must not keep it either.
            unmark_public(response)
        return conditional(request, response)

    serve.allowed_methods = READER_METHODS  # alphanode.methods answers the others
    return serve


def is_current(page: StoredPage) -> bool:
    """Whether no content on `page` changed since it was stored."""
    if not page.keys:
        return True
    found = guarded(lambda: cache.get_many([VERSION_PREFIX + key for key in page.keys]), None)
    if found is None:
        return False
    return all(
        found.get(VERSION_PREFIX + key) == version
        for key, version in zip(page.keys, page.versions, strict=True)
    )


def store(key: str, response: HttpResponse, content_keys, epoch_at_start) -> bool:
    """Keep `response` under `key` with the versions its content keys have now; return False
    when an invalidation ran during the render (what it showed may be stale already)."""
    keys = tuple(sorted(content_keys))
    names = [VERSION_PREFIX + k for k in keys]
    found = guarded(lambda: cache.get_many([*names, EPOCH]), None)
    if found is None:
        return True  # the cache is down: nothing stored, nothing known against the page
    if found.get(EPOCH) != epoch_at_start:
        return False
    missing = [name for name in names if name not in found]
    if missing:
        # A key never changed since Redis started (or evicted) gets a version now: a page
        # recorded against "no version" would match again once a later version is lost.
        def create():
            for name in missing:
                cache.add(name, secrets.token_hex(8), timeout=None)
            return cache.get_many(missing)

        created = guarded(create, None)
        if created is None or len(created) != len(missing):
            return True
        found.update(created)
    page = StoredPage(
        status=response.status_code,
        body=response.content,
        headers=tuple((h, response.headers[h]) for h in STORED_HEADERS if h in response.headers),
        keys=keys,
        versions=tuple(found.get(name) for name in names),
    )
    guarded(lambda: cache.set(key, page, timeout=settings.PAGE_CACHE_TIMEOUT), None)
    return True


def mark_public(response: HttpResponse, content_keys) -> None:
    """Add the headers that let browsers and the CDN keep the page, and purge it by key."""
    patch_cache_control(
        response,
        public=True,
        max_age=settings.CACHE_MAX_AGE,
        s_maxage=settings.CACHE_S_MAXAGE,
        stale_while_revalidate=settings.CACHE_STALE_WHILE_REVALIDATE,
        stale_if_error=settings.CACHE_STALE_IF_ERROR,
    )
    digest = hashlib.blake2b(response.content, digest_size=16).hexdigest()
    response.headers["ETag"] = f'"{digest}"'
    response.headers["Last-Modified"] = http_date(time.time())
    keys = " ".join(sorted(content_keys))
    if keys:
        # Fastly reads Surrogate-Key, Cloudflare Cache-Tag (comma-separated), Varnish xkey.
        response.headers["Surrogate-Key"] = keys
        response.headers["Cache-Tag"] = keys.replace(" ", ",")
        response.headers["xkey"] = keys


KEY_HEADERS = ("Surrogate-Key", "Cache-Tag", "xkey")


def unmark_public(response: HttpResponse, cache_control: str = "no-cache") -> None:
    """Take back mark_public(): the page may be shown, not kept, and names no content keys."""
    response.headers["Cache-Control"] = cache_control
    for header in KEY_HEADERS:
        del response.headers[header]


def conditional(request, response: HttpResponse) -> HttpResponse:
    """Return a 304 when the request already holds this version of the page, else `response`."""
    last_modified = response.headers.get("Last-Modified")
    return get_conditional_response(
        request,
        etag=response.headers.get("ETag"),
        last_modified=parse_http_date_safe(last_modified) if last_modified else None,
        response=response,
    )
