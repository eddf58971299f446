"""Full-text search (/search/, posts/searching.py)."""

import datetime
import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from posts import derived, review
from posts.models import Post, SearchDocument
from posts.searching import MAX_QUERY_LENGTH, clean_query
from tests.factories import PostFactory, SectionFactory
from tests.test_admin import change_form_data, change_url

pytestmark = pytest.mark.django_db

SEARCH = reverse("posts:search")


def titles(response):
    return [result.card.title for result in response.context["found"].results]


def search(client, q, **extra):
    response = client.get(SEARCH, {"q": q, **extra})
    assert response.status_code == 200, response.content[:500]
    return response


def test_title_matches_rank_above_summary_above_body(client):
    body = PostFactory(title="plain one", summary="nothing here", section_count=0)
    SectionFactory(post=body, heading="notes", body="we tuned the autovacuum daemon")
    PostFactory(title="plain two", summary="how autovacuum keeps tables lean")
    PostFactory(title="autovacuum explained", summary="a look inside")
    PostFactory(title="unrelated", summary="about caching")
    derived.index_for_search([body.pk])  # its section came after its write, as an edit's would

    assert titles(search(client, "autovacuum")) == [
        "autovacuum explained", "plain two", "plain one",
    ]


def test_imported_posts_are_found_and_deleted_ones_are_not(client, admin_client):
    call_command("generate_posts", count=20, seed=3, stdout=io.StringIO())
    post = Post.objects.published().order_by("pk").first()
    word = post.title.split()[0]

    assert post.title in titles(search(client, post.title))
    assert SearchDocument.objects.count() == Post.objects.count()

    admin_client.post(reverse("admin:posts_post_delete", args=[post.pk]), {"post": "yes"})

    assert post.title not in titles(search(client, word))
    assert not SearchDocument.objects.filter(post_id=post.pk).exists()


def test_an_admin_edit_changes_what_is_found(client, editor):
    post = PostFactory(title="about queues")
    client.force_login(editor)
    data = change_form_data(client, post)
    data["title"] = ["about zeppelins"]
    assert client.post(change_url(post), data).status_code == 302
    client.logout()

    assert titles(search(client, "zeppelins")) == ["about zeppelins"]
    assert titles(search(client, "queues")) == []


def test_readers_never_find_drafts_or_future_posts(client, editor):
    PostFactory(title="draft kestrel", draft=True)
    PostFactory(title="future kestrel", published_at=timezone.now() + datetime.timedelta(days=1))
    shown = PostFactory(title="shown kestrel")

    assert titles(search(client, "kestrel")) == ["shown kestrel"]
    review.unpublish_posts(Post.objects.filter(pk=shown.pk), editor)
    assert titles(search(client, "kestrel")) == []


def test_matches_are_highlighted_and_the_summary_is_escaped(client):
    PostFactory(title="markup", summary="the <script>alert(1)</script> pitfall of R&D migrations")

    page = search(client, "migrations").content.decode()

    assert "<mark>migrations</mark>" in page
    assert "<script>alert" not in page  # ts_headline drops tags; the rest is escaped
    assert "R&amp;D" in page


@pytest.mark.parametrize("count", [1, 25])
def test_a_search_is_one_query_however_many_match(client, count, django_assert_num_queries):
    PostFactory.create_batch(count, summary="tuning the planner")

    # 1 statement: the newest matches ranked, the page's cards with stack tags and highlights
    with django_assert_num_queries(1):
        response = search(client, "planner")

    assert response.context["found"].matches == count


