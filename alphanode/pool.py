"""The check psycopg's connection pool runs on a connection before handing it out (settings.py).

psycopg's own check (an empty query) finds a connection that a PostgreSQL restart closed, and
the pool then tries the next idle one after a back-off of 1 s, then 2 s, ...: after a restart
all of them are dead, so with three in the pool the first request waited out its time-out
(DATABASE_POOL_TIMEOUT) and was answered 503 although the server was back. So on a dead
connection this check has the pool check every idle one at once (ConnectionPool.check), and
the request gets a fresh connection in milliseconds.
"""

from psycopg_pool import ConnectionPool


def check_connection(connection):
    try:
        ConnectionPool.check_connection(connection)
    except Exception:
        connection._pool.check()  # the pool this connection belongs to (set by psycopg_pool)
        raise
