import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from posts import derived
from posts.models import Post, PostTag, PublicationStatus
from tests.factories import PostFactory

pytestmark = pytest.mark.django_db

# More values than one statement may carry as separate server-side parameters (65,535).
MANY = 70_000


def test_in_lists_past_the_parameter_limit_work():
    post = PostFactory(tag_count=2)
    ids = [post.pk, *range(10**9, 10**9 + MANY)]

    assert list(Post.objects.filter(pk__in=ids).values_list("pk", flat=True)) == [post.pk]
    assert PostTag.objects.filter(post_id__in=ids).count() == 2
    assert PostTag.objects.filter(post__in=ids).count() == 2
    assert Post.objects.filter(slug__in=[post.slug, *map(str, range(MANY))]).count() == 1
    assert Post.objects.filter(pk__in=[None, post.pk]).count() == 1
    assert Post.objects.filter(pk__in=[]).count() == 0


def test_derived_data_moves_for_more_posts_than_parameters():
    posts = PostFactory.create_batch(3, tag_count=2)
    ids = [*(post.pk for post in posts), *range(10**9, 10**9 + MANY)]
    before = derived.contribution(ids)
    Post.objects.filter(pk=posts[0].pk).update(status=PublicationStatus.DRAFT)

    derived.posts_changed(ids, before)

    assert derived.listed_post_count() == 2
    assert not PostTag.objects.filter(post=posts[0], listed_at__isnull=False).exists()


def test_a_list_of_values_is_one_array_parameter_and_a_subquery_stays_a_subquery():
    with CaptureQueriesContext(connection) as captured:
        list(Post.objects.filter(pk__in=[1, 2, 3]))
        list(PostTag.objects.filter(post_id__in=[1, 2]))
        list(Post.objects.filter(pk__in=PostTag.objects.values("post_id")))
    first, second, third = (query["sql"] for query in captured.captured_queries)
    assert '"posts_post"."id" = ANY(' in first
    assert '"posts_posttag"."post_id" = ANY(' in second
    assert " IN (SELECT " in third
