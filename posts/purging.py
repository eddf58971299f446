"""Purging changed content at the CDN by surrogate key: batched, after commit, off the request.

posts/caching.py calls purge() with the content keys a committed write changed, once their new
versions are in Redis (a purge sent before would let the CDN fetch the old page again).

Where tasks go to a worker (TASKS_BACKEND=database), purge() queues a `purge_keys` task
(posts/tasks.py): the worker sends it and, when the CDN fails, queues it again later with a
growing delay, up to PURGE_ATTEMPTS attempts. Otherwise a background thread per process
gathers the keys for PURGE_BATCH_SECONDS and sends them in as few requests as fit a header, so
an editor's request never waits on the CDN; a purge that fails or times out is logged and
retried with a growing delay. Either way a version change Redis did not take is retried by
this process's thread (it decides whether this process may trust its page cache), and the
purge that follows it is sent from there.

PURGER (setting) picks what a purge does:
    none   nothing (no CDN in front)
    log    one log line per batch, listing the keys
    http   `PURGE <url>` with the keys in PURGE_KEY_HEADER to each of PURGE_URLS, as
           deploy/varnish/default.vcl expects (xkey); see docs/caching.md for Fastly/Cloudflare
"""

import atexit
import logging
import threading
import time
import urllib.request

from django.conf import settings
from django.db import DatabaseError, transaction
from django.tasks import default_task_backend

log = logging.getLogger("alphanode.purge")

HEADER_LIMIT = 4000  # characters of keys per request: under every proxy's header size limit
MAX_DELAY = 60.0  # seconds between retries, at most


def purge(keys) -> None:
    """Have the CDN drop every page carrying any of `keys`: by a task once the current
    transaction commits, or soon from the purge thread (see above)."""
    if settings.PURGER == "none" or not keys:
        return
    if purges_queued():
        pending = sorted(keys)
        transaction.on_commit(lambda: enqueue_purge(pending))
    else:
        queue.add(keys, to_purge=True)


def purges_queued() -> bool:
    """Whether purges are tasks for the worker: only a backend that can defer a task can retry
    one later (the immediate one would also make the editor's request wait on the CDN)."""
    return default_task_backend.supports_defer


def enqueue_purge(keys) -> None:
    """Queue a purge_keys task for `keys`; if the queue cannot take it, send from the thread."""
    from posts.tasks import purge_keys  # which imports this module

    try:
        purge_keys.enqueue(list(keys))
    except DatabaseError as error:  # the change is committed: its purge must not be lost
        log.warning("could not queue the purge of %d keys (%s); sending it from this process",
                    len(keys), error)
        queue.add(keys, to_purge=True)


def retry_versions(keys) -> None:
    """Give `keys` new cache versions again later: Redis did not take them just now."""
    queue.add(keys, to_purge=False)


def versions_waiting() -> bool:
    """Whether this process has changed content whose new versions Redis has not taken yet."""
    return bool(queue.to_version)


def flush(timeout: float | None = None) -> bool:
    """Send what is waiting now, on this thread; return whether nothing is left waiting."""
    return queue.send(timeout)


def chunks(keys, limit=HEADER_LIMIT):
    """Yield space-separated runs of `keys`, each at most `limit` characters."""
    run, size = [], 0
    for key in sorted(keys):
        if run and size + 1 + len(key) > limit:
            yield " ".join(run)
            run, size = [], 0
        run.append(key)
        size += len(key) + (1 if size else 0)
    if run:
        yield " ".join(run)


def send_purges(keys, timeout) -> None:
    """Purge `keys` the way PURGER says; raise OSError when a CDN did not take them."""
    if settings.PURGER == "log":
        log.info("purge %d keys: %s", len(keys), " ".join(sorted(keys)))
        return
    for url in settings.PURGE_URLS:
        for header in chunks(keys):
            request = urllib.request.Request(
                url, method="PURGE", headers={settings.PURGE_KEY_HEADER: header}
            )
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()


class PurgeQueue:
    """Keys waiting to be purged (and versions waiting to be set), and the thread sending them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sending = threading.Lock()  # one send at a time: flush() waits for the thread's
        self.wake = threading.Condition(self.lock)
        self.to_purge: set[str] = set()
        self.to_version: set[str] = set()
        self.delay = 0.0  # after a failure: how long to wait before trying again
        self.thread: threading.Thread | None = None

    def add(self, keys, *, to_purge: bool) -> None:
        with self.lock:
            (self.to_purge if to_purge else self.to_version).update(keys)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self.run, name="purge", daemon=True)
                self.thread.start()
            self.wake.notify()

    def run(self) -> None:
        while True:
            with self.lock:
                while not (self.to_purge or self.to_version):
                    self.wake.wait()
            time.sleep(max(self.delay, settings.PURGE_BATCH_SECONDS))
            self.send(settings.PURGE_TIMEOUT)

    def send(self, timeout=None) -> bool:
        with self.sending:
            return self.send_waiting(timeout or settings.PURGE_TIMEOUT)

    def send_waiting(self, timeout) -> bool:
        from posts.caching import bump_versions

        with self.lock:
            to_purge, self.to_purge = self.to_purge, set()
            to_version, self.to_version = self.to_version, set()
        failed = False
        if to_version:
            if bump_versions(to_version, retrying=True):
                # A CDN may have fetched the old page from Redis meanwhile: purge it again.
                if settings.PURGER != "none":
                    to_purge |= to_version
            else:
                failed = True
                with self.lock:
                    self.to_version |= to_version
        if to_purge:
            try:
                send_purges(to_purge, timeout)
            except Exception as error:  # time-outs, refusals, broken replies: all retried
                failed = True
                with self.lock:
                    self.to_purge |= to_purge
                log.warning(
                    "CDN purge of %d keys failed (%s); retrying in %.0fs",
                    len(to_purge), error, min(max(self.delay * 2, 1.0), MAX_DELAY),
                )
        # Versions Redis did not take are retried as often as pages retry Redis; the CDN, with a
        # growing delay.
        delay = min(max(self.delay * 2, 1.0), MAX_DELAY) if failed else 0.0
        if self.to_version:
            delay = min(delay, settings.CACHE_RETRY_SECONDS)
        self.delay = delay
        with self.lock:
            return not (self.to_purge or self.to_version)


queue = PurgeQueue()


@atexit.register
def flush_at_exit() -> None:
    """A command that changed posts (import_posts) purges before its process ends."""
    if queue.thread is None:
        return  # nothing was ever queued in this process
    if not flush(timeout=settings.PURGE_TIMEOUT):
        log.error(
            "exiting with %d content keys not purged at the CDN and %d whose cache versions "
            "Redis did not take: their pages may stay stale until they expire "
            "(PAGE_CACHE_TIMEOUT in Redis, CACHE_S_MAXAGE at the CDN)",
            len(queue.to_purge), len(queue.to_version),
        )
