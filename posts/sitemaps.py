"""/sitemap.xml and /robots.txt: what search engines may index, in sections of bounded cost.

The sitemap is an index of sections. A section of posts covers a fixed range of post ids
(SITEMAP_SECTION_SIZE of them, 50,000 by default: the most one sitemap file may list), so a
section is one range read of the primary key, with no COUNT and no OFFSET, at any size; a
section lists the indexable posts in its range (PostQuerySet.indexable(): published, not
flagged, reviewed), so it may hold fewer. Tag pages with posts are one more section.
Django's own sitemaps framework is not used: it counts every item to number its pages and
reads each page with OFFSET, which at a million posts is a scan per section.
"""

from django.conf import settings
from django.db.models import Max
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from alphanode.observability import query_budget
from posts import caching
from posts.caching import cached_page, depends_on
from posts.models import Post, Tag

XML = "application/xml; charset=utf-8"


def absolute(request, path):
    return request.build_absolute_uri(path)


def section_count():
    """How many post sections the sitemap has: one per id range up to the newest post."""
    newest = Post.objects.aggregate(newest=Max("id"))["newest"] or 0
    return newest // settings.SITEMAP_SECTION_SIZE + 1


@query_budget(1)
@cached_page
def sitemap_index(request):
    """The sitemap index: the tag section, then one section per range of post ids (1 query)."""
    depends_on(request, caching.INDEXABLE)
    sections = [absolute(request, reverse("sitemap_tags"))]
    sections += [
        absolute(request, reverse("sitemap_posts", args=[number]))
        for number in range(section_count())
    ]
    return render(request, "sitemap_index.xml", {"sections": sections}, content_type=XML)


@query_budget(2)
@cached_page
def sitemap_posts(request, number):
    """Section `number`: the indexable posts with ids in its range, with their last change
    (1 query; 2 for an empty section, to tell one past the end, a 404)."""
    size = settings.SITEMAP_SECTION_SIZE
    depends_on(request, caching.INDEXABLE)
    posts = (
        Post.objects.indexable()
        .filter(id__gte=number * size, id__lt=(number + 1) * size)
        .order_by("id")
        .values_list("slug", "updated_at")
    )
    urls = [
        (absolute(request, reverse("posts:detail", args=[slug])), updated_at)
        for slug, updated_at in posts.iterator(chunk_size=5000)
    ]
    if not urls and number > 0 and number >= (sections := section_count()):
        raise Http404(f"No sitemap section {number}: there are {sections}, from 0.")
    return render(request, "sitemap.xml", {"urls": urls}, content_type=XML)


@query_budget(1)
@cached_page
def sitemap_tags(request):
    """The home page, the tag index and each tag page with posts (at most a section's size)."""
    depends_on(request, caching.INDEXABLE, caching.TAG_INDEX)
    tags = Tag.objects.filter(post_count__gt=0).order_by("-post_count", "id").values_list(
        "slug", flat=True
    )[: settings.SITEMAP_SECTION_SIZE - 2]
    urls = [(absolute(request, reverse("posts:list")), None),
            (absolute(request, reverse("posts:tags")), None)]
    urls += [(absolute(request, reverse("posts:tag", args=[slug])), None) for slug in tags]
    return render(request, "sitemap.xml", {"urls": urls}, content_type=XML)


ROBOTS = """User-agent: *
Disallow: /admin/
Disallow: /review/
Disallow: /search/

Sitemap: {sitemap}
"""


@query_budget(0)
@cached_page
def robots_txt(request):
    """What crawlers may fetch, and where the sitemap is."""
    text = ROBOTS.format(sitemap=absolute(request, reverse("sitemap")))
    return HttpResponse(text, content_type="text/plain; charset=utf-8")
