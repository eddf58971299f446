"""Reader-facing pages and the reviewers' page actions: thin views composing QuerySet methods."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import InvalidPage
from django.db import connection
from django.db.models import Exists, F, OuterRef, Window
from django.db.models.functions import RowNumber
from django.http import (
    Http404,
    HttpResponse,
    HttpResponsePermanentRedirect,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.functional import cached_property
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from alphanode.observability import query_budget
from posts import caching, derived, reading, review, searching, viewcounts
from posts.caching import cached_page, depends_on
from posts.filters import BadFilter, Filters
from posts.models import Post, PostTag, Tag, TagKind, cards
from posts.pagination import (
    NEWER,
    BadPosition,
    LookaheadPaginator,
    Position,
    legacy_cursor,
    page_at,
    seek,
)
from posts.reading import NO_FILTERS

# What each page action needs and does: (permission, function, message).
REVIEW_ACTIONS = {
    "flag": ("posts.flag_post", review.flag_posts, "Flagged for human review."),
    "clear": ("posts.flag_post", review.clear_flags, "Review flag cleared."),
    "reviewed": ("posts.review_post", review.mark_reviewed, "Marked reviewed."),
}
REVIEW_PERMISSIONS = ("posts.flag_post", "posts.review_post")


def paginate(request, queryset):
    """Return the requested page of `queryset`, counting at most LookaheadPaginator's pages
    past it; a bad or out-of-range page number is a 404."""
    number = request.GET.get("page", 1)
    paginator = LookaheadPaginator(queryset, settings.POSTS_PER_PAGE, number)
    try:
        return paginator.page(number)
    except InvalidPage as error:
        raise Http404(
            f"No such page: {error}. Pages run from 1 to {paginator.num_pages}."
        ) from None


def keyset_list(request, cards, template, context):
    """Render the page of the newest-first list `cards` (a CardList) that the query string asks
    for, with `context` and the list's `total` or `tag`.

    Old ?page=N links and a ?before= that reaches the newest posts redirect; a cursor, page or
    filter that cannot be read is a 404 saying what was expected, as is an unknown tag.
    """
    try:
        position = Position.from_query(request.GET)
    except BadPosition as error:
        raise Http404(str(error)) from None
    filters = cards.filters
    size = settings.POSTS_PER_PAGE
    if position.legacy_page is not None:
        if filters:
            raise Http404("Old page numbers are for lists without filters; use the links "
                          "under a filtered list.")
        return legacy_redirect(request, cards, position.legacy_page, size)
    page = page_at(cards, position, size)
    if filters:
        # A post can start passing a filter (a new tool, another difficulty) without its date
        # or the list's tags moving: any write refreshes a filtered list, as it does search.
        depends_on(request, caching.SEARCH)
    context = {
        **context, "total": cards.total, "tag": cards.tag, "filters": filters,
    }
    depends_on(request, *card_keys(page.object_list))
    if position.cursor is not None and (
        not page.object_list or (position.direction == NEWER and page.newer is None)
    ):
        # Nothing left that way, or the newest posts: the list's own first page says it best.
        return HttpResponseRedirect(request.path + (filters.query() if filters else ""))
    return render(request, template, {**context, "page": page})


def list_filters(request):
    """The filters of the query string; a value that cannot be read is a 404 saying why."""
    try:
        return Filters.from_query(request.GET)
    except BadFilter as error:
        raise Http404(str(error)) from None


def legacy_redirect(request, cards, number, size):
    """Redirect old page `number` of `cards` to the cursor of the same place (2 queries)."""
    if number == 1:
        return HttpResponsePermanentRedirect(request.path)
    # Past the stored count, no offset scan; a temporary redirect, since the place an old page
    # number names moves as posts are published.
    cursor = None
    if number <= -(-cards.total // size):
        cursor = legacy_cursor(cards, number, size)
    if cursor is None:
        raise Http404(f"No page {number}: the list is shorter.")
    return HttpResponseRedirect(f"{request.path}?after={cursor}")


def reads_in_one_statement():
    """Whether the reader pages use posts/reading.py (PostgreSQL) rather than the ORM paths."""
    return connection.vendor == "postgresql"


class CardList:
    """The cards of published posts, newest first, of one tag or of all: a pagination.Seeker
    that also knows what the page says about the whole list (its stored total or tag).

    On PostgreSQL each call is one statement (reading.list_page) that also reads the total or
    the tag, so a list page is one query. Elsewhere (the ORM paths, also the tests' reference)
    the tag and the total are a query of their own, and a page of cards two.
    """

    def __init__(self, tag_slug=None, filters=NO_FILTERS):
        self.tag_slug = tag_slug
        self.filters = filters
        self.found = None  # the last reading.ListPage, which carries the total or the tag

    def __call__(self, position, offset, limit):
        if not reads_in_one_statement():
            return self.cards_orm(position, offset, limit)
        found = reading.list_page(
            position, offset, limit, now=timezone.now(), tag_slug=self.tag_slug,
            filters=self.filters,
        )
        if found is None:
            raise Http404("No tag has that address.")
        self.found = found
        return found.cards

    @cached_property
    def tag(self):
        """The tag of a tag list, with its stored count (None for the list of all posts)."""
        if self.tag_slug is None:
            return None
        if self.found is not None:
            return self.found.tag
        tag = reading.tag(self.tag_slug) if reads_in_one_statement() else (
            Tag.objects.filter(slug=self.tag_slug).first()
        )
        if tag is None:
            raise Http404("No tag has that address.")
        return tag

    @cached_property
    def total(self):
        """How many posts the list has in all, from the stored counts."""
        if self.tag_slug is not None:
            return self.tag.post_count
        if self.found is not None:
            return self.found.total
        return derived.listed_post_count()

    def cards_orm(self, position, offset, limit):
        if self.tag_slug is None:
            posts = Post.objects.published().for_listing()
        elif self.filters:
            posts = Post.objects.published().for_listing().filter(
                Exists(PostTag.objects.filter(post=OuterRef("pk"), tag=self.tag))
            )
        else:
            links = seek(PostTag.objects.listed(self.tag), ("listed_at", "post_id"), position)
            links = links.values("post_id").distinct()[: offset + limit]
            posts = Post.objects.among_links(links).for_listing()
        posts = seek(self.filters.apply(posts), ("published_at", "id"), position)
        return cards(posts[offset : offset + limit])


def card_keys(posts):
    """The content keys of a list of cards: each post and each stack tag shown."""
    for post in posts:
        yield caching.card_key(post.pk)
        for tag in post.stack_tags:
            yield caching.tag_key(tag.id)


# Budgets: PostgreSQL's counts (see each docstring); a staff member's session, user and
# permissions add 2-4.
@query_budget(2)  # an old ?page=N link; a page is 1 (tests/test_listings.py)
@cached_page
def post_list(request):
    """Latest published posts (1 query on PostgreSQL: the page's cards with their stack tags
    and the stored total; 3 elsewhere; an old ?page=N link 2)."""
    depends_on(request, caching.HOME_LIST)
    return keyset_list(request, CardList(filters=list_filters(request)), "posts/post_list.html",
                       {})


@query_budget(2)  # as post_list
@cached_page
def tag_detail(request, slug):
    """Published posts with one tag (1 query on PostgreSQL: the page's cards with their stack
    tags and the tag with its stored count; 3 elsewhere; an old ?page=N link 2)."""
    cards = CardList(tag_slug=slug, filters=list_filters(request))
    response = keyset_list(request, cards, "posts/tag_detail.html", {})
    depends_on(request, caching.tag_key(cards.tag.pk), caching.tag_list_key(cards.tag.pk))
    return response


# The tag index: kinds in this order, each its most used tags first.
TAG_INDEX_KINDS = (TagKind.STACK, TagKind.TOOL, TagKind.PROBLEM, TagKind.AREA, TagKind.LANGUAGE)
TAG_INDEX_PER_KIND = 100


@query_budget(1)
@cached_page
def tag_index(request):
    """Stacks, tools, problems, areas and languages with their stored post counts (1 query:
    the TAG_INDEX_PER_KIND most used tags of each kind, ranked in the database)."""
    ranked = (
        Tag.objects.filter(kind__in=TAG_INDEX_KINDS, post_count__gt=0)
        .annotate(rank=Window(RowNumber(), partition_by="kind",
                              order_by=[F("post_count").desc(), "name"]))
        .filter(rank__lte=TAG_INDEX_PER_KIND)
        .only("id", "name", "kind", "slug", "post_count")
        .order_by("kind", "rank")
    )
    groups = {kind: [] for kind in TAG_INDEX_KINDS}
    for tag in ranked:
        groups[tag.kind].append(tag)
    depends_on(request, caching.TAG_INDEX,
               *(caching.tag_key(tag.pk) for tags in groups.values() for tag in tags))
    kinds = [(TagKind(kind).label, tags) for kind, tags in groups.items() if tags]
    return render(request, "posts/tag_index.html", {"kinds": kinds})


def sees_drafts(user) -> bool:
    """Whether `user` gets drafts and scheduled posts on the site: staff who may view posts in
    the admin (editors, reviewers), not any staff account."""
    return user.is_staff and user.has_perm("posts.view_post")


def load_article(slug, *, readers_only):
    """Return (post, similar posts) for the article page of `slug`, or raise Http404.

    One statement on PostgreSQL (posts/reading.py); elsewhere the ORM's 5 queries: post +
    revision, tag links, sections, figures, similar posts.
    """
    count = settings.SIMILAR_POSTS_COUNT
    if reads_in_one_statement():
        found = reading.article(slug, readers_only=readers_only, similar=count, now=timezone.now())
        if found is None:
            raise Http404("No post has that address.")
        return found
    posts = Post.objects.published() if readers_only else Post.objects.all()
    post = get_object_or_404(posts.for_article_page(), slug=slug)
    return post, list(Post.objects.published().similar_to(post, count))


@query_budget(2)
@cached_page
def search(request):
    """Published posts matching ?q=, best of the newest matches first (1 query on
    PostgreSQL, 2 for a page past the last; 3 elsewhere)."""
    query = searching.clean_query(request.GET.get("q", ""))
    raw_page = request.GET.get("page", "1")
    if not raw_page.isdigit() or int(raw_page) < 1:
        raise Http404(f"No page {raw_page!r}: pages are numbered from 1.")
    page = int(raw_page)
    filters = list_filters(request)
    found = searching.search(query, page, now=timezone.now(), filters=filters)
    if page > found.pages:
        raise Http404(f"No page {page}: the results run to page {found.pages}.")
    depends_on(request, caching.SEARCH, *card_keys(result.card for result in found.results))
    return render(request, "posts/search.html", {
        "query": query, "found": found, "filters": filters,
    })


@query_budget(6)
@cached_page
def post_detail(request, slug):
    """One article (1 query for readers on PostgreSQL, see load_article). Staff also see
    drafts, why a post is kept out of search engines, and the review form when they may use
    it."""
    post, similar = load_article(slug, readers_only=not sees_drafts(request.user))
    depends_on(
        request,
        caching.post_key(post.pk),
        *(caching.card_key(other.pk) for other in similar),
        *(caching.tag_key(link.tag_id) for link in post.all_tag_links),
    )
    noindex_reasons = post.noindex_reasons()
    response = render(
        request,
        "posts/post_detail.html",
        {
            "post": post,
            "similar_posts": similar,
            "noindex_reasons": noindex_reasons,
            "now": timezone.now(),  # a post dated later says "scheduled" to staff
            "can_review": request.user.is_authenticated
            and any(request.user.has_perm(name) for name in REVIEW_PERMISSIONS),
        },
    )
    if noindex_reasons:
        response.headers["X-Robots-Tag"] = "noindex"
    return response


@query_budget(0)
@csrf_exempt  # a beacon from any reader's page, changing nothing of theirs
@require_POST
def count_view(request, pk):
    """Count one view of post `pk` in Redis (posts/viewcounts.py); no database write."""
    if not viewcounts.count_view(pk):
        raise Http404(f"No post has id {pk}.")
    return HttpResponse(status=204)


@query_budget(12)
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


@query_budget(6)
@login_required
def review_queue(request):
    """Flagged posts, oldest flag first (6 queries: session, user, 2 permissions, count, page)."""
    if not any(request.user.has_perm(name) for name in REVIEW_PERMISSIONS):
        raise PermissionDenied("The review queue is for the Reviewers group.")
    page = paginate(request, Post.objects.flagged().for_review_queue())
    return render(request, "posts/review_queue.html", {"page": page})


def not_found(request, exception):
    """The 404 page: the message a view gave (they say what was expected), never the name of
    Django's exception for an address no URL matches; with a search box."""
    message = ""
    if type(exception) is Http404 and exception.args and isinstance(exception.args[0], str):
        message = exception.args[0]
    return render(request, "404.html", {"message": message}, status=404)
