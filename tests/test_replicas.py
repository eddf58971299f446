"""Read replicas against real servers: a PostgreSQL primary and a streaming replica of it made
with `pg_basebackup -R`, both throwaway on loopback, and gunicorn serving the app on them
(DATABASE_REPLICA_URLS; DEBUG off, the page cache off so that every page reads a database).

Which server ran a page's statements is read from the servers' own logs (log_statement=all on
both): each request names something only it asks for (a post's slug, a search word), and a
test looks for it, as a statement's parameter, in what each log gained meanwhile.
"""

import http.cookiejar
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.urls import resolve

from alphanode.routers import PIN_COOKIE, is_reader_page
from posts.models import Post, PublicationStatus, Tag
from tests.servers import DB_NAME, Cluster, start_gunicorn, stop_process
from tests.test_admin import FormData
from tests.test_settings import PRODUCTION_ENV, run_python

ROOT = Path(__file__).resolve().parent.parent
EDITOR, PASSWORD = "editor", "a-long-replica-test-password"
LOGGED = {"log_statement": "all"}
# Two apps on the same pair: one that keeps a replica however far behind (so a test can see it
# stale), one that skips it past a second's lag.
LENIENT = {"REPLICA_MAX_LAG_SECONDS": "60", "REPLICA_READ_YOUR_WRITES_SECONDS": "120"}
STRICT = {"REPLICA_MAX_LAG_SECONDS": "1"}
WAIT = 20  # seconds a test waits for something that takes well under one


def app_env(primary, replica=None, extra=None):
    """The environment of manage.py and gunicorn on `primary` (and `replica`)."""
    inherited = {key: value for key, value in os.environ.items()
                 if not key.startswith("PYTEST_") and key != "REDIS_URL"}
    return {
        **inherited,
        "DATABASE_URL": primary.url,
        "DATABASE_REPLICA_URLS": replica.url if replica else "",
        "DATABASE_POOL_TIMEOUT": "2",
        "REPLICA_CHECK_SECONDS": "0.2",
        "REPLICA_RETRY_SECONDS": "0.5",
        "DEBUG": "0",
        "SECRET_KEY": "replica-test-secret-key-not-for-production-use-0123456789",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_COOKIES": "0",  # plain HTTP: the login's cookies must come back
        "STATIC_MANIFEST": "0",  # no collectstatic here (tests/test_deploy.py runs it)
        "PAGE_CACHE": "0",
        "LOG_LEVEL": "INFO",
        **(extra or {}),
    }


@pytest.fixture(scope="module")
def primary():
    cluster = Cluster.primary(LOGGED)
    try:
        cluster.start()
        with cluster.connect("postgres") as conn:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        env = {**app_env(cluster), "DJANGO_SUPERUSER_PASSWORD": PASSWORD}
        for command in (
            ["migrate", "--noinput", "-v0"],
            ["generate_posts", "--count", "12", "--seed", "4"],
            ["createsuperuser", "--noinput", "--username", EDITOR, "--email", "e@example.test"],
        ):
            subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env,
                           check=True, stdout=subprocess.DEVNULL)
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(scope="module")
def replica(primary):
    cluster = Cluster.replica_of(primary, LOGGED)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


class App:
    """gunicorn serving the app on the primary and the replica."""

    def __init__(self, primary, replica, extra, log):
        self.process, self.base = start_gunicorn(app_env(primary, replica, extra), log)
        self.log = Log(log)


def serving(extra, log_name):
    """A module fixture: gunicorn on the primary and the replica, with `extra` settings."""

    @pytest.fixture(scope="module")
    def app(primary, replica):
        server = App(primary, replica, extra, primary.tmpdir / log_name)
        try:
            yield server
        finally:
            stop_process(server.process)

    return app


# The page cache on; a replica may lag 2 s, so a change is refreshed again 2.5 s after it.
CACHED = {"PAGE_CACHE": "1", "REPLICA_MAX_LAG_SECONDS": "2", "REPLICA_CHECK_TIMEOUT": "0.3"}
SETTLE = 2 + 0.2 + 0.3  # REPLICA_MAX_LAG_SECONDS + REPLICA_CHECK_SECONDS + _TIMEOUT

app = serving(LENIENT, "app.log")
strict_app = serving(STRICT, "strict-app.log")
cached_app = serving(CACHED, "cached-app.log")


