import datetime
import zoneinfo

import pytest
from django.template import defaultfilters
from django.utils import timezone

from alphanode import jinja2

TEXTS = [
    "",
    "one",
    "one two three",
    "  spaced   out\n\nwords\tand tabs  ",
    "ends with an ellipsis …",
    "a b c d e f g h i j k",
    "\u00fcn\u00efc\u00f6d\u00e9 w\u00f6rds \u2013 with dashes \u2014 and \u2018quotes\u2019",
    12345,
]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("length", [0, 1, 3, 5, 10, 40, "2", "many"])
def test_truncatewords_matches_djangos(text, length):
    assert jinja2.truncatewords(text, length) == defaultfilters.truncatewords(text, length)


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_dates_match_djangos_localtime(zone):
    value = datetime.datetime(2026, 3, 8, 6, 30, 15, 123456, tzinfo=datetime.UTC)
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        local = timezone.localtime(value)
        assert jinja2.iso_datetime(value) == local.isoformat()
        assert jinja2.strftime(value, "%Y-%m-%d %H:%M") == local.strftime("%Y-%m-%d %H:%M")
    assert jinja2.iso_datetime(None) == jinja2.strftime(None, "%Y") == ""
    assert jinja2.strftime(datetime.date(2026, 6, 30), "%Y-%m-%d") == "2026-06-30"
