"""The Redis page cache and the HTTP caching headers (posts/caching.py, docs/caching.md).

Writes run inside django_capture_on_commit_callbacks(execute=True): their cache invalidation
runs after commit, which the test's own transaction never reaches.
"""

import dataclasses
import datetime
import io
from contextlib import contextmanager

import pytest
from django.core.management import call_command
from django.db import connection
from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone

from posts import caching, derived, review
from posts.exporting import record_from_post
from posts.models import Post, PostTag, SimilarPost, Tag
from posts.serialization import dumps, record_to_dict
from tests.factories import ImageSourceFactory, PostFactory, PostTagFactory, TagFactory
from tests.test_admin import (
    FormData,
    change_form_data,
    change_url,
    messages_of,
    run_action,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("page_cache")]


def cache_status(response) -> str:
    return response.wsgi_request.cache_status


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """Run a write as if its transaction committed: its invalidations run at the end.

    The test's earlier writes count as committed first: a transaction refreshes its keys once
    (posts/caching.py), so later writes would otherwise join their pending refresh.
    """

    @contextmanager
    def committed():
        run_pending_refreshes()
        with django_capture_on_commit_callbacks(execute=True):
            yield

    return committed


def run_pending_refreshes():
    """Refresh the keys of the test's writes so far, as their commit would have."""
    for _, callback, _ in connection.run_on_commit:
        if isinstance(callback, caching.PendingRefresh) and not callback.done:
            callback()


@pytest.fixture
def world():
    """Two similar posts sharing a rare tag, and an unrelated one with its own tag."""
    shared = TagFactory(name="shared rare tool")
    a = PostFactory(tag_count=0, title="first of two")
    b = PostFactory(tag_count=0, title="second of two")
    PostTagFactory(post=a, tag=shared)
    PostTagFactory(post=b, tag=shared)
    unrelated = PostFactory(tag_count=0, title="nothing in common")
    PostTagFactory(post=unrelated, tag=TagFactory(name="its own tool"))
    assert SimilarPost.objects.filter(post=b, similar=a).exists()
    assert not SimilarPost.objects.filter(post=unrelated).exists()
    return {"a": a, "b": b, "unrelated": unrelated, "shared": shared}


def warm(client, *urls):
    """Request each page until it is cached; return the statuses of a second pass."""
    for url in urls:
        assert client.get(url).status_code == 200
    return [cache_status(client.get(url)) for url in urls]


def tag_url(tag):
    return reverse("posts:tag", args=[tag.slug])


# Serving from the cache ------------------------------------------------------------------


@pytest.mark.parametrize("page", ["article", "home", "tag"])
def test_a_warm_page_is_served_without_sql(client, world, django_assert_num_queries, page):
    url = {
        "article": world["a"].get_absolute_url(),
        "home": reverse("posts:list"),
        "tag": tag_url(world["shared"]),
    }[page]
    first = client.get(url)
    assert cache_status(first) == "miss"

    with django_assert_num_queries(0):
        second = client.get(url)

    assert cache_status(second) == "hit"
    assert second.content == first.content
    assert second["ETag"] == first["ETag"]


def test_reader_pages_say_how_to_cache_them_and_what_they_show(client, world, settings):
    settings.CACHE_MAX_AGE, settings.CACHE_S_MAXAGE = 30, 3600
    settings.CACHE_STALE_WHILE_REVALIDATE, settings.CACHE_STALE_IF_ERROR = 15, 7200
    a, b = world["a"], world["b"]

    response = client.get(b.get_absolute_url())

    assert set(response["Cache-Control"].split(", ")) == {
        "public", "max-age=30", "s-maxage=3600", "stale-while-revalidate=15",
        "stale-if-error=7200",
    }
    assert response["ETag"].startswith('"') and response["Last-Modified"].endswith("GMT")
    assert "Cookie" not in response.get("Vary", "")
    assert not response.cookies
    keys = set(response["Surrogate-Key"].split())
    assert {f"post:{b.pk}", f"card:{a.pk}", f"tag:{world['shared'].pk}"} <= keys
    assert f"post:{a.pk}" not in keys  # a's own page may change without b's changing
    assert response["xkey"] == response["Surrogate-Key"]
    assert response["Cache-Tag"] == response["Surrogate-Key"].replace(" ", ",")
    listing = client.get(reverse("posts:list"))
    assert {"list:home", f"card:{a.pk}", f"card:{b.pk}"} <= set(listing["xkey"].split())


