"""Atom and RSS feeds of the latest indexable posts, of the whole site and of each tag.

Django's syndication framework builds them; the querysets below give it every value it asks
for in one query per feed (two for a tag's: the tag, then its posts), whatever the number of
items. Only indexable posts are listed (PostQuerySet.indexable(): published, not flagged,
reviewed), as in the sitemap: a feed is read by search engines too.
"""

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.http import Http404
from django.utils.feedgenerator import Atom1Feed, Rss201rev2Feed

from alphanode.observability import query_budget
from posts import caching
from posts.caching import cached_page, depends_on
from posts.models import Post, PostTag, Tag

FEED_FIELDS = ("id", "title", "slug", "summary", "published_at", "updated_at")


def latest_indexable(posts):
    """The newest FEED_SIZE indexable posts among `posts`, with only what a feed entry shows."""
    return list(
        posts.indexable().only(*FEED_FIELDS).order_by("-published_at", "-id")[
            : settings.FEED_SIZE
        ]
    )


class LatestPostsFeed(Feed):
    feed_type = Atom1Feed
    title = "alphanode: latest posts"
    subtitle = "Technical articles on shipping software carefully."
    description = subtitle  # RSS's name for it

    def link(self):
        return "/"

    def items(self):
        return latest_indexable(Post.objects.all())

    def item_title(self, item):
        return item.title

    def item_description(self, item):
        return item.summary

    def item_pubdate(self, item):
        return item.published_at

    def item_updateddate(self, item):
        return item.updated_at

    def item_guid(self, item):
        return f"alphanode:post:{item.pk}"  # stable when a post's slug changes

    item_guid_is_permalink = False


class TagFeed(LatestPostsFeed):
    def get_object(self, request, slug):
        tag = Tag.objects.filter(slug=slug).only("id", "name", "slug").first()
        if tag is None:
            raise Http404("No tag has that address.")
        depends_on(request, caching.tag_key(tag.pk))
        return tag

    def title(self, tag):
        return f"alphanode: {tag.name}"

    def subtitle(self, tag):
        return f"The latest alphanode posts about {tag.name}."

    description = subtitle

    def link(self, tag):
        return tag.get_absolute_url()

    def items(self, tag):
        # The tag's newest links first (its (tag, listed_at, post) index), then those posts.
        links = PostTag.objects.listed(tag).order_by("-listed_at", "-post_id")
        # A post carrying the tag in two roles is two links: 4 links per entry leave room for
        # those and for posts that are not indexable (a feed of the tag's newest 80 links).
        recent = links.values("post_id")[: settings.FEED_SIZE * 4]
        return latest_indexable(Post.objects.filter(pk__in=recent))


class LatestPostsRssFeed(LatestPostsFeed):
    feed_type = Rss201rev2Feed


class TagRssFeed(TagFeed):
    feed_type = Rss201rev2Feed


def feed_view(feed_class, budget):
    """The view of `feed_class`, cached like the pages and refreshed by any write or review."""
    feed = feed_class()

    @query_budget(budget)
    @cached_page
    def view(request, *args, **kwargs):
        depends_on(request, caching.INDEXABLE)
        return feed(request, *args, **kwargs)

    return view


latest_atom = feed_view(LatestPostsFeed, 1)
latest_rss = feed_view(LatestPostsRssFeed, 1)
tag_atom = feed_view(TagFeed, 2)
tag_rss = feed_view(TagRssFeed, 2)
