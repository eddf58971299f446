"""Read replicas: reader pages read from a PostgreSQL streaming replica, all else from the primary.

With DATABASE_REPLICA_URLS set (settings.py) each replica is a database alias (replica_1, ...)
and ReplicaRouter decides where each query goes:

- The reads of a reader page go to one replica, the same for the whole request. A reader page
  is a view that serves only GET and HEAD, as posts.caching.cached_page declares for every page
  it serves readers (alphanode/methods.py). ReplicaReadsMiddleware marks such a request in a
  context variable, which the router reads.
- Every other read goes to the primary: the admin, review actions, forms, /readyz, and any
  read outside a request (management commands, imports, tasks, threads), whose context has no
  mark. So do reads of who is asking and what they may do (PRIMARY_APPS), and reads inside a
  transaction on the primary.
- Every write goes to the primary, and only the primary is migrated.

Read-your-writes: a request other than GET, HEAD, OPTIONS or TRACE by a logged-in user gets a
signed cookie that keeps that browser's reads on the primary for
REPLICA_READ_YOUR_WRITES_SECONDS, longer than a replica in use can lag (settings.py checks), so
an editor sees their own change at once.

How lag is measured. Each process asks each replica, at most every REPLICA_CHECK_SECONDS, on a
connection from that replica's pool (waiting at most REPLICA_CHECK_TIMEOUT for one):

    lag = 0                                        if pg_last_wal_replay_lsn() >=
                                                      pg_last_wal_receive_lsn() and the WAL
                                                      receiver is running
          now() - pg_last_xact_replay_timestamp()  otherwise

The second line alone is the age of the newest transaction the replica has replayed: on a
primary that writes nothing it grows without any lag. So a replica that has replayed all the
WAL it received, while it still receives, is caught up. A replica further behind than
REPLICA_MAX_LAG_SECONDS, one not in recovery (promoted, or the primary itself), or one that
cannot tell (nothing replayed since it started, and no stream) is skipped until a later check
says otherwise; one that cannot be reached is asked again after REPLICA_RETRY_SECONDS. A replica
that stops between two checks is found when a request cannot get a connection to it (within
DATABASE_POOL_TIMEOUT), and that request reads the primary. Each change of a replica's state is
logged once, on alphanode.replicas. Skipping never fails a page: the primary serves.

Limits: a replica cut off from its primary looks caught up until its WAL receiver notices
(wal_receiver_timeout, 60 s by default). A page that a reader's request renders from a replica
that has not yet replayed the write which invalidated it is stored with the old content by the
page cache and the CDN: so every change is refreshed again REPLICA_SETTLE_SECONDS after its
commit (posts/caching.py refresh_once_replicas_settle), and such a page lives that long at most.
"""

import contextvars
import logging
import random
import threading
import time
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.db import DEFAULT_DB_ALIAS, connections

from alphanode import database
from alphanode.observability import known_user_id
from posts.caching import is_reader_request

log = logging.getLogger("alphanode.replicas")

