"""Work done outside the request that caused it, as Django tasks (docs/deploy.md, "Background
tasks").

TASKS_BACKEND picks where they run: `immediate` (the default) runs each at once in the process
that enqueues it; `database` (django-tasks-db) stores it as a row, in the enqueuing
transaction, for `manage.py run_worker` to run. A worker killed mid-task runs that task again
when it starts (run_worker), so every task here is idempotent: its docstring says why running
it twice changes nothing.

    purge_keys            the CDN purge of a change, queued right after its commit, behind its
                          new cache versions (posts/purging.py); retried with a growing delay,
                          since django-tasks-db retries nothing itself
    refresh_keys          a change's cache versions and purge once more, after the replicas
                          have replayed it (posts/caching.py)
    refill_similar_lists  the similar lists that named posts taken off the site (a bulk
                          unpublish fans out to every list naming one of them)
    fold_view_counts      Redis's view counts into the posts (posts/viewcounts.py)
    release_scheduled     the cached pages that scheduled posts join once due (posts/derived.py)
"""

import datetime
import http.client
import logging

from django.conf import settings
from django.db import transaction
from django.tasks import task
from django.utils import timezone

from posts import derived, purging, viewcounts

log = logging.getLogger("alphanode.purge")


class PurgeFailed(Exception):
    """The CDN did not take a purge in PURGE_ATTEMPTS attempts."""


def retry_delay(attempt: int) -> float:
    """Return the seconds to wait after failed attempt `attempt` (1, 2, ...): doubling from
    PURGE_RETRY_SECONDS, at most purging.MAX_DELAY."""
    return min(settings.PURGE_RETRY_SECONDS * 2 ** (attempt - 1), purging.MAX_DELAY)


@task
def purge_keys(keys: list[str], attempt: int = 1) -> dict:
    """Have the CDN drop every page carrying any of `keys`; on failure, enqueue this again with
    a growing delay, up to PURGE_ATTEMPTS attempts, then raise PurgeFailed.

    Idempotent: purging a key twice only drops a page the CDN then fetches again.
    """
    try:
        purging.send_purges(set(keys), settings.PURGE_TIMEOUT)
    except (OSError, http.client.HTTPException) as error:  # refused, timed out, a broken reply
        if attempt >= settings.PURGE_ATTEMPTS:
            log.error(
                "CDN purge of %d keys failed %d times (%s); giving up: their pages stay stale "
                "at the CDN until they expire (CACHE_S_MAXAGE)", len(keys), attempt, error,
            )
            raise PurgeFailed(f"{len(keys)} keys not purged after {attempt} attempts") from error
        if not purge_keys.get_backend().supports_defer:
            purging.queue.add(keys, to_purge=True)  # no run_after: this process's thread retries
            return {"purged": 0, "retry": "purge thread"}
        delay = retry_delay(attempt)
        retry_at = timezone.now() + datetime.timedelta(seconds=delay)
        purge_keys.using(run_after=retry_at).enqueue(keys, attempt=attempt + 1)
        log.warning(
            "CDN purge of %d keys failed (%s); attempt %d of %d in %.0fs",
            len(keys), error, attempt + 1, settings.PURGE_ATTEMPTS, delay,
        )
        return {"purged": 0, "retry_at": retry_at.isoformat()}
    return {"purged": len(keys)}


@task
def refresh_keys(keys: list[str]) -> None:
    """Give `keys` new cache versions and have the CDN purge them (posts/caching.py refresh),
    again: queued REPLICA_SETTLE_SECONDS after a change when reader pages read from replicas.

    Idempotent: new versions only make the pages showing these keys render once more.
    """
    from posts import caching  # which imports this module

    caching.refresh(set(keys))


@task
def refill_similar_lists(post_ids: list[int]) -> None:
    """Recompute the similar lists that name any of `post_ids` not published now.

    Idempotent: the lists are ranked afresh from the current posts and tags, so a second run
    stores the same rows (and a post published again meanwhile is simply not dropped).
    """
    # One transaction: a list's rows are replaced (delete, insert) where no reader sees them
    # gone. Inside the enqueuing transaction (the immediate backend) it is a savepoint: the
    # backend records a failure as the task's, and the editor's change must not roll back.
    with transaction.atomic():
        derived.refill_lists_holding(derived.unlisted(post_ids), lock=True)


@task
def fold_view_counts() -> dict:
    """Add the views counted in Redis to the posts; return the posts and views folded.

    Idempotent: each fold key's counts are recorded as applied (ViewCountFold) in the same
    transaction that adds them, so a second run adds only views counted since.
    """
    posts, views = viewcounts.fold_view_counts()
    return {"posts": posts, "views": views}


@task
def release_scheduled() -> dict:
    """Refresh the cached pages that scheduled posts join once their date has passed; return
    how many posts were released.

    Idempotent: it moves a stored high-water mark, so a second run finds no post newly due,
    and invalidating a page again only costs its next render.
    """
    return {"released": len(derived.release_scheduled())}
