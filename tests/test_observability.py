"""What each request reports about its cost (alphanode/observability.py)."""

import json
import logging
import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.module_loading import import_string

from alphanode.observability import QueryBudgetExceeded
from posts import views
from tests.factories import PostFactory

pytestmark = pytest.mark.django_db

SERVER_TIMING = re.compile(
    r'db;dur=(?P<db>[\d.]+);desc="(?P<queries>\d+) queries", '
    r'cache;desc="(?P<cache>hit|miss|bypass)", app;dur=(?P<app>[\d.]+)'
)


@pytest.mark.parametrize(("page_cache_on", "statuses"), [(True, ["miss", "hit"]),
                                                         (False, ["bypass", "bypass"])])
def test_server_timing_reports_queries_cache_and_time(client, settings, page_cache_on, statuses):
    settings.SERVER_TIMING = True
    settings.PAGE_CACHE = page_cache_on
    url = PostFactory().get_absolute_url()

    timings = [SERVER_TIMING.fullmatch(client.get(url)["Server-Timing"]) for _ in statuses]

    assert all(timings), [client.get(url)["Server-Timing"]]
    assert [t["cache"] for t in timings] == statuses
    assert timings[0]["queries"] == "1"  # the article in one statement
    assert timings[1]["queries"] == ("0" if page_cache_on else "1")
    assert float(timings[0]["app"]) >= float(timings[0]["db"]) > 0


def test_server_timing_is_off_unless_asked_for(client, settings):
    settings.SERVER_TIMING = False

    assert "Server-Timing" not in client.get(reverse("posts:list"))


def test_each_request_logs_one_line_with_its_cost(client, caplog, settings):
    settings.TRUSTED_PROXY_COUNT = 1  # the request id below comes from the CDN
    caplog.set_level(logging.INFO, logger="alphanode.requests")
    url = PostFactory().get_absolute_url()
    caplog.clear()

    response = client.get(url, headers={"X-Request-ID": "edge-42.a"})

    (record,) = [r for r in caplog.records if r.name == "alphanode.requests"]
    assert (record.method, record.path, record.status, record.queries, record.cache) == (
        "GET", url, 200, 1, "bypass",
    )
    assert record.duration_ms >= record.db_ms > 0
    assert record.request_id == response["X-Request-ID"] == "edge-42.a"


@pytest.mark.parametrize("given", [None, "", "has spaces", "x" * 65, "<script>"])
def test_a_request_without_a_plain_id_gets_a_new_one(client, given):
    headers = {"X-Request-ID": given} if given is not None else {}

    request_id = client.get(reverse("posts:list"), headers=headers)["X-Request-ID"]

    assert re.fullmatch(r"[0-9a-f]{32}", request_id)


def test_json_log_lines_carry_the_request_fields(client, settings, caplog):
    caplog.set_level(logging.INFO, logger="alphanode.requests")
    config = dict(settings.LOG_FORMATTERS["json"])
    formatter = import_string(config.pop("()"))(
        config["format"], rename_fields=config["rename_fields"]
    )
    client.get(reverse("posts:list"))

    (record,) = [r for r in caplog.records if r.name == "alphanode.requests"]
    line = json.loads(formatter.format(record))

    assert line["logger"] == "alphanode.requests" and line["level"] == "INFO"
    assert {"method", "path", "status", "duration_ms", "queries", "cache", "request_id"} <= set(
        line
    )
    assert line["path"] == "/" and line["status"] == 200


def reader_views():
    """Every view the site's URLconf routes to, outside the admin."""
    def walk(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.app_name != "admin":
                    yield from walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern):
                yield pattern.callback

    return list(walk(get_resolver().url_patterns))


def test_every_site_view_declares_a_query_budget():
    found = reader_views()

    assert views.post_detail in found and views.post_list in found
    missing = [view.__name__ for view in found if getattr(view, "query_budget", None) is None]
    assert not missing


def test_a_page_over_its_budget_fails_in_tests(client, monkeypatch):
    url = PostFactory().get_absolute_url()
    monkeypatch.setattr(views.post_detail, "query_budget", 0)

    with pytest.raises(QueryBudgetExceeded, match="ran 1 SQL queries, over its view's budget of 0"):
        client.get(url)


def test_a_page_over_its_budget_logs_a_warning_in_production(
    client, settings, monkeypatch, caplog
):
    settings.QUERY_BUDGET_STRICT = False
    url = PostFactory().get_absolute_url()
    monkeypatch.setattr(views.post_detail, "query_budget", 0)

    assert client.get(url).status_code == 200

    (warning,) = [r for r in caplog.records if r.name == "alphanode.budget"]
    assert warning.levelno == logging.WARNING
    assert warning.budget == 0 and warning.queries == 1
