"""The site's URLs plus what bench/site_bench.py compares pages with.

- /bench/hello/: a trivial Django view, the ceiling of this machine and server.
- /bench/naive/...: the article and home pages rendered from the same templates with querysets
  that have no select_related/prefetch_related (the N+1 version a first draft would have).
"""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import include, path

from posts.models import ListedTag, Post, SimilarPost
from posts.pagination import Page


def hello(request):
    return HttpResponse("hello", content_type="text/plain")


def naive_article(request, slug):
    post = get_object_or_404(Post.objects.published(), slug=slug)
    # Each link's tag, the revision, and each similar post are loaded when first touched.
    post.all_tag_links = list(post.tag_links.order_by("role", "position"))
    post.section_list = list(post.sections.order_by("position"))
    post.figure_list = list(post.figures.order_by("position"))
    entries = SimilarPost.objects.filter(post=post).order_by("-score")
    similar = [entry.similar for entry in entries]
    similar = [other for other in similar if other.status == "published"][:6]
    context = {"post": post, "similar_posts": similar, "noindex_reasons": post.noindex_reasons()}
    return render(request, "posts/post_detail.html", context)


def naive_list(request):
    posts = list(Post.objects.published().newest_first()[:20])
    for post in posts:
        links = post.tag_links.filter(role="stack").order_by("position")
        post.stack_tags = [ListedTag(link.tag_id, link.tag.name, link.tag.slug) for link in links]
    page = Page(posts, newer=None, older=None, is_first=True)
    total = Post.objects.published().count()
    return render(request, "posts/post_list.html", {"page": page, "total": total})


urlpatterns = [
    path("bench/hello/", hello),
    path("bench/naive/", naive_list),
    path("bench/naive/posts/<slug:slug>/", naive_article),
    path("", include("alphanode.urls")),
]
