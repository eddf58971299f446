"""Reader-facing pages: thin views composing PostQuerySet methods."""

from django.conf import settings
from django.core.paginator import InvalidPage, Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, render

from posts.models import Post, Tag


def paginate(request, queryset):
    """Return the requested page of `queryset`; a bad or out-of-range page number is a 404."""
    paginator = Paginator(queryset, settings.POSTS_PER_PAGE)
    try:
        return paginator.page(request.GET.get("page", 1))
    except InvalidPage as error:
        raise Http404(
            f"No such page: {error}. Pages run from 1 to {paginator.num_pages}."
        ) from None


def post_list(request):
    """Latest published posts (3 queries: count, posts, their stack tags)."""
    page = paginate(request, Post.objects.published().newest_first().for_listing())
    return render(request, "posts/post_list.html", {"page": page})


def tag_detail(request, slug):
    """Published posts with one tag (4 queries: tag, count, posts, their stack tags)."""
    tag = get_object_or_404(Tag, slug=slug)
    page = paginate(request, Post.objects.published().with_tag(tag).newest_first().for_listing())
    return render(request, "posts/tag_detail.html", {"tag": tag, "page": page})


def post_detail(request, slug):
    """One article (5 queries: post + revision, tag links, sections, figures, similar posts)."""
    post = get_object_or_404(Post.objects.published().for_article_page(), slug=slug)
    similar = Post.objects.published().similar_to(post, settings.SIMILAR_POSTS_COUNT)
    return render(request, "posts/post_detail.html", {"post": post, "similar_posts": similar})
