"""Through a real Varnish: deploy/varnish/default.vcl in front of gunicorn serving the app.

The test starts varnishd (Debian packages varnish and varnish-modules, for xkey) and gunicorn
on loopback against the test database, and stops both by their PIDs. Data is committed
(transactional tests) so gunicorn sees it; an edit made in the admin through the test client
purges Varnish by key, as PURGER=http does in production.
"""

import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from posts import purging
from tests.factories import PostFactory, PostTagFactory, TagFactory
from tests.servers import (
    HOST,
    free_ports,
    start_gunicorn,
    start_varnish,
    stop_process,
    wait_for_http,
)
from tests.test_admin import change_form_data, change_url

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.django_db(transaction=True)


class App:
    """gunicorn serving the app on the test database; can be stopped and started again."""

    def __init__(self, port, env, log):
        self.port, self.env, self.log = port, env, log
        self.process = None

    def start(self):
        self.process, _ = start_gunicorn(self.env, self.log, port=self.port)

    def stop(self):
        stop_process(self.process)


@pytest.fixture
def tmpdir_for_servers():
    path = Path(tempfile.mkdtemp(prefix="alphanode-varnish-", dir="/tmp"))  # see start_varnish
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def app(tmpdir_for_servers):
    (port,) = free_ports(1)
    database = urlsplit(django_settings.DATABASE_URL)
    test_database = urlunsplit(database._replace(path=f"/{connection.settings_dict['NAME']}"))
    env = {
        **subprocess_env(),
        "DATABASE_URL": test_database,
        "REDIS_URL": django_settings.REDIS_URL,
        "DEBUG": "0",
        "SECRET_KEY": "varnish-test-secret-key-not-for-production-use-0123456789",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "STATIC_MANIFEST": "0",  # no collectstatic here (tests/test_deploy.py runs it)
        "CACHE_MAX_AGE": "0",
        "CACHE_S_MAXAGE": "3600",
        "CACHE_STALE_IF_ERROR": "600",
    }
    server = App(port, env, tmpdir_for_servers / "gunicorn.log")
    server.start()
    yield server
    server.stop()


def subprocess_env():
    import os

    return {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}


@pytest.fixture
def varnish(app, tmpdir_for_servers, settings):
    (port,) = free_ports(1)
    process = start_varnish(tmpdir_for_servers, port, app.port)
    base = f"http://{HOST}:{port}"
    try:
        wait_for_http(f"{base}/healthz", process, "varnishd", tmpdir_for_servers / "varnishd.log")
        settings.PURGER = "http"
        settings.PURGE_URLS = [f"{base}/"]
        settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
        yield base
    finally:
        stop_process(process)


def get(url, headers=None):
    """GET through Varnish; return (status, headers, body) for any status."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def until_varnish_sees_it_up(varnish, seconds=10):
    """Wait until Varnish's probe finds the app healthy again (it refuses to fetch before)."""
    deadline = time.monotonic() + seconds
    while get(varnish + "/healthz")[0] != 200:
        assert time.monotonic() < deadline, "Varnish did not see the app back"
        time.sleep(0.1)


def until_varnish_sees_it_down(varnish, seconds=10):
    """Wait until Varnish's probe finds the app gone."""
    deadline = time.monotonic() + seconds
    while get(varnish + "/healthz")[0] != 503:
        assert time.monotonic() < deadline, "Varnish did not see the app go"
        time.sleep(0.1)


def x_cache(url):
    return get(url)[1]["X-Cache"]


@pytest.fixture
def world():
    shared = TagFactory(name="shared through varnish")
    a, b = PostFactory(tag_count=0), PostFactory(tag_count=0)
    PostTagFactory(post=a, tag=shared)
    PostTagFactory(post=b, tag=shared)
    unrelated = PostFactory(tag_count=0)
    PostTagFactory(post=unrelated, tag=TagFactory(name="alone through varnish"))
    assert purging.flush(timeout=5)  # their purges are sent before the test looks at Varnish
    return {"a": a, "b": b, "unrelated": unrelated}


def test_a_miss_a_hit_then_an_admin_edit_purges_exactly_its_pages(varnish, world, admin_user):
    a, b, unrelated = (varnish + world[name].get_absolute_url() for name in ("a", "b", "unrelated"))
    home = varnish + reverse("posts:list")
    for url in (a, b, unrelated, home):
        assert x_cache(url) == "MISS"
    for url in (a, b, unrelated, home):
        assert x_cache(url) == "HIT", dict(get(url)[1])
    status, headers, _ = get(a)
    assert status == 200 and "xkey" not in headers and "Surrogate-Key" not in headers

    editor_client = Client()
    editor_client.force_login(admin_user)  # groups are gone in transactional tests
    data = change_form_data(editor_client, world["a"])
    data["title"] = ["retitled behind the cdn"]
    assert editor_client.post(change_url(world["a"]), data).status_code == 302
    assert purging.flush(timeout=5)

    status, headers, body = get(a)
    assert headers["X-Cache"] == "MISS" and b"retitled behind the cdn" in body
    assert b"retitled behind the cdn" in get(b)[2]  # shows a among its similar posts
    assert x_cache(home) == "MISS"
    assert x_cache(unrelated) == "HIT"  # an unrelated page stays cached


def test_a_conditional_request_gets_a_304_from_varnish(varnish, world):
    url = varnish + world["a"].get_absolute_url()
    _, headers, _ = get(url)
    etag = headers["ETag"]

    status, headers, body = get(url, {"If-None-Match": etag})

    assert status == 304 and body == b""
    assert headers["X-Cache"] == "HIT"


def test_varnish_serves_stale_pages_while_the_app_is_down(varnish, app, world):
    app.stop()
    # Pages expire after a second and may not be served stale while the app is up.
    app.env.update(CACHE_S_MAXAGE="1", CACHE_STALE_WHILE_REVALIDATE="0")
    app.start()
    until_varnish_sees_it_up(varnish)
    url = varnish + world["a"].get_absolute_url()
    status, _, fresh = get(url)
    assert status == 200
    time.sleep(1.2)
    status, headers, _ = get(url)
    assert status == 200 and headers["X-Cache"] == "MISS"  # expired, app up: fetched anew
    app.stop()
    until_varnish_sees_it_down(varnish)
    time.sleep(1.2)  # expired again

    status, headers, body = get(url)

    assert status == 200 and body == fresh  # stale-if-error: the copy it has
    assert headers["X-Cache"] == "HIT"
    assert int(headers["Age"]) >= 1
    never_cached = varnish + world["unrelated"].get_absolute_url()
    assert get(never_cached)[0] == 503  # nothing stale to serve: the app's absence shows


def test_varnish_refuses_a_purge_without_keys(varnish):
    request = urllib.request.Request(varnish + "/", method="PURGE")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=5)
    assert error.value.code == 400