PRIMARY = DEFAULT_DB_ALIAS
REPLICA_PREFIX = "replica_"  # the aliases settings.py gives DATABASE_REPLICA_URLS
READER_METHODS = frozenset({"GET", "HEAD"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
PIN_COOKIE = "primary_reads"
PIN_SALT = "alphanode.routers.read-your-writes"
# Who is asking and what they may do is never a stale answer: a logout, a revoked permission
# or a lockout counts at once.
PRIMARY_APPS = frozenset({"admin", "auth", "axes", "contenttypes", "sessions"})

LAG_SQL = """
SELECT pg_is_in_recovery(),
       CASE WHEN pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn()
                 -- A row while the WAL receiver runs; its status is NULL to a role without
                 -- pg_read_all_stats.
                 AND EXISTS (SELECT FROM pg_stat_wal_receiver
                             WHERE coalesce(status, 'streaming') = 'streaming')
            THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())
       END
"""


def replica_aliases() -> list[str]:
    """Return the aliases of the configured replicas."""
    return [alias for alias in settings.DATABASES if alias.startswith(REPLICA_PREFIX)]


# Which request reads what.


@dataclass
class RequestReads:
    """Where the request being served may read (set by ReplicaReadsMiddleware)."""

    pinned: bool  # its user wrote moments ago: everything from the primary
    reader_page: bool = False
    alias: str | None = None  # where its reads go, once the first read chose


current_reads = contextvars.ContextVar("current_reads", default=None)


def is_reader_page(view) -> bool:
    """Whether `view` is a reader page: it serves GET and HEAD and nothing else."""
    methods = getattr(view, "allowed_methods", None)
    return bool(methods) and set(methods) <= READER_METHODS


def wrote_recently(request) -> bool:
    """Whether the request carries the cookie of a write within the read-your-writes window."""
    value = request.get_signed_cookie(
        PIN_COOKIE, default=None, salt=PIN_SALT,
        max_age=settings.REPLICA_READ_YOUR_WRITES_SECONDS,
    )
    return value is not None


def pin_to_primary(response) -> None:
    """Have the browser's reads go to the primary for the read-your-writes window."""
    response.set_signed_cookie(
        PIN_COOKIE, "1", salt=PIN_SALT, max_age=settings.REPLICA_READ_YOUR_WRITES_SECONDS,
        secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Lax",
    )


class ReplicaReadsMiddleware:
    """Let a reader page read from a replica, unless its user wrote moments ago; after a
    logged-in user's write, keep their reads on the primary for a while."""

    def __init__(self, get_response):
        if not replica_aliases():
            raise MiddlewareNotUsed  # one database: nothing to choose
        self.get_response = get_response

    def __call__(self, request):
        token = current_reads.set(RequestReads(pinned=wrote_recently(request)))
        try:
            response = self.get_response(request)
        finally:
            current_reads.reset(token)
        # Only a user the request already loaded: looking one up here would read the session.
        if request.method not in SAFE_METHODS and known_user_id(request) is not None:
            pin_to_primary(response)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        reads = current_reads.get()
        if (reads is not None and request.method in READER_METHODS
                and is_reader_page(view_func) and is_reader_request(request)):
            # A reader: no session (staff on an article see drafts and review state, which
            # must not be a replica's moments-old copy) and no messages waiting.
            reads.reader_page = True


# Which replicas may serve.


class Unusable(Exception):
    """Why a replica may not serve reads now, and when to ask it again."""

    def __init__(self, reason: str, retry_after: float):
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


def measure_lag(alias: str) -> float:
    """Return how many seconds replica `alias` is behind its primary (see the module docstring);
    raise Unusable when it cannot be reached or cannot tell."""
    pool = connections[alias].pool
    pool.open()  # as Django does on its first connection; nothing once open
    try:
        with pool.connection(timeout=settings.REPLICA_CHECK_TIMEOUT) as conn:
            in_recovery, lag = conn.execute(LAG_SQL).fetchone()
    except psycopg.Error as error:  # psycopg_pool.PoolTimeout among them
        raise Unusable(f"unreachable: {database.first_line(error)}",
                       settings.REPLICA_RETRY_SECONDS) from error
    if not in_recovery:
        raise Unusable("not a replica: pg_is_in_recovery() is false",
                       settings.REPLICA_CHECK_SECONDS)
    if lag is None:
        raise Unusable("lag unknown: nothing replayed since it started, and not streaming",
                       settings.REPLICA_CHECK_SECONDS)
    return float(lag)


@dataclass
class ReplicaState:
    """What this process last found out about one replica."""

    alias: str
    usable: bool = False
    reason: str = "not checked yet"
    checked: bool = False
    next_check: float = 0.0  # time.monotonic()


class Replicas:
    """Each replica's state in this process, asked again when its check is due."""

    def __init__(self):
        self.states: dict[str, ReplicaState] = {}
        self.lock = threading.Lock()  # one thread checks; meanwhile others use what is known

    def state(self, alias) -> ReplicaState:
        return self.states.setdefault(alias, ReplicaState(alias))

    def usable(self) -> list[str]:
        """Return the aliases of the replicas that may serve reads now, checking those due."""
        states = [self.state(alias) for alias in replica_aliases()]
        now = time.monotonic()
        due = [state for state in states if now >= state.next_check]
        if due and self.lock.acquire(blocking=False):
            try:
                for state in due:
                    self.check(state)
            finally:
                self.lock.release()
        return [state.alias for state in states if state.usable]

    def check(self, state: ReplicaState) -> None:
        try:
            lag = measure_lag(state.alias)
            if lag > settings.REPLICA_MAX_LAG_SECONDS:
                raise Unusable(
                    f"{lag:.1f} s behind the primary, over REPLICA_MAX_LAG_SECONDS="
                    f"{settings.REPLICA_MAX_LAG_SECONDS:g}", settings.REPLICA_CHECK_SECONDS,
                )
        except Unusable as unusable:
            self.skip(state, unusable.reason, unusable.retry_after)
            return
        if state.checked and not state.usable:
            log.warning("replica %s in use again (%.1f s behind the primary)", state.alias, lag)
        state.usable, state.checked, state.reason = True, True, ""
        state.next_check = time.monotonic() + settings.REPLICA_CHECK_SECONDS

    def skip(self, state: ReplicaState, reason: str, retry_after: float) -> None:
        """Leave replica `state` out for `retry_after` seconds; log it if it was in use."""
        if state.usable or not state.checked:
            log.warning("replica %s skipped, the primary serves its reads: %s", state.alias,
                        reason)
        state.usable, state.checked, state.reason = False, True, reason
        state.next_check = time.monotonic() + retry_after

    def failed(self, alias: str, error: BaseException) -> None:
        """A request could not connect to replica `alias`: leave it out until its retry."""
        self.skip(self.state(alias), f"unreachable: {database.first_line(error)}",
                  settings.REPLICA_RETRY_SECONDS)


replicas = Replicas()


def choose_replica() -> str:
    """Return a usable replica, connected, for the request's reads; the primary if none is."""
    candidates = replicas.usable()
    random.shuffle(candidates)  # spread readers over the replicas
    for alias in candidates:
        try:
            # Connect now, so a replica that stopped since its check costs this request a
            # wait rather than a 503.
            connections[alias].ensure_connection()
        except database.UNAVAILABLE as error:
            replicas.failed(alias, error)
        else:
            return alias
    return PRIMARY


class ReplicaRouter:
    """Send a reader page's reads to a replica and everything else to the primary."""

    def db_for_read(self, model, **hints):
        reads = current_reads.get()
        if reads is None or not reads.reader_page or reads.pinned:
            return PRIMARY
        if model._meta.app_label in PRIMARY_APPS or connections[PRIMARY].in_atomic_block:
            return PRIMARY
        if reads.alias is None:
            reads.alias = choose_replica()
        return reads.alias

    def db_for_write(self, model, **hints):
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints):
        return True  # every alias holds the same data

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == PRIMARY
