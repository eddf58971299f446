"""What operators and attackers meet: login throttling and its log, log lines without secrets
or tracebacks, request ids, and the error pages of requests that went wrong.

Each test here was a failure observed on main before issue 10 (see docs/operations.md).
"""

import io
import json
import logging
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.module_loading import import_string

from posts.models import PublicationStatus
from tests.factories import PostFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password"  # tests/conftest.py make_user
WRONG = "not-the-password-7f3a"


def log_in(client, username, password, address="10.0.0.1"):
    return client.post(reverse("admin:login"), {"username": username, "password": password},
                       REMOTE_ADDR=address)


@pytest.fixture
def console():
    """The text the site's configured console handler writes, filters and formatter included."""
    handler = logging.getHandlerByName("console")
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)


def test_failed_logins_lock_the_account_at_that_address_only(client, editor, settings):
    # Before: 12 wrong passwords in a row were all answered, then the right one worked.
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        assert log_in(client, editor.username, WRONG).status_code == 200  # the form, again
    assert log_in(client, editor.username, WRONG).status_code == 429  # the last one allowed

    locked = log_in(client, editor.username, PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.text
    assert "15 minutes" in locked.text and "/static/css/site.css" in locked.text

    # Someone guessing from elsewhere cannot lock the editor out of their own address.
    assert log_in(Client(), editor.username, PASSWORD, address="10.0.0.2").status_code == 302


def test_an_address_trying_many_accounts_is_refused_any_login(client, editor, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 6
    for n in range(6):  # one try per account: under the per-account limit each time
        assert log_in(client, f"someone-{n}", WRONG, address="10.0.0.5").status_code == 200

    refused = log_in(client, editor.username, PASSWORD, address="10.0.0.5")
    assert refused.status_code == 429
    assert "Logins from your address are refused for 15 minutes" in refused.text
    assert log_in(Client(), editor.username, PASSWORD, address="10.0.0.6").status_code == 302


def test_the_lockout_ends_after_its_cool_off(client, editor, settings):
    from axes.models import AccessAttempt

    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        log_in(client, editor.username, WRONG)
    assert log_in(client, editor.username, PASSWORD).status_code == 429

    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time
                                 - settings.AXES_COOLOFF_TIME)

    assert log_in(client, editor.username, PASSWORD).status_code == 302


def test_a_successful_login_forgets_the_failures(client, editor, settings):
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        log_in(client, editor.username, WRONG)
    assert log_in(client, editor.username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        log_in(client, editor.username, WRONG)
    assert log_in(client, editor.username, PASSWORD).status_code == 302


def test_logins_failed_and_successful_are_logged(client, editor, caplog):
    caplog.set_level(logging.INFO, logger="alphanode.auth")
    log_in(client, editor.username, WRONG)
    log_in(client, editor.username, PASSWORD)

    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "alphanode.auth"]
    assert lines == [
        ("WARNING", f"login failed: '{editor.username}' from 10.0.0.1"),
        ("INFO", f"login: {editor.username} (user {editor.pk})"),
    ]


def test_the_client_address_comes_from_the_trusted_proxies_only(client, editor, settings,
                                                                caplog):
    caplog.set_level(logging.INFO, logger="alphanode.auth")
    forwarded = {"HTTP_X_FORWARDED_FOR": "203.0.113.9, 198.51.100.7"}
    client.post(reverse("admin:login"), {"username": "x", "password": WRONG}, **forwarded)
    settings.TRUSTED_PROXY_COUNT = 1  # Varnish appends what it saw: the last entry
    client.post(reverse("admin:login"), {"username": "y", "password": WRONG}, **forwarded)

    assert [r.ip for r in caplog.records if r.name == "alphanode.auth"] == [
        "127.0.0.1", "198.51.100.7"]


def test_no_password_session_id_or_secret_reaches_the_log(client, editor, settings, console):
    log_in(client, editor.username, WRONG)
    log_in(client, "nobody", PASSWORD)
    log_in(client, editor.username, PASSWORD)
    session_id = client.cookies[settings.SESSION_COOKIE_NAME].value
    client.get(reverse("admin:posts_post_changelist"))
    client.get("/", HTTP_HOST="evil.example")
    client.post(reverse("admin:logout"))

    written = console.getvalue()
    assert "login failed" in written and "/admin/posts/post/" in written  # the log was read
    for secret in (WRONG, PASSWORD, session_id, settings.SECRET_KEY):
        assert secret not in written


def test_a_bad_host_header_is_one_log_line_not_a_traceback(client, console):
    response = client.get("/", HTTP_HOST="evil.example")

    assert response.status_code == 400
    lines = [line for line in console.getvalue().splitlines() if "DisallowedHost" in line]
    assert len(lines) == 1 and "Invalid HTTP_HOST header: 'evil.example'" in lines[0]
    assert "Traceback" not in console.getvalue()


def test_every_line_written_during_a_request_carries_its_id(client, settings, console):
    settings.TRUSTED_PROXY_COUNT = 1
    config = dict(settings.LOG_FORMATTERS["json"])
    handler = logging.getHandlerByName("console")
    previous = handler.formatter
    handler.setFormatter(import_string(config.pop("()"))(
        config["format"], rename_fields=config["rename_fields"]))
    try:
        client.get("/", HTTP_HOST="evil.example", headers={"X-Request-ID": "edge-7"})
    finally:
        handler.setFormatter(previous)

    lines = [json.loads(line) for line in console.getvalue().splitlines()]
    assert {line["logger"] for line in lines} >= {"django.security.DisallowedHost",
                                                  "alphanode.requests"}
    assert {line["request_id"] for line in lines} == {"edge-7"}
    assert all({"time", "level", "logger"} <= set(line) for line in lines)


def test_a_request_id_from_an_untrusted_client_is_replaced(client, settings):
    assert client.get("/", headers={"X-Request-ID": "spoofed-1"})["X-Request-ID"] != "spoofed-1"
    settings.TRUSTED_PROXY_COUNT = 1
    assert client.get("/", headers={"X-Request-ID": "edge-1"})["X-Request-ID"] == "edge-1"


def test_the_request_line_names_the_user_when_there_is_one(client, editor, caplog):
    caplog.set_level(logging.INFO, logger="alphanode.requests")
    client.get("/")
    client.force_login(editor)
    client.get(reverse("admin:posts_post_changelist"))

    users = [r.user_id for r in caplog.records if r.name == "alphanode.requests"]
    assert users == [None, editor.pk]


@pytest.mark.parametrize("lookup", ["title__regex", "title__iregex", "title__unaccent",
                                    "title__search", "title__trigram_similar",
                                    "reading_time__gt__regex", "tag_links__tag__slug__regex"])
def test_an_odd_lookup_in_the_admin_address_is_a_400_not_a_500(admin_client, lookup):
    # Before: ?title__regex=( reached PostgreSQL, whose "invalid regular expression" was a 500.
    url = reverse("admin:posts_post_changelist")
    assert admin_client.get(url, {lookup: "("}).status_code == 400


@pytest.mark.parametrize("lookup", ["title__icontains", "status__exact",
                                    "published_at__gte", "needs_human_review__exact"])
def test_plain_lookups_in_the_admin_address_still_filter(admin_client, lookup):
    url = reverse("admin:posts_post_changelist")
    value = ("2026-01-01T00:00:00Z" if "published_at" in lookup
             else "1" if "review" in lookup else "x")
    assert admin_client.get(url, {lookup: value}).status_code in (200, 302)


def test_a_refused_next_after_login_lands_on_the_admin(client, editor):
    response = client.post(
        reverse("admin:login") + "?next=https://evil.example/",
        {"username": editor.username, "password": PASSWORD,
         "next": "https://evil.example/"},
    )
    # Before: /accounts/profile/, a 404.
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")


def test_a_post_without_a_csrf_token_gets_the_sites_403_page(editor):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("admin:login"),
                           {"username": editor.username, "password": PASSWORD})

    assert response.status_code == 403
    assert "reload the page and send it again" in response.text
    # Django's own page has an inline <style>, which the Content Security Policy blocks.
    assert not re.search(r"<style|style=", response.text)