@pytest.mark.parametrize("hit", [False, True])
def test_a_matching_conditional_request_gets_a_304(client, world, hit, django_assert_num_queries):
    url = world["a"].get_absolute_url()
    etag = client.get(url)["ETag"]
    if not hit:
        caching.bump_versions([f"post:{world['a'].pk}"])

    with django_assert_num_queries(0 if hit else 1):
        response = client.get(url, headers={"If-None-Match": etag})

    assert response.status_code == 304
    assert cache_status(response) == ("hit" if hit else "miss")
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_staff_get_fresh_private_pages_that_are_never_stored(client, world, staff):
    url = world["a"].get_absolute_url()
    client.force_login(staff)

    for _ in range(2):
        response = client.get(url)
        assert cache_status(response) == "bypass"
        assert set(response["Cache-Control"].split(", ")) == {"private", "no-store"}
        assert "Surrogate-Key" not in response

    client.logout()
    client.cookies.clear()
    assert cache_status(client.get(url)) == "miss"  # the staff pages were not kept


@pytest.mark.parametrize("cookie", ["sessionid", "messages"])
def test_a_request_with_a_session_or_messages_is_not_served_a_shared_page(client, world, cookie):
    url = world["a"].get_absolute_url()
    warm(client, url)
    client.cookies[cookie] = "whatever"  # a session, or a flash message waiting for it

    response = client.get(url)

    assert cache_status(response) == "bypass"
    assert "no-store" in response["Cache-Control"]


def test_posts_and_other_responses_are_private(client, world, reviewer):
    client.force_login(reviewer)
    url = reverse("posts:review", args=[world["a"].slug, "flag"])

    response = client.post(url, {"reason": "check the numbers"})

    assert response.status_code == 303
    assert set(response["Cache-Control"].split(", ")) == {"private", "no-store"}


def test_not_found_pages_are_not_kept(client, world):
    response = client.get("/posts/no-such-post/")

    assert response.status_code == 404
    assert "public" not in response["Cache-Control"]
    assert cache_status(client.get("/posts/no-such-post/")) == "miss"


def test_a_page_rendered_while_its_content_changed_is_not_stored(client, world, monkeypatch):
    url = world["a"].get_absolute_url()
    render = caching.mark_public

    def change_during_render(response, keys):
        caching.bump_versions([f"post:{world['unrelated'].pk}"])  # any invalidation at all
        render(response, keys)

    monkeypatch.setattr(caching, "mark_public", change_during_render)
    response = client.get(url)
    assert cache_status(response) == "miss"
    assert response["Cache-Control"] == "no-cache"  # nor may the CDN keep it
    assert "xkey" not in response
    monkeypatch.setattr(caching, "mark_public", render)

    assert cache_status(client.get(url)) == "miss"
    assert cache_status(client.get(url)) == "hit"


# Invalidation: exactly the pages showing what changed ----------------------------------


def pages(world):
    return {
        "a": world["a"].get_absolute_url(),
        "b": world["b"].get_absolute_url(),  # shows a among its similar posts
        "unrelated": world["unrelated"].get_absolute_url(),
        "home": reverse("posts:list"),
        "shared tag": tag_url(world["shared"]),
        "unrelated tag": tag_url(Tag.objects.get(name="its own tool")),
    }