@pytest.fixture(scope="module")
def published(primary):
    """(id, slug, title) of each published post, and the slug of a tag with posts."""
    with primary.connect() as conn:
        posts = conn.execute(
            f"SELECT id, slug, title FROM {Post._meta.db_table} "
            "WHERE status = %s AND published_at <= now() ORDER BY id",
            [PublicationStatus.PUBLISHED.value],
        ).fetchall()
        (tag,) = conn.execute(
            f"SELECT slug FROM {Tag._meta.db_table} WHERE post_count > 0 ORDER BY id LIMIT 1"
        ).fetchone()
    assert len(posts) >= 4
    return posts, tag


class Log:
    """A server's log file, read from a mark on."""

    def __init__(self, path):
        self.path = Path(path)
        self.offset = 0

    def mark(self):
        self.offset = self.path.stat().st_size

    def since(self):
        with self.path.open("rb") as log:
            log.seek(self.offset)
            return log.read().decode(errors="replace")


def parameter(value):
    """How PostgreSQL logs `value` among a statement's parameters."""
    return f"'{value}'"


class Browser:
    """A browser on the app: it keeps its cookies and follows redirects."""

    def __init__(self, app):
        self.base = app.base
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def request(self, path, data=None):
        """Return (status, body) of a GET, or of a POST of `data` (name -> list of values)."""
        body = None if data is None else urllib.parse.urlencode(data, doseq=True).encode()
        try:
            with self.opener.open(self.base + path, body, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def cookie(self, name):
        return next((cookie.value for cookie in self.cookies if cookie.name == name), None)

    def log_in(self):
        self.request("/admin/login/")
        status, body = self.request("/admin/login/?next=/admin/", {
            "username": [EDITOR], "password": [PASSWORD], "next": ["/admin/"],
            "csrfmiddlewaretoken": [self.cookie("csrftoken")],
        })
        assert status == 200 and "Log out" in body, body[:500]


def replay(replica, running):
    """Pause or resume the replica's replay of the WAL it receives."""
    with replica.connect() as conn:
        conn.execute("SELECT pg_wal_replay_resume()" if running else "SELECT pg_wal_replay_pause()")


def wait_for_replay(primary, replica):
    """Commit a transaction on the primary, and wait until the replica has replayed it and
    everything before it."""
    with primary.connect() as conn:
        conn.execute("SELECT txid_current()")  # a transaction id, so its commit is logged
        # The insert position: with synchronous_commit=off the WAL is written a moment later.
        (position,) = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
    deadline = time.monotonic() + WAIT
    with replica.connect() as conn:
        while not conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                               [str(position)]).fetchone()[0]:
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.05)


def read_on(app, server, path, marker):
    """Whether a GET of `path` from `app` (a 200) ran a statement on `server` with `marker`."""
    server_log = Log(server.log)
    server_log.mark()
    status, body = Browser(app).request(path)
    assert status == 200, body[:500]
    return parameter(marker) in server_log.since()


def wait_until_read_on(app, server, path, marker):
    """Wait until a reader's GET of `path` reads `server` again."""
    deadline = time.monotonic() + WAIT
    while not read_on(app, server, path, marker):
        assert time.monotonic() < deadline, f"{path} did not read {server.url} again"
        time.sleep(0.2)


REPLICA_URLS = ("postgres://alphanode@replica-1.invalid/alphanode, "
                "postgres://alphanode@replica-2.invalid/alphanode")


DESCRIBE_DATABASES = """
import json, django
django.setup()
from django.conf import settings

def described(db):
    options = db["OPTIONS"]
    return {"host": db["HOST"], "conn_max_age": db["CONN_MAX_AGE"],
            "pool": {**options["pool"], "check": options["pool"]["check"].__qualname__},
            "prepare_threshold": options.get("prepare_threshold"),
            "mirror": db.get("TEST", {}).get("MIRROR")}

print(json.dumps({alias: described(db) for alias, db in settings.DATABASES.items()}))
print(json.dumps(settings.DATABASE_ROUTERS))
"""


def test_each_replica_is_an_alias_with_the_primarys_pool_and_no_test_database():
    result = run_python(DESCRIBE_DATABASES,
                        {**PRODUCTION_ENV, "DATABASE_REPLICA_URLS": REPLICA_URLS})
    assert result.returncode == 0, result.stderr
    databases, routers = map(json.loads, result.stdout.splitlines())

    primary = databases.pop("default")
    assert primary["pool"]["check"] == "check_connection" and primary["mirror"] is None
    assert databases == {
        f"replica_{number}": {**primary, "host": f"replica-{number}.invalid", "mirror": "default"}
        for number in (1, 2)
    }
    assert routers == ["alphanode.routers.ReplicaRouter"]


