"""Reader-facing pages and the reviewers' page actions: thin views composing QuerySet methods."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import InvalidPage, Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from posts import review
from posts.models import Post, Tag

# What each page action needs and does: (permission, function, message).
REVIEW_ACTIONS = {
    "flag": ("posts.flag_post", review.flag_posts, "Flagged for human review."),
    "clear": ("posts.flag_post", review.clear_flags, "Review flag cleared."),
    "reviewed": ("posts.review_post", review.mark_reviewed, "Marked reviewed."),
}
REVIEW_PERMISSIONS = ("posts.flag_post", "posts.review_post")


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
    """One article (5 queries for readers: post + revision, tag links, sections, figures,
    similar posts). Staff also see drafts, why a post is kept out of search engines, and the
    review form when they may use it."""
    posts = Post.objects.all() if request.user.is_staff else Post.objects.published()
    post = get_object_or_404(posts.for_article_page(), slug=slug)
    similar = Post.objects.published().similar_to(post, settings.SIMILAR_POSTS_COUNT)
    noindex_reasons = post.noindex_reasons()
    response = render(
        request,
        "posts/post_detail.html",
        {
            "post": post,
            "similar_posts": similar,
            "noindex_reasons": noindex_reasons,
            "can_review": request.user.is_authenticated
            and any(request.user.has_perm(name) for name in REVIEW_PERMISSIONS),
        },
    )
    if noindex_reasons:
        response.headers["X-Robots-Tag"] = "noindex"
    return response


@require_POST
def review_post(request, slug, action):
    """Flag, clear or mark reviewed one post from its page, then go back to it."""
    if action not in REVIEW_ACTIONS:
        raise Http404(f"No review action {action!r}; expected one of {', '.join(REVIEW_ACTIONS)}.")
    permission, apply, done = REVIEW_ACTIONS[action]
    if not request.user.is_authenticated:
        raise PermissionDenied("Log in as a reviewer to review posts.")
    if not request.user.has_perm(permission):
        raise PermissionDenied("Your account may not do this; ask an administrator to add it "
                               "to the Reviewers group.")
    post = get_object_or_404(Post.objects.only("id", "slug"), slug=slug)
    reason = request.POST.get("reason", "")
    try:
        changed = apply(Post.objects.filter(pk=post.pk), request.user, reason)
    except review.ReviewError as error:
        return HttpResponse(f"{error}\n", status=400, content_type="text/plain; charset=utf-8")
    if changed:
        messages.success(request, done)
    else:
        messages.info(request, "Nothing to change: the post was already in that state.")
    return HttpResponseRedirect(post.get_absolute_url(), status=303)


@login_required
def review_queue(request):
    """Flagged posts, oldest flag first (5 queries: user, 2 permissions, count, page)."""
    if not any(request.user.has_perm(name) for name in REVIEW_PERMISSIONS):
        raise PermissionDenied("The review queue is for the Reviewers group.")
    page = paginate(request, Post.objects.flagged().for_review_queue())
    return render(request, "posts/review_queue.html", {"page": page})