def statuses_after(client, world, write, commit):
    """Warm every page, run `write` as committed, and return each page's cache status."""
    run_pending_refreshes()
    urls = pages(world)
    assert warm(client, *urls.values()) == ["hit"] * len(urls)
    with commit():
        write()
    return {name: cache_status(client.get(url)) for name, url in urls.items()}


def test_an_admin_edit_refreshes_the_post_and_the_pages_showing_it(
    client, world, editor, commit
):
    editor_client = type(client)()
    editor_client.force_login(editor)

    def edit():
        data = change_form_data(editor_client, world["a"])
        data["title"] = ["a retitled first post"]
        response = editor_client.post(change_url(world["a"]), data)
        assert response.status_code == 302

    statuses = statuses_after(client, world, edit, commit)

    assert statuses == {
        "a": "miss", "b": "miss", "home": "miss", "shared tag": "miss",
        "unrelated": "hit", "unrelated tag": "hit",
    }
    assert b"a retitled first post" in client.get(world["b"].get_absolute_url()).content


@pytest.mark.parametrize("action", ["flag", "clear", "reviewed"])
def test_review_actions_refresh_only_the_posts_own_page(client, world, reviewer, action, commit):
    a = Post.objects.filter(pk=world["a"].pk)

    def act():
        if action == "flag":
            review.flag_posts(a, reviewer, "check")
        elif action == "clear":
            a.update(needs_human_review=True)
            review.clear_flags(a, reviewer)
        else:
            review.mark_reviewed(a, reviewer)

    statuses = statuses_after(client, world, act, commit)

    assert statuses == {
        "a": "miss", "b": "hit", "home": "hit", "shared tag": "hit",
        "unrelated": "hit", "unrelated tag": "hit",
    }


def test_flagging_shows_on_the_page_at_once(client, world, reviewer, commit):
    url = world["a"].get_absolute_url()
    assert "X-Robots-Tag" not in client.get(url)
    with commit():
        review.flag_posts(Post.objects.filter(pk=world["a"].pk), reviewer, "check")

    assert client.get(url)["X-Robots-Tag"] == "noindex"


def test_unpublishing_refreshes_the_lists_it_leaves(client, world, editor, commit):
    statuses = statuses_after(
        client, world,
        lambda: review.unpublish_posts(Post.objects.filter(pk=world["a"].pk), editor), commit,
    )

    assert statuses["a"] == "miss" and statuses["b"] == "miss"
    assert statuses["home"] == "miss" and statuses["shared tag"] == "miss"
    assert statuses["unrelated"] == "hit" and statuses["unrelated tag"] == "hit"
    assert client.get(world["a"].get_absolute_url()).status_code == 404
    assert world["a"].title.encode() not in client.get(world["b"].get_absolute_url()).content


def test_publishing_refreshes_the_lists_it_joins(client, world, editor, commit):
    draft = PostFactory(tag_count=0, draft=True, title="a draft about to go out")
    PostTagFactory(post=draft, tag=world["shared"])

    statuses = statuses_after(
        client, world,
        lambda: review.publish_posts(Post.objects.filter(pk=draft.pk), editor), commit,
    )

    # It enters a's and b's similar lists, the home page and the shared tag's page.
    assert statuses == {
        "a": "miss", "b": "miss", "home": "miss", "shared tag": "miss",
        "unrelated": "hit", "unrelated tag": "hit",
    }
    assert b"a draft about to go out" in client.get(reverse("posts:list")).content


def test_deleting_refreshes_the_pages_that_showed_it(client, world, admin_user, commit):
    admin_client = type(client)()
    admin_client.force_login(admin_user)

    statuses = statuses_after(
        client, world,
        lambda: admin_client.post(
            reverse("admin:posts_post_delete", args=[world["a"].pk]), {"post": "yes"}
        ),
        commit,
    )

    assert statuses["b"] == "miss" and statuses["home"] == "miss"
    assert statuses["unrelated"] == "hit" and statuses["unrelated tag"] == "hit"