@pytest.mark.parametrize(
    ("env", "message"),
    [({"DATABASE_URL": ""}, "DATABASE_REPLICA_URLS needs DATABASE_URL"),
     ({"DATABASE_REPLICA_URLS": "mysql://replica.invalid/alphanode"}, "is not a postgres:// URL"),
     ({"REPLICA_READ_YOUR_WRITES_SECONDS": "5"},
      "REPLICA_READ_YOUR_WRITES_SECONDS=5 is shorter than a replica in use may lag (7.5 s")],
)
def test_replica_settings_that_cannot_work_stop_start_up_with_a_message(env, message):
    env = {**PRODUCTION_ENV, "DATABASE_REPLICA_URLS": REPLICA_URLS, **env}
    result = run_python("import django; django.setup()", env)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    ("path", "reader_page"),
    [("/", True), ("/search/", True), ("/posts/a-post/", True), ("/tags/", True),
     ("/tags/a-tag/", True), ("/tags/a-tag/feed/", True), ("/feed/rss/", True),
     ("/sitemap.xml", True), ("/posts/a-post/review/flag/", False), ("/posts/1/view", False),
     ("/review/", False), ("/admin/", False), ("/admin/posts/post/", False),
     ("/readyz", False)],
)
def test_reader_pages_are_the_views_serving_only_get_and_head(path, reader_page):
    assert is_reader_page(resolve(path).func) is reader_page


def test_reader_pages_read_from_the_replica(primary, replica, app, published):
    posts, tag = published
    _, slug, _ = posts[0]
    word = f"probe{uuid.uuid4().hex}"
    # The article and the tag page (posts/reading.py), a search (posts/searching.py), and a
    # feed (the ORM): each named in its statement's parameters.
    pages = {f"/posts/{slug}/": slug, f"/tags/{tag}/": tag, f"/tags/{tag}/feed/": tag,
             f"/search/?q={word}": word}
    primary_log, replica_log = Log(primary.log), Log(replica.log)
    primary_log.mark()
    replica_log.mark()

    assert [Browser(app).request(page)[0] for page in pages] == [200] * len(pages)

    on_primary, on_replica = primary_log.since(), replica_log.since()
    assert [marker for marker in pages.values() if parameter(marker) not in on_replica] == []
    assert [marker for marker in pages.values() if parameter(marker) in on_primary] == []


def test_staff_pages_and_writes_use_the_primary_and_an_editor_sees_their_change_at_once(
    primary, replica, app, published
):
    posts, _ = published
    pk, slug, _ = posts[1]
    article, change = f"/posts/{slug}/", f"/admin/posts/post/{pk}/change/"
    editor = Browser(app)
    editor.log_in()
    assert editor.cookie(PIN_COOKIE) is not None  # the login wrote: read-your-writes
    word = f"probe{uuid.uuid4().hex}"
    primary_log, replica_log = Log(primary.log), Log(replica.log)
    primary_log.mark()
    replica_log.mark()
    assert editor.request(f"/admin/posts/post/?q={word}")[0] == 200
    assert parameter(f"%{word}%") in primary_log.since()
    assert word not in replica_log.since()

    # The replica stops replaying: the edit reaches only the primary.
    wait_for_replay(primary, replica)
    replay(replica, running=False)
    try:
        title = f"Edited on the primary {uuid.uuid4().hex}"
        status, form = editor.request(change)
        assert status == 200, form[:500]
        data = FormData(form, "post_form").data | {"title": [title], "_save": ["Save"]}
        status, body = editor.request(change, data)
        assert status == 200 and "was changed successfully" in body, body[:2000]

        primary_log.mark()
        replica_log.mark()
        status, page = editor.request(article)
        assert status == 200 and title in page
        assert parameter(slug) in primary_log.since()
        assert parameter(slug) not in replica_log.since()
        # A reader meanwhile reads the replica, which has not replayed the edit.
        assert read_on(app, replica, article, slug)
        assert title not in Browser(app).request(article)[1]
    finally:
        replay(replica, running=True)
    deadline = time.monotonic() + WAIT
    while title not in Browser(app).request(article)[1]:
        assert time.monotonic() < deadline, "the replica did not replay the edit"
        time.sleep(0.1)


