"""The check psycopg's connection pool runs on a connection before handing it out (settings.py).

psycopg's own check is an empty query: a round trip to PostgreSQL before every request's first
query, so a list page (one statement) made two. A connection that PostgreSQL closed (a restart,
pg_terminate_backend, a crashed backend) has something to read on its socket while it idles in
the pool: the server's "terminating connection" error, or the end of the stream. So the check
polls the socket first (no round trip) and runs psycopg's check only when something arrived. A
connection whose server vanished without a word (a host lost with no TCP reset) passes: its
request's first query then fails (a 503, alphanode/database.py) where psycopg's check would have
failed inside the pool and handed out another connection, or waits for TCP's time-out as that
check would have.

On a dead connection, psycopg's pool tries the next idle one after a back-off of 1 s, then 2 s,
...: after a restart all of them are dead, so with three in the pool the first request waited
out its time-out (DATABASE_POOL_TIMEOUT) and was answered 503 although the server was back. So
on a dead connection this check has the pool check every idle one at once
(ConnectionPool.check), and the request gets a fresh connection in milliseconds.
"""

import select

from psycopg_pool import ConnectionPool


def check_connection(connection):
    try:
        if not has_input(connection):
            return  # nothing arrived from the server while the connection idled
        ConnectionPool.check_connection(connection)
    except Exception:
        connection._pool.check()  # the pool this connection belongs to (set by psycopg_pool)
        raise


def has_input(connection) -> bool:
    """Whether the server sent anything (or closed the socket) since the last result was read:
    on an idle connection, only a notice, a notification or the news that it is closing."""
    if connection.closed:
        return True
    poller = select.poll()  # not select.select(), which fails on descriptors from 1024 up
    poller.register(connection.fileno(), select.POLLIN)
    return bool(poller.poll(0))