def test_renaming_a_tag_refreshes_the_pages_that_show_it(client, world, admin_user, commit):
    admin_client = type(client)()
    admin_client.force_login(admin_user)
    tag = world["shared"]
    url = reverse("admin:posts_tag_change", args=[tag.pk])

    def rename():
        data = {"kind": tag.kind, "name": "renamed tool", "slug": tag.slug}
        assert admin_client.post(url, data).status_code == 302

    statuses = statuses_after(client, world, rename, commit)

    assert statuses == {
        "a": "miss", "b": "miss", "home": "hit", "shared tag": "miss",
        "unrelated": "hit", "unrelated tag": "hit",
    }
    assert b"renamed tool" in client.get(world["a"].get_absolute_url()).content


def import_text(records):
    return "".join(dumps(record_to_dict(record)) + "\n" for record in records)


def test_reimporting_a_changed_post_refreshes_its_pages(client, world, tmp_path, commit):
    record = record_from_post(Post.objects.for_export().get(pk=world["a"].pk))
    changed = dataclasses.replace(record, title="imported anew")
    path = tmp_path / "posts.jsonl"
    path.write_text(import_text([changed]))

    statuses = statuses_after(
        client, world, lambda: call_command("import_posts", str(path), stdout=io.StringIO()),
        commit,
    )

    assert statuses["a"] == "miss" and statuses["b"] == "miss" and statuses["home"] == "miss"
    assert statuses["unrelated"] == "hit" and statuses["unrelated tag"] == "hit"
    assert b"imported anew" in client.get(world["a"].get_absolute_url()).content


@pytest.mark.django_db(transaction=True)  # each batch's transaction commits for real
def test_an_import_invalidates_once_per_batch(monkeypatch):
    refreshed = []
    monkeypatch.setattr(caching, "refresh", lambda keys: refreshed.append(set(keys)))

    call_command("generate_posts", count=30, seed=5, batch_size=10, stdout=io.StringIO())

    assert len(refreshed) == 3  # one per batch of 10, not one per post
    assert all("list:home" in keys for keys in refreshed)
    assert set().union(*refreshed) >= {
        f"post:{pk}" for pk in Post.objects.values_list("pk", flat=True)
    }


def test_an_admin_bulk_action_invalidates_once(client, world, reviewer, commit, monkeypatch):
    with commit():
        PostFactory.create_batch(20)
    refreshed = []
    monkeypatch.setattr(caching, "refresh", lambda keys: refreshed.append(set(keys)))
    client.force_login(reviewer)

    with commit():
        response = run_action(
            client, "flag", Post.objects.all()[:1], select_across=True, reason="bulk check",
            follow=True,
        )

    assert messages_of(response) == ["23 posts flagged for review."]
    assert len(refreshed) == 1
    # Each post's page, and the feeds and sitemaps (a flag takes a post out of them).
    assert refreshed[0] == {
        "indexable", *(f"post:{pk}" for pk in Post.objects.values_list("pk", flat=True))
    }



def test_a_scheduled_post_joins_the_cached_pages_when_its_time_comes(client, world, commit):
    derived.release_scheduled(now=timezone.now() - datetime.timedelta(seconds=10))  # last run
    later = timezone.now() + datetime.timedelta(hours=1)
    with commit():
        scheduled = PostFactory(tag_count=0, published_at=later, title="the scheduled one")
        PostTagFactory(post=scheduled, tag=world["shared"])
    run_pending_refreshes()
    urls = pages(world)
    assert warm(client, *urls.values()) == ["hit"] * len(urls)
    assert b"the scheduled one" not in client.get(urls["home"]).content
    # Its hour passes (moved back instead: the clock is the test's only way round).
    past = timezone.now() - datetime.timedelta(seconds=1)
    Post.objects.filter(pk=scheduled.pk).update(published_at=past)
    PostTag.objects.filter(post=scheduled).update(listed_at=past)
    assert cache_status(client.get(urls["home"])) == "hit"  # nothing was written to say so

    out = io.StringIO()
    with commit():
        call_command("release_scheduled", stdout=out)

    assert out.getvalue() == "released 1 scheduled posts onto cached pages\n"
    statuses = {name: cache_status(client.get(url)) for name, url in urls.items()}
    assert statuses == {
        "a": "miss", "b": "miss", "home": "miss", "shared tag": "miss",  # its lists, and the
        "unrelated": "hit", "unrelated tag": "hit",                     # similar lists
    }
    assert b"the scheduled one" in client.get(urls["home"]).content
    assert b"the scheduled one" in client.get(world["a"].get_absolute_url()).content
    with commit():
        assert derived.release_scheduled() == []  # each post is released once


