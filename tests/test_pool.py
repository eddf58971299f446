"""The connection pool's check (alphanode/pool.py) against the run's PostgreSQL: a healthy
connection is handed out without a round trip, and one the server closed is replaced."""

import os
import time

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from alphanode.pool import check_connection, has_input

URL = os.environ.get("DATABASE_URL", "")
pytestmark = pytest.mark.skipif(not URL.startswith("postgres"), reason="needs PostgreSQL")


@pytest.fixture
def watcher():
    with psycopg.connect(URL, autocommit=True) as connection:
        yield connection


def state_change(watcher, pid):
    """When the backend `pid` last started or finished a statement."""
    return watcher.execute(
        "SELECT state_change FROM pg_stat_activity WHERE pid = %s", (pid,)
    ).fetchone()[0]


def terminate(watcher, pid):
    watcher.execute("SELECT pg_terminate_backend(%s)", (pid,))
    deadline = time.monotonic() + 5
    while watcher.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
        assert time.monotonic() < deadline, f"backend {pid} did not exit"
        time.sleep(0.01)


def test_a_healthy_connection_is_checked_without_a_round_trip(watcher):
    with psycopg.connect(URL, autocommit=True) as connection:
        pid = connection.info.backend_pid
        before = state_change(watcher, pid)
        time.sleep(0.01)
        check_connection(connection)
        assert not has_input(connection)
        assert state_change(watcher, pid) == before  # the server ran nothing for the check
        # psycopg's own check, for contrast, is a statement on the server.
        ConnectionPool.check_connection(connection)
        assert state_change(watcher, pid) != before


def test_a_connection_the_server_closed_is_replaced_at_once(watcher):
    with ConnectionPool(URL, min_size=2, max_size=2, check=check_connection,
                        kwargs={"autocommit": True}, open=True) as pool:
        pool.wait()
        with pool.connection() as one, pool.connection() as other:
            pids = {one.info.backend_pid, other.info.backend_pid}
        for pid in pids:  # as a restart does to every connection in the pool
            terminate(watcher, pid)

        started = time.monotonic()
        with pool.connection() as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
            assert connection.info.backend_pid not in pids
        # Not the pool's back-off of 1 s per dead connection.
        assert time.monotonic() - started < 1
