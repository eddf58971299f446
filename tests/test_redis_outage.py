"""Redis stopped or frozen: every page still serves, readers' and editors' alike.

Each test starts its own redis-server (the run's shared one must stay up), points the cache
at it, then stops it (SIGTERM) or freezes it (SIGSTOP: connections are accepted by the kernel
and never answered, the case that hangs a client without time-outs).
"""

import logging
import signal
import tempfile
import time
from pathlib import Path

import pytest
import redis
from django.urls import reverse

from posts import caching
from tests.factories import PostFactory
from tests.servers import HOST, find_redis_server, free_ports, start_redis, stop_process

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("page_cache")]

PASSWORD = "a-long-test-password"  # tests/conftest.py make_user


@pytest.fixture
def own_redis(settings):
    """A redis-server of this test's own, as the cache; yields its process."""
    (port,) = free_ports(1)
    with tempfile.TemporaryDirectory() as tmpdir:
        process = start_redis(find_redis_server(), Path(tmpdir), port)
        client = redis.Redis(host=HOST, port=port, socket_connect_timeout=1)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        client.close()
        settings.CACHES = {
            "default": {
                **settings.CACHES["default"],
                "LOCATION": f"redis://{HOST}:{port}/0",
            }
        }
        settings.CACHE_RETRY_SECONDS = 30
        caching.outage.until = 0.0
        caching.outage.logged_at = -1e9
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
            stop_process(process)
            caching.outage.until = 0.0


def fail(process, how):
    if how == "stopped":
        stop_process(process)
    else:
        process.send_signal(signal.SIGSTOP)


@pytest.mark.parametrize("how", ["stopped", "frozen"])
def test_pages_serve_while_redis_is_down(client, own_redis, editor, how, caplog):
    post = PostFactory()
    url = post.get_absolute_url()
    assert client.get(url).status_code == 200
    assert client.get(url).wsgi_request.cache_status == "hit"
    fail(own_redis, how)
    caplog.set_level(logging.ERROR, logger="alphanode.cache")

    started = time.monotonic()
    statuses = [client.get(page).status_code for page in [url, reverse("posts:list")] * 10]
    elapsed = time.monotonic() - started

    assert statuses == [200] * 20
    # One failed call (at most one socket time-out), then the cache is left alone.
    assert elapsed < 20 * 2 * 0.25 / 2, f"20 pages took {elapsed:.1f}s"
    outages = [r for r in caplog.records if r.name == "alphanode.cache"]
    assert len(outages) == 1, [r.getMessage() for r in outages]
    assert "cache unreachable" in outages[0].getMessage()

    # Editors log in, see the admin and their fresh pages.
    response = client.post(
        reverse("admin:login"), {"username": editor.username, "password": PASSWORD}
    )
    assert response.status_code == 302, response.content[:500]
    assert client.get(reverse("admin:posts_post_changelist")).status_code == 200
    assert client.get(url).status_code == 200


def test_the_cache_is_used_again_once_redis_is_back(client, own_redis, settings):
    post = PostFactory()
    url = post.get_absolute_url()
    own_redis.send_signal(signal.SIGSTOP)
    settings.CACHE_RETRY_SECONDS = 0.5
    assert client.get(url).status_code == 200
    assert client.get(url).wsgi_request.cache_status == "bypass"  # Redis is left alone

    own_redis.send_signal(signal.SIGCONT)
    time.sleep(0.6)

    assert client.get(url).wsgi_request.cache_status == "miss"
    assert client.get(url).wsgi_request.cache_status == "hit"


def test_a_write_while_redis_is_frozen_refreshes_the_page_when_it_is_back(
    client, own_redis, settings, django_capture_on_commit_callbacks, reviewer
):
    from posts import purging, review
    from posts.models import Post

    with django_capture_on_commit_callbacks(execute=True):
        post = PostFactory()
    url = post.get_absolute_url()
    client.get(url)
    assert client.get(url).wsgi_request.cache_status == "hit"
    own_redis.send_signal(signal.SIGSTOP)

    with django_capture_on_commit_callbacks(execute=True):
        review.flag_posts(Post.objects.filter(pk=post.pk), reviewer, "check")
    assert purging.queue.to_version >= {f"post:{post.pk}"} or purging.queue.sending.locked()
    assert client.get(url).wsgi_request.cache_status == "bypass"  # not trusted meanwhile

    own_redis.send_signal(signal.SIGCONT)
    caching.outage.until = 0.0
    assert purging.flush(timeout=1)  # the purge thread's retry, run here
    response = client.get(url)
    assert response.wsgi_request.cache_status == "miss"
    assert response["X-Robots-Tag"] == "noindex"


def test_the_socket_timeout_bounds_a_frozen_redis(settings):
    assert settings.CACHES["default"]["OPTIONS"]["SOCKET_TIMEOUT"] == settings.REDIS_SOCKET_TIMEOUT
    assert settings.REDIS_SOCKET_TIMEOUT <= 0.5
    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.db"



@pytest.mark.parametrize("how", ["stopped", "frozen"])
def test_readyz_names_the_cache_while_redis_is_down(client, own_redis, how):
    response = client.get(reverse("readyz"))
    assert response.status_code == 200
    assert response.text == "database: ok\ncache: ok\n"
    fail(own_redis, how)

    started = time.monotonic()
    response = client.get(reverse("readyz"))

    assert time.monotonic() - started < 2  # REDIS_SOCKET_TIMEOUT bounds each call
    assert response.status_code == 503
    assert response.text == "database: ok\ncache: unavailable\n"  # why: in the log only
    assert "no-store" in response.headers["Cache-Control"]