def test_a_lagging_replica_is_skipped_and_the_primary_serves(
    primary, replica, strict_app, published
):
    posts, _ = published
    _, slug, _ = posts[2]
    article = f"/posts/{slug}/"
    wait_until_read_on(strict_app, replica, article, slug)
    strict_app.log.mark()

    wait_for_replay(primary, replica)  # its lag is then counted from that commit
    replay(replica, running=False)
    try:
        title = f"Written while the replica lags {uuid.uuid4().hex}"
        with primary.connect() as conn:
            conn.execute(f"UPDATE {Post._meta.db_table} SET title = %s WHERE slug = %s",
                         [title, slug])
        # Once the replica is a second behind, readers get the primary, with the new title.
        statuses, deadline = [], time.monotonic() + WAIT
        while True:
            status, page = Browser(strict_app).request(article)
            statuses.append(status)
            if title in page:
                break
            assert time.monotonic() < deadline, "the lagging replica was not skipped"
            time.sleep(0.1)
        assert set(statuses) == {200}
        assert read_on(strict_app, primary, article, slug)
        assert not read_on(strict_app, replica, article, slug)
        logged = strict_app.log.since()
        assert "replica replica_1 skipped" in logged
        assert "behind the primary, over REPLICA_MAX_LAG_SECONDS=1" in logged
    finally:
        replay(replica, running=True)
    wait_until_read_on(strict_app, replica, article, slug)
    assert "replica replica_1 in use again" in strict_app.log.since()


def test_a_stopped_replica_is_skipped_and_the_site_keeps_serving(
    primary, replica, app, published
):
    posts, tag = published
    _, slug, _ = posts[3]
    pages = [f"/posts/{slug}/", "/", f"/tags/{tag}/", "/search/?q=python", "/tags/"]
    wait_until_read_on(app, replica, pages[0], slug)
    app.log.mark()

    replica.stop()
    try:
        started = time.monotonic()
        statuses = [Browser(app).request(page)[0] for page in pages * 3]
        assert statuses == [200] * len(statuses)
        # At most one wait for a connection (DATABASE_POOL_TIMEOUT=2) before it is skipped.
        assert time.monotonic() - started < 2 + 3
        assert read_on(app, primary, pages[0], slug)
        logged = app.log.since()
        assert "replica replica_1 skipped, the primary serves its reads: unreachable" in logged
        assert "Traceback" not in logged
    finally:
        replica.start()
    wait_until_read_on(app, replica, pages[0], slug)


def test_a_page_cached_from_a_replica_behind_a_change_is_refreshed_once_it_replays(
    primary, replica, cached_app, published
):
    posts, _ = published
    pk, slug, _ = posts[2]
    article, change = f"/posts/{slug}/", f"/admin/posts/post/{pk}/change/"
    editor, reader = Browser(cached_app), Browser(cached_app)
    editor.log_in()
    status, form = editor.request(change)
    assert status == 200, form[:500]
    title = f"Edited while the replica waits {uuid.uuid4().hex}"
    data = FormData(form, "post_form").data | {"title": [title], "_save": ["Save"]}
    wait_for_replay(primary, replica)
    replay(replica, running=False)
    try:
        status, body = editor.request(change, data)
        committed = time.monotonic()
        assert status == 200 and "was changed successfully" in body, body[:2000]
        # A reader's page, rendered from the replica that has not replayed the edit, is
        # cached under the versions the edit just gave: the old page, kept.
        assert title not in reader.request(article)[1]
        assert time.monotonic() - committed < 2, "too slow: the replica was no longer in use"
        assert title not in reader.request(article)[1]
    finally:
        replay(replica, running=True)
    wait_for_replay(primary, replica)

    # Before: the old page stayed until the next change (PAGE_CACHE_TIMEOUT, a day). Now the
    # change is refreshed again SETTLE seconds after its commit.
    deadline = committed + SETTLE + WAIT
    while title not in reader.request(article)[1]:
        assert time.monotonic() < deadline, "the page cached from the replica stayed stale"
        time.sleep(0.2)
    assert time.monotonic() - committed >= SETTLE - 0.5  # not an ordinary miss


def test_staff_on_a_reader_page_read_the_primary_when_not_pinned(primary, replica, app,
                                                                  published):
    # An editor's article shows drafts and review state: never a replica's moments-old copy,
    # also once the read-your-writes window after their last write has passed.
    posts, _ = published
    _, slug, _ = posts[3]
    editor = Browser(app)
    editor.log_in()
    for cookie in list(editor.cookies):
        if cookie.name == PIN_COOKIE:
            editor.cookies.clear(cookie.domain, cookie.path, cookie.name)
    assert editor.cookie(PIN_COOKIE) is None
    primary_log, replica_log = Log(primary.log), Log(replica.log)
    primary_log.mark()
    replica_log.mark()

    status, page = editor.request(f"/posts/{slug}/")

    assert status == 200 and "Edit in the admin" in page
    assert parameter(slug) in primary_log.since()
    assert parameter(slug) not in replica_log.since()
