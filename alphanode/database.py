"""The database as the app lives with it: what counts as the database being away, one log line
per outage (not a traceback per request), and the connection pools closed at exit.

PostgreSQL restarting or stopping shows up in a request as django.db.OperationalError (a
refused connection, a connection the server terminated, or psycopg_pool.PoolTimeout after
DATABASE_POOL_TIMEOUT seconds) or InterfaceError (a connection already closed). The pool
checks each connection before handing it out (alphanode/pool.py), so a restart
while the app idles costs no request; while the server is down, alphanode.health answers 503.
"""

import atexit
import logging
import sqlite3
import time

from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.db.backends.signals import connection_created
from django.dispatch import receiver

log = logging.getLogger("alphanode.database")

UNAVAILABLE = (OperationalError, InterfaceError)


# SQLSTATEs of a server going away: connection exceptions (class 08), and an administrator's,
# a crash's or a shutdown's termination of the session (57P01-57P03).
GONE = ("08", "57P01", "57P02", "57P03")


def is_unavailable(error: BaseException | None) -> bool:
    """Whether `error` says the database cannot be reached, rather than that a statement
    failed (a deadlock, a time-out, a full disk: those are 500s with their traceback).

    A refused connection and the pool's time-out carry no SQLSTATE; a closed connection is an
    InterfaceError. SQLite, a file, is never away.
    """
    if not isinstance(error, UNAVAILABLE):
        return False
    cause = error.__cause__
    if isinstance(cause, sqlite3.Error):
        return False
    if isinstance(error, InterfaceError):
        return True
    sqlstate = getattr(cause, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(GONE)


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


class Outage:
    """This process's view of the database being away: logged when it starts and when it ends."""

    def __init__(self):
        self.started = None  # time.monotonic() of the first failure, None while reachable
        self.failures = 0

    def failed(self, error: BaseException):
        if self.started is None:
            self.started, self.failures = time.monotonic(), 0
            log.error("database unavailable: %s; answering 503 until it is back",
                      first_line(error))
        self.failures += 1

    def reached(self):
        if self.started is not None:
            log.warning("database reachable again after %.1f s; %d requests were answered 503",
                        time.monotonic() - self.started, self.failures)
            self.started = None


outage = Outage()


@receiver(connection_created)
def database_reached(sender, connection, **kwargs):
    """A connection to the primary was handed out (Django connects on each checkout from the
    pool): the database is reachable. (A replica's says nothing about the primary.)"""
    if connection.alias == DEFAULT_DB_ALIAS:
        outage.reached()


def close_pools():
    """Close each PostgreSQL connection pool: without this, the interpreter waits on the pool's
    threads at exit (`manage.py shell` took 22 s to quit)."""
    for connection in connections.all():
        if connection.vendor == "postgresql":
            connection.close_pool()  # nothing to do without a pool


atexit.register(close_pools)
