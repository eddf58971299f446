"""The list cards' HTML (posts/cards.py): escaped, linked, dated in the current time zone."""

import datetime
import zoneinfo

from django.urls import set_script_prefix
from django.utils import timezone
from django.utils.safestring import mark_safe

from posts.cards import post_cards, search_cards
from posts.models import Card, ListedTag
from posts.searching import Result

PUBLISHED = datetime.datetime(2026, 3, 8, 23, 30, tzinfo=datetime.UTC)


def card(**values):
    return Card(**{
        "id": 1, "title": "Pooling <connections> & you", "slug": "pooling",
        "summary": " ".join(f"w{n}" for n in range(60)), "published_at": PUBLISHED,
        "difficulty": "advanced", "reading_time": 7, "code_language": "python",
        "topic": "databases",
        "stack_tags": [ListedTag(3, "Django <5>", "stack-django")],
        **values,
    })


def test_a_card_links_escapes_and_cuts_its_summary():
    html = post_cards([card()])
    assert html.startswith("<li>") and html.endswith("</li>")
    assert '<h2><a href="/posts/pooling/">Pooling &lt;connections&gt; &amp; you</a></h2>' in html
    assert "· advanced · 7 min read · python" in html
    assert '<li><a href="/tags/stack-django/">Django &lt;5&gt;</a></li>' in html
    assert " ".join(f"w{n}" for n in range(40)) + " …</p>" in html
    assert "w40" not in html


def test_a_card_without_language_or_stack_says_neither():
    html = post_cards([card(code_language="", stack_tags=[])])
    assert "7 min read\n" in html
    assert "tag-list" not in html


def test_dates_are_in_the_current_time_zone():
    with timezone.override(zoneinfo.ZoneInfo("Asia/Kolkata")):
        html = post_cards([card()])
    assert '<time datetime="2026-03-09T05:00:00+05:30">2026-03-09</time>' in html


def test_urls_follow_the_script_prefix():
    set_script_prefix("/blog/")
    try:
        html = post_cards([card()])
    finally:
        set_script_prefix("/")
    assert 'href="/blog/posts/pooling/"' in html and 'href="/blog/tags/stack-django/"' in html


def test_a_search_card_keeps_its_highlight_markup():
    html = search_cards([Result(card(), mark_safe("about <mark>pooling</mark> &amp; more"))])
    assert "<p>about <mark>pooling</mark> &amp; more</p>" in html


def test_no_cards_make_no_html():
    assert post_cards([]) == ""