def test_only_staff_who_may_view_posts_see_drafts(client, editor, reviewer, staff):
    draft = PostFactory(status=PublicationStatus.DRAFT, published_at=None)
    url = draft.get_absolute_url()
    for user, status in [(staff, 404), (editor, 200), (reviewer, 200)]:
        client.force_login(user)
        assert client.get(url).status_code == status, user.username


def test_a_server_error_is_the_sites_500_page(client, settings, monkeypatch):
    from posts import views

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(views, "load_article", broken)
    client.raise_request_exception = False
    post = PostFactory()

    response = client.get(post.get_absolute_url())

    assert response.status_code == 500
    assert "Something went wrong" in response.text and "/static/css/site.css" in response.text
    assert "RuntimeError" not in response.text



def test_a_management_command_on_postgresql_closes_its_pool_at_exit():
    # Before: `manage.py shell` took ~22 s to exit, the interpreter waiting on the pool's
    # threads (whether it does depends on the order objects are collected at exit, so this
    # runs the exit handlers itself and asks whether the pool was closed).
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env.update(DEBUG="1", DATABASE_URL=os.environ["DATABASE_URL"])
    code = ("from django.db import connection; connection.cursor().execute('SELECT 1'); "
            "pool = connection.pool; import atexit; atexit._run_exitfuncs(); "
            "print('pool closed:', pool.closed)")
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], env=env, capture_output=True,
        text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "pool closed: True" in result.stdout


@pytest.mark.parametrize("forwarded", ["not-an-address", "198.51.100.7:5123", "", "   "])
def test_a_forwarded_address_that_is_not_one_falls_back_to_the_connection(
    client, settings, caplog, forwarded
):
    # axes stores the address in an inet column: a non-address from a proxy was a 500.
    settings.TRUSTED_PROXY_COUNT = 1
    caplog.set_level(logging.INFO, logger="alphanode.auth")
    response = client.post(reverse("admin:login"), {"username": "x", "password": WRONG},
                           HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR="10.0.0.9")
    assert response.status_code == 200
    assert [r.ip for r in caplog.records if r.name == "alphanode.auth"] == ["10.0.0.9"]


def test_only_a_database_that_is_away_is_a_503():
    import psycopg
    import psycopg_pool
    from django.db import InterfaceError, OperationalError

    from alphanode.database import is_unavailable

    def wrapped(cause):
        error = OperationalError(str(cause))
        error.__cause__ = cause
        return error

    away = [psycopg_pool.PoolTimeout("couldn't get a connection"),
            psycopg.OperationalError("connection refused"),  # no SQLSTATE: never connected
            psycopg.errors.AdminShutdown("terminating connection"),
            psycopg.errors.ConnectionFailure("lost")]
    failed = [psycopg.errors.DeadlockDetected("deadlock"),
              psycopg.errors.QueryCanceled("statement timeout"),
              psycopg.errors.DiskFull("no space")]
    assert all(is_unavailable(wrapped(cause)) for cause in away)
    assert not any(is_unavailable(wrapped(cause)) for cause in failed)
    assert is_unavailable(InterfaceError("connection already closed"))
    assert not is_unavailable(RuntimeError("a bug"))