def test_editing_a_figure_refreshes_only_its_posts_page(client, world, admin_user, commit):
    with commit():
        figure = ImageSourceFactory(post=world["a"], caption="the old caption")
    admin_client = type(client)()
    admin_client.force_login(admin_user)
    url = reverse("admin:posts_imagesource_change", args=[figure.pk])

    def edit():
        data = FormData(admin_client.get(url).text, "imagesource_form").data
        data["caption"] = ["a clearer caption"]
        response = admin_client.post(url, data)
        assert response.status_code == 302, response.content[:2000]

    statuses = statuses_after(client, world, edit, commit)

    assert statuses == {
        "a": "miss", "b": "hit", "home": "hit", "shared tag": "hit",
        "unrelated": "hit", "unrelated tag": "hit",
    }
    assert b"a clearer caption" in client.get(world["a"].get_absolute_url()).content


def test_unread_query_parameters_share_the_page(client, world, django_assert_num_queries):
    url = world["a"].get_absolute_url()
    client.get(url)

    with django_assert_num_queries(0):
        response = client.get(url + "?utm_source=newsletter&ref=x")

    assert cache_status(response) == "hit"
    assert cache_status(client.get(reverse("posts:list") + "?page=last")) != "hit"


def test_a_page_never_records_a_missing_version(client, world):
    url = world["a"].get_absolute_url()
    caching.cache.clear()  # as after a Redis restart: no versions at all

    client.get(url)

    page = caching.cache.get(caching.page_key(client.get(url).wsgi_request))
    assert page.keys and None not in page.versions
    caching.cache.delete(caching.VERSION_PREFIX + f"post:{world['a'].pk}")  # evicted
    assert cache_status(client.get(url)) == "miss"


def test_a_public_response_that_sets_a_cookie_is_made_private(rf):
    """Middleware after the view (CSRF, sessions) may add a cookie to a reader's page."""

    def view_then_a_cookie(request):
        response = HttpResponse("page")
        caching.mark_public(response, {"post:1"})
        response.set_cookie("csrftoken", "fresh")
        return response

    response = caching.PrivateByDefaultMiddleware(view_then_a_cookie)(rf.get("/"))

    assert response["Cache-Control"] == "private, no-store"
    assert "xkey" not in response and "Surrogate-Key" not in response


@pytest.mark.parametrize("command", ["refresh_similar", "recount_posts"])
def test_repair_commands_refresh_what_they_recompute(world, monkeypatch, commit, command):
    refreshed = []
    run_pending_refreshes()
    monkeypatch.setattr(caching, "refresh", lambda keys: refreshed.append(set(keys)))

    with commit():
        call_command(command, "--workers=0" if command == "refresh_similar" else [],
                     stdout=io.StringIO())

    keys = set().union(*refreshed)
    if command == "refresh_similar":
        assert {f"post:{p.pk}" for p in (world["a"], world["b"], world["unrelated"])} <= keys
    else:
        assert "list:home" in keys
        assert {f"tag-list:{pk}" for pk in Tag.objects.values_list("pk", flat=True)} <= keys
