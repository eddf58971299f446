"""PostgreSQL restarted or stopped under a running app: no 500s, a 503 while it is away, and
recovery without restarting the app.

The test starts a PostgreSQL cluster of its own (tests/servers.py Cluster; the run's shared one
must stay up), migrates it and writes a few posts with manage.py, and serves it with gunicorn
(1 worker, DEBUG off, the page cache off so every page reads the database). It stops and
starts that PostgreSQL with `pg_ctl -m fast` (which terminates the app's connections, as a
restart in production does).
"""

import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.servers import DB_NAME, Cluster, start_gunicorn, stop_process

ROOT = Path(__file__).resolve().parent.parent
POOL_TIMEOUT = 2  # DATABASE_POOL_TIMEOUT for the app under test, seconds
SESSION = "sessionid=" + "k" * 32  # a well-formed session key: looking it up reads the database


def app_env(database_url):
    import os

    return {
        **{key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")},
        "DATABASE_URL": database_url,
        "DATABASE_POOL_TIMEOUT": str(POOL_TIMEOUT),
        "DEBUG": "0",
        "SECRET_KEY": "outage-test-secret-key-not-for-production-use-0123456789",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "STATIC_MANIFEST": "0",  # no collectstatic here (tests/test_deploy.py runs it)
        "PAGE_CACHE": "0",
        "LOG_LEVEL": "INFO",
    }


@pytest.fixture(scope="module")
def postgres():
    server = Cluster.primary()
    try:
        server.start()
        with server.connect("postgres") as conn:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        env = app_env(server.url)
        for command in (["migrate", "--noinput", "-v0"],
                        ["generate_posts", "--count", "5", "--seed", "3"]):
            subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env,
                           check=True, stdout=subprocess.DEVNULL)
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="module")
def app(postgres):
    log = postgres.tmpdir / "app.log"
    process, base = start_gunicorn(app_env(postgres.url), log)
    try:
        yield base, log
    finally:
        stop_process(process)


def get(url, headers=None):
    """(status, headers, body) of a GET, whatever the status."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def article_url(base):
    status, _, body = get(f"{base}/")
    assert status == 200, body[:500]
    start = body.index('<h2><a href="') + len('<h2><a href="')
    return base + body[start:body.index('"', start)]


def test_a_restart_while_the_app_idles_costs_no_request(postgres, app):
    base, _ = app
    pages = [article_url(base), f"{base}/", f"{base}/tags/"]
    assert [get(page)[0] for page in pages] == [200, 200, 200]  # the pool holds connections

    postgres.stop()
    postgres.start()

    # Before the pool checked its connections, 7 of these 14 were 500 (terminating connection).
    assert [get(page)[0] for page in pages * 5][:14] == [200] * 14


def test_the_database_away_is_a_503_then_the_site_recovers_on_its_own(postgres, app):
    base, log = app
    article = article_url(base)
    assert get(f"{base}/readyz")[:1] == (200,)
    logged_before = log.read_text()

    postgres.stop()
    try:
        started = time.monotonic()
        status, headers, body = get(article)
        waited = time.monotonic() - started
        assert status == 503, body[:500]
        assert waited < POOL_TIMEOUT + 2
        assert headers["Retry-After"] == "30"
        assert "no-store" in headers["Cache-Control"]
        assert "Temporarily unavailable" in body and "cannot reach its database" in body
        assert "/static/css/site.css" in body  # the site's own page, styled
        # Anyone with a session (staff: sessions are in the database) and the admin alike.
        assert get(f"{base}/", {"Cookie": SESSION})[0] == 503
        assert get(f"{base}/admin/posts/post/", {"Cookie": SESSION})[0] == 503

        status, _, body = get(f"{base}/readyz")
        assert status == 503
        assert "database: unavailable" in body and "cache: ok" in body
        assert get(f"{base}/healthz")[0] == 200
    finally:
        postgres.start()

    deadline = time.monotonic() + 15
    while get(article)[0] != 200:
        assert time.monotonic() < deadline, "the app did not recover without a restart"
        time.sleep(0.2)
    assert [get(page)[0] for page in [article, f"{base}/", f"{base}/readyz"] * 3] == [200] * 9

    logged = log.read_text()[len(logged_before):]
    # One line for the outage and one for its end, not a traceback per request.
    assert logged.count("database unavailable") == 1, logged
    assert logged.count("database reachable again") == 1, logged
    assert "Traceback" not in logged, logged
    assert "psycopg.pool" not in logged, logged  # its reconnection attempts, a line each
