"""View counts: counted in Redis on the request, folded into PostgreSQL (posts/viewcounts.py)."""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from posts import viewcounts
from posts.models import Post, ViewCountFold
from tests.factories import PostFactory

pytestmark = pytest.mark.django_db


def view_count(post):
    return Post.objects.values_list("view_count", flat=True).get(pk=post.pk)


def beacon(client, post):
    return client.post(reverse("posts:count_view", args=[post.pk]))


def test_counting_a_view_writes_no_database_row(client, django_assert_num_queries):
    post = PostFactory(view_count=10)

    with django_assert_num_queries(0):
        for _ in range(3):
            assert beacon(client, post).status_code == 204

    assert view_count(post) == 10
    assert viewcounts.redis().hget(viewcounts.PENDING, post.pk) == b"3"


def test_the_article_page_asks_for_the_beacon(client):
    post = PostFactory()

    page = client.get(post.get_absolute_url()).text

    assert f'data-view-url="/posts/{post.pk}/view"' in page
    assert '<script src="/static/js/views.js" defer></script>' in page


def test_only_a_post_counts_a_view(client):
    post = PostFactory()

    assert client.get(reverse("posts:count_view", args=[post.pk])).status_code == 405


def test_folding_adds_the_counts_once():
    first, second = PostFactory(view_count=10), PostFactory(view_count=0)
    for _ in range(4):
        viewcounts.count_view(first.pk)
    viewcounts.count_view(second.pk)
    out = io.StringIO()

    call_command("fold_view_counts", stdout=out)
    call_command("fold_view_counts", stdout=out)

    assert (view_count(first), view_count(second)) == (14, 1)
    assert out.getvalue().splitlines() == ["folded 5 views of 2 posts", "folded 0 views of 0 posts"]
    assert not viewcounts.redis().exists(viewcounts.PENDING)


def test_views_counted_during_a_fold_wait_for_the_next_one():
    post = PostFactory(view_count=0)
    viewcounts.count_view(post.pk)
    client = viewcounts.redis()
    key = viewcounts.FOLDING + "interrupted"
    client.rename(viewcounts.PENDING, key)  # a fold took the counts and stopped there
    viewcounts.count_view(post.pk)  # counted meanwhile: a new pending hash

    assert viewcounts.fold_view_counts() == (2, 2)  # the interrupted fold's, then the new one
    assert view_count(post) == 2
    assert not list(client.scan_iter(match=viewcounts.FOLDING + "*"))


def test_a_fold_applied_but_not_cleaned_up_is_not_added_twice():
    post = PostFactory(view_count=0)
    viewcounts.count_view(post.pk)
    client = viewcounts.redis()
    key = viewcounts.FOLDING + "applied"
    client.rename(viewcounts.PENDING, key)
    viewcounts.fold(client, key)
    client.hset(key, post.pk, 1)  # as if the process died before deleting its fold key

    assert viewcounts.fold_view_counts() == (0, 0)
    assert view_count(post) == 1
    assert not client.exists(key)
    assert ViewCountFold.objects.get(token="applied").views == 1


def test_two_folds_at_once_count_each_view_once():
    post = PostFactory(view_count=0)
    for _ in range(3):
        viewcounts.count_view(post.pk)
    client = viewcounts.redis()
    key = viewcounts.FOLDING + "first"
    client.rename(viewcounts.PENDING, key)  # fold A has taken the counts...

    viewcounts.fold_view_counts()  # ...fold B starts, and finishes A's key as left over
    assert viewcounts.fold(client, key) == (0, 0)  # A goes on: already applied

    assert view_count(post) == 3


def test_counts_of_deleted_posts_are_dropped():
    post = PostFactory()
    viewcounts.count_view(post.pk)
    viewcounts.count_view(999_999)

    assert viewcounts.fold_view_counts() == (2, 2)
    assert view_count(post) == post.view_count + 1


def test_an_impossible_id_is_refused_and_cannot_stop_folding(client):
    post = PostFactory(view_count=0)
    huge = 2**64

    assert client.post(f"/posts/{huge}/view").status_code == 404
    viewcounts.count_view(post.pk)
    viewcounts.redis().hset(viewcounts.PENDING, "99999999999999999999", 1)  # not ours
    viewcounts.redis().hset(viewcounts.PENDING, "nonsense", 1)

    assert viewcounts.fold_view_counts() == (1, 1)
    assert view_count(post) == 1
