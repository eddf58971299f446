"""Filters of lists and search: stack, tool, difficulty, code language (posts/filters.py)."""

import datetime
import re
from html import unescape
from itertools import product

import pytest
from django.urls import reverse
from django.utils import timezone

from posts import views
from posts.filters import Filters
from posts.models import Difficulty, TagKind, TagRole
from posts.pagination import NEWER, OLDER, Cursor, Position
from tests.factories import PostFactory, PostTagFactory, TagFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    """30 posts over two stacks, two tools, three difficulties and two languages."""
    now = timezone.now()
    django = TagFactory(kind=TagKind.STACK, name="django")
    react = TagFactory(kind=TagKind.STACK, name="react frontends")
    pytest_tool = TagFactory(kind=TagKind.TOOL, name="pytest")
    vite = TagFactory(kind=TagKind.TOOL, name="vite")
    posts = []
    for n in range(30):
        post = PostFactory(
            tag_count=0,
            published_at=now - datetime.timedelta(hours=n // 2),  # ties on the date
            difficulty=Difficulty.values[n % 3],
            code_language=("python", "javascript")[n % 2],
            title=f"post {n}",
        )
        PostTagFactory(post=post, tag=(django, react)[n % 2], role=TagRole.STACK, position=0)
        if n % 4 < 2:
            PostTagFactory(post=post, tag=(pytest_tool, vite)[n % 2], role=TagRole.TOOL,
                           position=0)
        if n % 5 == 0:  # the same tag in a second role: still one card
            PostTagFactory(post=post, tag=(django, react)[n % 2], role=TagRole.ENTITY,
                           position=0)
        posts.append(post)
    PostFactory(draft=True, tag_count=0, difficulty=Difficulty.BEGINNER)
    return posts


FILTER_CASES = [
    Filters(difficulty="advanced"),
    Filters(language="python"),
    Filters(stack="stack-django"),
    Filters(tool="tool-pytest"),
    Filters(stack="stack-django", tool="tool-pytest", difficulty="beginner"),
    Filters(stack="stack-django", language="javascript"),  # nothing
    Filters(tool="tool-no-such-tool"),
]


@pytest.mark.parametrize("filters", FILTER_CASES, ids=lambda f: "&".join(
    f"{k}={v}" for k, v in f.items()))
@pytest.mark.parametrize("of_tag", [None, "stack-django"])
def test_filtered_lists_in_one_statement_read_what_the_orm_reads(catalogue, filters, of_tag):
    one_statement = views.CardList(of_tag, filters)
    orm = views.CardList(of_tag, filters).cards_orm
    first = orm(Position(), 0, 40)
    cursors = [Cursor.of(card) for card in first[::3]]
    positions = [Position(), Position(NEWER), *(Position(OLDER, c) for c in cursors),
                 *(Position(NEWER, c) for c in cursors)]
    for position, (offset, limit) in product(positions, [(0, 4), (2, 1), (0, 40)]):
        assert one_statement(position, offset, limit) == orm(position, offset, limit), (
            position, offset, limit)


def test_filters_narrow_the_list_as_expected(client, catalogue):
    titles = [card.title for card in client.get(
        "/", {"stack": "stack-django", "tool": "tool-pytest", "difficulty": "beginner"}
    ).context["page"].object_list]
    expected = [post.title for n, post in enumerate(catalogue)
                if n % 2 == 0 and n % 4 < 2 and n % 3 == 0]
    assert sorted(titles) == sorted(expected) and titles


@pytest.mark.parametrize("per_page", [2, 25])
@pytest.mark.parametrize("url", ["/", "/tags/stack-django/"])
def test_a_filtered_list_is_one_query_whatever_the_page_size(
    client, catalogue, settings, django_assert_num_queries, per_page, url
):
    settings.POSTS_PER_PAGE = per_page
    query = {"tool": "tool-pytest", "language": "python", "difficulty": "beginner"}
    with django_assert_num_queries(1):
        response = client.get(url, query)
    assert response.status_code == 200
    page = response.context["page"]
    if page.older:
        with django_assert_num_queries(1):
            assert client.get(url, {**query, "after": str(page.older)}).status_code == 200


def links_of(html, label):
    return [unescape(href) for href in re.findall(
        rf'<a [^>]*?href="([^"]*)"[^>]*>{re.escape(label)}</a>', html)]


def test_filter_links_keep_the_other_filters_and_pages_keep_them_all(client, catalogue,
                                                                      settings):
    settings.POSTS_PER_PAGE = 2
    settings.FILTER_TOOLS = ["pytest", "vite"]
    response = client.get("/", {"stack": "stack-django", "difficulty": "beginner"})
    html = response.text

    assert links_of(html, "vite") == ["/?stack=stack-django&tool=tool-vite&difficulty=beginner"]
    # A chosen value's link removes it, keeping the rest.
    assert links_of(html, "beginner") == ["/?stack=stack-django"]
    older = links_of(html, "older posts")
    assert older and older[0].endswith("&stack=stack-django&difficulty=beginner")
    assert '<meta name="robots" content="noindex, follow">' in html
    next_page = client.get(older[0])
    assert next_page.status_code == 200
    assert next_page.context["filters"] == Filters(stack="stack-django", difficulty="beginner")


def test_the_kept_filter_bar_links_to_the_page_it_is_on(client, catalogue, settings):
    # The bar's markup is kept per address, filters and search text (posts.filters.filter_bar):
    # the same filters on another list or another search link to that one.
    settings.FILTER_TOOLS = ["pytest", "vite"]
    for path in ["/", "/tags/stack-django/", "/"]:
        html = client.get(path, {"difficulty": "beginner"}).text
        assert links_of(html, "vite") == [f"{path}?tool=tool-vite&difficulty=beginner"]
    for text in ["queries", "index"]:
        html = client.get(reverse("posts:search"), {"q": text, "difficulty": "beginner"}).text
        assert links_of(html, "vite") == [
            f"/search/?tool=tool-vite&difficulty=beginner&q={text}"]
        assert links_of(html, "clear all filters") == [f"/search/?q={text}"]


@pytest.mark.parametrize("query, message", [
    ({"difficulty": "expert"}, "is not a difficulty; expected one of beginner, intermediate"),
    ({"stack": "no/slash"}, "is not a tag's address name"),
    ({"language": "x" * 51}, "at most 50 characters"),
])
def test_a_filter_that_cannot_be_read_is_a_404_saying_why(client, query, message):
    response = client.get("/", query)
    assert response.status_code == 404
    assert message in unescape(response.text)


def test_an_unknown_filter_tag_is_an_empty_list_not_an_error(client, catalogue):
    response = client.get("/", {"tool": "tool-nothing-like-it"})
    assert response.status_code == 200
    assert "No posts match these filters" in response.text


def test_old_page_numbers_with_filters_say_what_to_do(client, catalogue):
    response = client.get("/", {"page": "2", "difficulty": "advanced"})
    assert response.status_code == 404
    assert "Old page numbers are for lists without filters" in response.text


def test_search_filters_narrow_the_matches_in_one_query(
    client, catalogue, django_assert_num_queries
):
    with django_assert_num_queries(1):
        response = client.get(reverse("posts:search"),
                              {"q": "queries", "stack": "stack-react-frontends",
                               "difficulty": "advanced"})
    found = response.context["found"]
    expected = {post.title for n, post in enumerate(catalogue) if n % 2 == 1 and n % 3 == 2}
    assert {result.card.title for result in found.results} == expected and expected
    assert 'name="stack" value="stack-react-frontends"' in response.text  # kept when re-searched


def test_a_cached_filtered_list_shows_a_post_that_starts_passing(
    client, page_cache, editor, django_capture_on_commit_callbacks
):
    from posts.models import Post
    from tests.test_admin import change_form_data, change_url

    with django_capture_on_commit_callbacks(execute=True):
        post = PostFactory(title="now intermediate", difficulty="intermediate", tag_count=1)
    url = "/?difficulty=advanced"
    assert client.get(url).context["page"].object_list == []
    assert client.get(url).wsgi_request.cache_status == "hit"

    # Its date and tags stay; only the difficulty moves, and the filtered list must follow.
    client.force_login(editor)
    data = change_form_data(client, post)
    data["difficulty"] = ["advanced"]
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(change_url(post), data).status_code == 302
    client.logout()

    response = client.get(url)
    assert response.wsgi_request.cache_status == "miss"
    assert [card.title for card in response.context["page"].object_list] == ["now intermediate"]
    assert Post.objects.get(pk=post.pk).difficulty == "advanced"


def test_search_pages_and_page_last_keep_the_filters(client, catalogue, settings):
    settings.POSTS_PER_PAGE = 2
    html = client.get(reverse("posts:search"), {"q": "queries", "difficulty": "beginner"}).text
    more = links_of(html, "more matches")
    assert more and more[0].endswith("&difficulty=beginner")
    second = client.get(reverse("posts:search") + more[0]).context["found"]
    assert second.page == 2 and second.results
    assert all(result.card.difficulty == "beginner" for result in second.results)
    last = client.get("/", {"page": "last", "difficulty": "beginner"})
    assert last.status_code == 200
    assert all(card.difficulty == "beginner" for card in last.context["page"].object_list)