def test_the_search_statement_is_planned_for_its_words_not_prepared(client):
    # psycopg prepares a statement run five times on a connection; PostgreSQL could then plan
    # every search alike, whatever its words' frequency (posts/searching.py _run_search).
    PostFactory(summary="tuning the planner")
    for _ in range(8):
        search(client, "planner")

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%websearch_to_tsquery%"],
        )
        assert cursor.fetchone() == (0,)
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        others = cursor.fetchone()[0]
    assert connection.connection.prepare_threshold is not None
    for _ in range(8):
        client.get(reverse("posts:list"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        assert cursor.fetchone()[0] > others  # the other pages' statements still are


@pytest.mark.parametrize(
    "q",
    ['"', '""', "-", "-planner", "planner or", "OR AND NOT", "the and of", "(planner",
     "naïve café 日本語", "'; DROP TABLE posts_post; --", "\x00planner", "planner\x00", "\u202e",
     "<script>", "a" * 5000, "*", ":*", "!", "&&||", "planner:*A"],
)
def test_odd_queries_get_a_page(client, q):
    PostFactory(summary="tuning the planner")

    response = search(client, q)

    assert "found" in response.context


def test_an_empty_query_explains_itself(client):
    page = search(client, "   ").content.decode()

    assert "Type a few words" in page
    assert search(client, "").status_code == 200
    assert client.get(SEARCH).status_code == 200


def test_a_long_query_is_cut_and_says_so(client):
    response = search(client, "planner " * 100)

    assert len(response.context["query"].text) <= MAX_QUERY_LENGTH
    assert "only its first 200 characters" in response.content.decode()


def test_clean_query_drops_control_characters_and_spaces():
    assert clean_query("  a\x00b\tc\n ").text == "a b c"
    assert clean_query("x" * 300).shortened
    assert not clean_query("\x00\x01")


def test_only_the_newest_matches_are_ranked_and_pages_are_bounded(client, settings):
    settings.SEARCH_WINDOW, settings.POSTS_PER_PAGE = 5, 2
    now = timezone.now()
    for days in range(8):
        PostFactory(summary="window test", published_at=now - datetime.timedelta(days=days))

    first = search(client, "window")
    found = first.context["found"]

    assert (found.matches, found.more, found.pages) == (5, True, 3)
    assert "More than 5 posts match" in first.content.decode()
    assert len(titles(search(client, "window", page=3))) == 1
    assert client.get(SEARCH, {"q": "window", "page": 4}).status_code == 404
    assert client.get(SEARCH, {"q": "window", "page": "x"}).status_code == 404
    assert client.get(SEARCH, {"q": "window", "page": "0"}).status_code == 404


def test_search_pages_are_cached_and_refreshed_by_any_write(
    client, settings, django_capture_on_commit_callbacks
):
    settings.PAGE_CACHE = True
    with django_capture_on_commit_callbacks(execute=True):
        PostFactory(title="first falcon")
    search(client, "falcon")
    assert search(client, "falcon").wsgi_request.cache_status == "hit"
    assert 'search' in search(client, "falcon")["xkey"].split()

    with django_capture_on_commit_callbacks(execute=True):
        PostFactory(title="second falcon")

    response = search(client, "falcon")
    assert response.wsgi_request.cache_status == "miss"
    assert sorted(titles(response)) == ["first falcon", "second falcon"]


def test_an_unknown_address_is_a_404_that_suggests_search(client):
    response = client.get("/no/such/address/")

    page = response.content.decode()
    assert response.status_code == 404
    assert "Resolver404" not in page and "tried" not in page
    assert 'action="/search/"' in page and "There is nothing at this address." in page


def test_a_missing_post_says_so(client):
    response = client.get("/posts/no-such-post/")

    assert response.status_code == 404
    assert "No post has that address." in response.content.decode()


def test_matches_older_than_the_newest_scanned_posts_are_found_too(client, settings):
    # The newest SEARCH_SCAN posts are read one by one; fewer matches there than a window, and
    # the rest come from the full-text index, newest first.
    settings.SEARCH_SCAN, settings.SEARCH_WINDOW, settings.POSTS_PER_PAGE = 3, 4, 10
    now = timezone.now()
    for n in range(8):
        PostFactory(title=f"{'osprey' if n in (0, 6, 7) else 'plain'} notes {n}",
                    published_at=now - datetime.timedelta(hours=n))
    assert sorted(titles(search(client, "osprey"))) == [
        "osprey notes 0", "osprey notes 6", "osprey notes 7"]

    # A word in every post: only the newest window (4) of its matches is ranked.
    found = search(client, "notes").context["found"]
    assert found.more and found.matches == 4
    assert sorted(titles(search(client, "notes"))) == [
        "osprey notes 0", "plain notes 1", "plain notes 2", "plain notes 3"]


def test_a_filtered_search_of_a_common_word_stays_among_the_newest_posts(client, settings):
    # Filters are tested on the word's matches among the newest SEARCH_SCAN posts; only a
    # word rare there is looked up in the whole index (so a filter never makes a common
    # word's search read all its matches).
    settings.SEARCH_SCAN, settings.SEARCH_WINDOW = 4, 2
    now = timezone.now()
    for n in range(8):
        PostFactory(title=f"{'gannet ' if n == 7 else ''}notes {n}",
                    difficulty="advanced" if n in (1, 7) else "beginner",
                    published_at=now - datetime.timedelta(hours=n))

    assert titles(search(client, "notes", difficulty="advanced")) == ["notes 1"]
    assert titles(search(client, "gannet", difficulty="advanced")) == ["gannet notes 7"]
    assert titles(search(client, "gannet", difficulty="beginner")) == []
