"""Posts, their tags, figures, sections and revision meta.

Every field of the article page's "alphanode post meta" box is a typed column here; list-valued
meta is either rows (tags, figures, sections) or a JSON list of strings (checklist, notes).
"""

import datetime
import functools
from dataclasses import dataclass

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, URLValidator
from django.db import connections, models
from django.db.models import F, Prefetch, Q
from django.urls import get_script_prefix, reverse
from django.utils import timezone


class Difficulty(models.TextChoices):
    BEGINNER = "beginner", "beginner"
    INTERMEDIATE = "intermediate", "intermediate"
    ADVANCED = "advanced", "advanced"


class PublicationStatus(models.TextChoices):
    DRAFT = "draft", "draft"
    PUBLISHED = "published", "published"


class RevisionStatus(models.TextChoices):
    """The revision statuses the code knows. An open set: imports keep any other word."""

    DRAFT = "draft", "draft"
    IN_REVIEW = "in_review", "in review"
    REVIEWED = "reviewed", "reviewed"
    OUTDATED = "outdated", "outdated"


REVISION_STATUS_LABELS = dict(RevisionStatus.choices)


class TagKind(models.TextChoices):
    """The tag kinds (entity types) the code knows. An open set: imports keep any other word."""

    STACK = "stack", "stack"
    TOOL = "tool", "tool"
    AREA = "area", "area"
    PROBLEM = "problem", "problem"
    LANGUAGE = "language", "language"
    SCENARIO = "scenario", "scenario"
    OTHER = "other", "other"


class TagRole(models.TextChoices):
    """What a tag is to a post: an item of its stack list, its tools list, or an entity."""

    STACK = "stack", "stack"
    TOOL = "tool", "tool"
    ENTITY = "entity", "entity"


class FigurePlacement(models.TextChoices):
    """Where a figure stands in the body: after the intro, a section, or the checklist."""

    INTRO = "intro", "after the intro"
    SECTION = "section", "after a section"
    CHECKLIST = "checklist", "after the checklist"


SCORE_FIELDS = ("quality_score", "freshness_score", "depth_score", "clarity_score")
HTTP_URL = URLValidator(schemes=["http", "https"])


def validate_string_list(value):
    """Reject anything but a list of non-empty strings (checklist items, notes)."""
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ValidationError("Expected a list of non-empty strings.")


class Tag(models.Model):
    name = models.CharField(max_length=100)
    # No choices: an open vocabulary (TagKind holds the kinds the code knows). At most 20
    # characters, so "<kind>-<name>" fits the slug.
    kind = models.CharField(max_length=20)
    slug = models.SlugField(max_length=130, db_index=False)
    # Published posts linked to the tag (scheduled ones included), kept by posts/derived.py on
    # every write path: tag pages and similar-post weights read it instead of counting.
    post_count = models.PositiveIntegerField(default=0, editable=False, db_default=0)

    class Meta:
        ordering = ["kind", "name"]
        # Constraints rather than unique=True: on PostgreSQL, unique=True on a text field also
        # builds a second, LIKE-only index that nothing here uses and every insert pays for.
        constraints = [
            models.UniqueConstraint(fields=["kind", "name"], name="tag_unique_kind_name"),
            models.UniqueConstraint(fields=["slug"], name="tag_unique_slug"),
        ]

    def __str__(self):
        return f"{self.name} ({self.kind})"

    def get_absolute_url(self):
        return url_for("posts:tag", self.slug)

    def get_feed_url(self):
        """The address of the tag's Atom feed."""
        return url_for("posts:tag_feed", self.slug)


class PostQuerySet(models.QuerySet):
    def published(self):
        """Posts readers may see: published, with a publication date not in the future."""
        return self.filter(status=PublicationStatus.PUBLISHED, published_at__lte=timezone.now())

    def indexable(self):
        """Posts search engines may index: published, not flagged, revision reviewed.

        The rule for a sitemap; Post.noindex_reasons() is the same rule for one loaded post
        (tests check that the two agree).
        """
        return self.published().filter(
            needs_human_review=False, revision__status=RevisionStatus.REVIEWED
        )

    def flagged(self):
        """Posts waiting for human review, oldest flag first (flags from imports first)."""
        return self.filter(needs_human_review=True).order_by(
            F("flagged_at").asc(nulls_first=True), "id"
        )

    def for_review_queue(self):
        """Shape for the review queue: the flag's author joined in (1 query)."""
        return self.select_related("flagged_by", "revision").only(
            "id", "title", "slug", "status", "flagged_at", "flag_reason", "published_at",
            "flagged_by__username", "revision__status",
        )

    def newest_first(self):
        return self.order_by("-published_at", "-id")

    def code_languages(self):
        """Return the distinct code languages, sorted (1 query).

        On PostgreSQL a recursive walk of the code language index: one index probe per
        language instead of a DISTINCT over every post.
        """
        if connections[self.db].vendor != "postgresql":
            return list(
                self.exclude(code_language="").order_by("code_language")
                .values_list("code_language", flat=True).distinct()
            )
        table = Post._meta.db_table
        with connections[self.db].cursor() as cursor:
            cursor.execute(
                f"""
                WITH RECURSIVE languages(name) AS (
                    SELECT min(code_language) FROM {table} WHERE code_language > ''
                    UNION ALL
                    SELECT (SELECT min(code_language) FROM {table} WHERE code_language > name)
                    FROM languages WHERE name IS NOT NULL
                )
                SELECT name FROM languages WHERE name IS NOT NULL
                """
            )
            return [name for (name,) in cursor.fetchall()]

    def among_links(self, links):
        """Published posts named by `links`, a sliced PostTag queryset (1 query with it).

        The tag page gives the first n distinct (listed_at, post) pairs of one tag's links in
        index order: a bounded index range however popular the tag is (a post that carries
        the tag in two roles is one pair), then only those n posts are read.
        """
        return self.published().filter(pk__in=links)

    def for_listing(self):
        """Rows for list pages: the card's columns (1 query); cards() turns them into Cards.

        Plain rows, not model instances: building 20 posts cost more than the query. (On
        PostgreSQL the list pages read their cards in one statement, posts/reading.py.)
        """
        return self.values_list(*CARD_FIELDS)

    def for_article_page(self):
        """Shape for the article page: post + revision, tag links, sections, figures (4 queries)."""
        return self.select_related("revision").prefetch_related(
            Prefetch(
                "tag_links",
                queryset=PostTag.objects.select_related("tag").order_by("role", "position"),
                to_attr="all_tag_links",
            ),
            Prefetch("sections", queryset=Section.objects.order_by("position"),
                     to_attr="section_list"),
            Prefetch("figures", queryset=ImageSource.objects.order_by("position"),
                     to_attr="figure_list"),
        )

    def for_export(self):
        """Shape for export_posts: the article page's shape, in source id order."""
        return self.for_article_page().order_by("source_id")

    def similar_to(self, post, limit):
        """Up to `limit` of `post`'s precomputed similar posts, best first (1 query).

        An indexed read of the post's stored list (posts/derived.py computes it), joined to the
        posts it names; compose with published() so readers never see a draft there.
        """
        return (
            self.filter(similar_entries__post=post)
            .only("id", "title", "slug", "published_at", "difficulty", "reading_time",
                  "code_language")
            .order_by("-similar_entries__score", "-published_at", "-id")[:limit]
        )


@dataclass(frozen=True, slots=True)
class ListedTag:
    """A tag as a list page shows it: plain values, no model instance (cards show many)."""

    id: int
    name: str
    slug: str

    @property
    def url(self):
        return url_for("posts:tag", self.slug)


@dataclass(slots=True)
class Card:
    """A post as a list page shows it: plain values (PostQuerySet.for_listing() rows)."""

    id: int
    title: str
    slug: str
    summary: str
    published_at: datetime.datetime
    difficulty: str
    reading_time: int
    code_language: str
    topic: str
    stack_tags: list[ListedTag]

    @property
    def pk(self):
        return self.id

    def get_absolute_url(self):
        return url_for("posts:detail", self.slug)


CARD_FIELDS = (
    "id", "title", "slug", "summary", "published_at", "difficulty", "reading_time",
    "code_language", "topic",
)


def cards(rows) -> list[Card]:
    """Return the Cards of for_listing() `rows`, each with its stack tags in order (1 query)."""
    found = [Card(*values, stack_tags=[]) for values in rows]
    by_id = {card.id: card for card in found}
    for post_id, tag_id, name, slug in (
        PostTag.objects.filter(post_id__in=by_id, role=TagRole.STACK)
        .order_by("post_id", "position")
        .values_list("post_id", "tag_id", "tag__name", "tag__slug")
    ):
        by_id[post_id].stack_tags.append(ListedTag(tag_id, name, slug))
    return found


@functools.cache
def url_pattern(name, script_prefix):
    """The URL of slug pattern `name` under `script_prefix`, with "{}" for the slug."""
    return reverse(name, kwargs={"slug": "__slug__"}).replace("__slug__", "{}")


def url_for(name, slug):
    """Return reverse(name, kwargs={"slug": slug}) for a slug URL, at a fraction of its cost.

    The URL pattern is reversed once (per script prefix) and formatted per call: list pages
    print dozens of URLs, and reverse() is the larger part of their rendering time. Slugs are
    URL-safe by construction (SlugField).
    """
    return url_pattern(name, get_script_prefix()).format(slug)


class PostTagQuerySet(models.QuerySet):
    def listed(self, tag):
        """Links of `tag` to published posts whose date has come (the tag page's index range)."""
        return self.filter(tag=tag, listed_at__lte=timezone.now())


class Post(models.Model):
    # Identity and publication
    title = models.CharField(max_length=300)
    slug = models.SlugField(max_length=255, db_index=False)  # unique: see Meta.constraints
    status = models.CharField(
        max_length=10, choices=PublicationStatus.choices, default=PublicationStatus.DRAFT
    )
    published_at = models.DateTimeField(null=True, blank=True)

    # Body
    intro = models.TextField(blank=True)
    checklist = models.JSONField(default=list, blank=True, validators=[validate_string_list])
    final_notes = models.TextField(blank=True)

    # Meta box
    topic = models.CharField(max_length=200, blank=True)
    summary = models.TextField(blank=True)
    outline_context = models.CharField("ai outline: context", max_length=300, blank=True)
    outline_problem = models.CharField("ai outline: problem", max_length=300, blank=True)
    outline_stack = models.CharField("ai outline: stack", max_length=300, blank=True)
    outline_action = models.CharField(
        "ai outline: recommended action", max_length=300, blank=True
    )
    ai_brief = models.TextField("ai brief", blank=True)
    code_language = models.CharField(max_length=50, blank=True)
    difficulty = models.CharField(
        max_length=12, choices=Difficulty.choices, default=Difficulty.BEGINNER
    )
    reading_time = models.PositiveSmallIntegerField("reading time (minutes)", default=1)
    view_count = models.PositiveIntegerField(default=0)
    quality_score = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    freshness_score = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(100)]
    )
    depth_score = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    clarity_score = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    reference = models.CharField(max_length=64)  # unique: see Meta.constraints
    content_hash = models.CharField("hash", max_length=64, blank=True)
    ai_generated_style = models.BooleanField(default=False)
    has_images = models.BooleanField(default=False)
    image_heavy = models.BooleanField(default=False)
    needs_human_review = models.BooleanField(default=False)
    notes = models.JSONField(default=list, blank=True, validators=[validate_string_list])

    # Payload: where the content came from. source_id is the import key.
    source_id = models.CharField(max_length=100)  # unique: see Meta.constraints
    generator = models.CharField(max_length=100, blank=True)
    paragraph_count = models.PositiveSmallIntegerField("paragraphs", default=0)
    scenario = models.CharField(max_length=200, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    # The current "needs human review" flag: who raised it, when and why (history: ReviewEvent).
    # Imports never write these, so a reviewer's flag survives re-imports.
    flagged_at = models.DateTimeField(null=True, blank=True, editable=False)
    flagged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    # db_default: bulk imports insert posts with raw SQL that leaves this column out.
    flag_reason = models.TextField(blank=True, editable=False, db_default="")

    # Digest of the import record last written, so re-importing an unchanged record is skipped.
    import_digest = models.CharField(max_length=32, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    tags = models.ManyToManyField(Tag, through="PostTag", related_name="posts")

    objects = PostQuerySet.as_manager()

    class Meta:
        ordering = ["-published_at", "-id"]
        permissions = [
            ("publish_post", "Can publish and unpublish posts"),
            ("flag_post", "Can flag posts for human review and clear the flag"),
            ("review_post", "Can mark posts reviewed"),
        ]
        constraints = [
            # Constraints rather than unique=True, which on PostgreSQL adds unused LIKE indexes.
            models.UniqueConstraint(fields=["slug"], name="post_unique_slug"),
            models.UniqueConstraint(fields=["source_id"], name="post_unique_source_id"),
            models.UniqueConstraint(fields=["reference"], name="post_unique_reference"),
            *(
                models.CheckConstraint(
                    condition=Q(**{f"{field}__gte": 0, f"{field}__lte": 100}),
                    name=f"post_{field}_0_100",
                )
                for field in SCORE_FIELDS
            ),
            models.CheckConstraint(
                condition=Q(difficulty__in=Difficulty.values), name="post_difficulty_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=PublicationStatus.values), name="post_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status=PublicationStatus.PUBLISHED) | Q(published_at__isnull=False),
                name="post_published_has_date",
            ),
        ]
        indexes = [
            # Listing pages: published posts, newest first.
            models.Index(fields=["status", "-published_at", "-id"], name="post_listing_idx"),
            # The admin's list: every post, newest first, and its date hierarchy.
            models.Index(fields=["-published_at", "-id"], name="post_newest_idx"),
            models.Index(fields=["code_language"], name="post_code_language_idx"),
            # The review queue: flagged posts, oldest flag first, flags from imports (no date)
            # before them, as flagged() orders: a plain ascending index puts NULLs last on
            # PostgreSQL, and the queue then sorted every flagged post per page. Created by
            # migration 0005 (SQLite cannot declare NULLS FIRST, and needs no such index).
            models.Index(
                F("flagged_at").asc(nulls_first=True),
                "id",
                name="post_review_queue_idx",
                condition=Q(needs_human_review=True),
            ),
        ]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return url_for("posts:detail", self.slug)

    def noindex_reasons(self):
        """Return why search engines must not index this post (empty when they may).

        Mirrors PostQuerySet.indexable(); needs the revision loaded (for_article_page does).
        """
        reasons = []
        if self.status != PublicationStatus.PUBLISHED or self.published_at is None:
            reasons.append("it is not published")
        elif self.published_at > timezone.now():
            reasons.append("its publication date is in the future")
        if self.needs_human_review:
            reasons.append("it is flagged as needing human review")
        if self.revision.status != RevisionStatus.REVIEWED:
            reasons.append(f"its revision is {self.revision.get_status_display()}, not reviewed")
        return reasons

    # The helpers below read the lists prefetched by PostQuerySet.for_article_page(); they
    # never query, and fail loudly (AttributeError) on a post loaded without that shape.
    def _links(self, role):
        return [link for link in self.all_tag_links if link.role == role]

    @property
    def stack(self):
        return [link.tag for link in self._links(TagRole.STACK)]

    @property
    def tools(self):
        return [link.tag for link in self._links(TagRole.TOOL)]

    @property
    def entities(self):
        return [link.tag for link in self._links(TagRole.ENTITY)]

    @property
    def scores(self):
        return [
            ("quality", self.quality_score),
            ("freshness", self.freshness_score),
            ("depth", self.depth_score),
            ("clarity", self.clarity_score),
        ]

    @property
    def flags(self):
        return [
            ("ai generated style", self.ai_generated_style),
            ("has images", self.has_images),
            ("image heavy", self.image_heavy),
            ("needs human review", self.needs_human_review),
        ]

    def body_blocks(self):
        """Return the body in reading order: ("intro"|"section"|"checklist"|"final", item, figures).

        Figures are attached to the block they follow.
        """
        after_section = {}
        after = {FigurePlacement.INTRO: [], FigurePlacement.CHECKLIST: []}
        for figure in self.figure_list:
            if figure.placement == FigurePlacement.SECTION:
                after_section.setdefault(figure.section_position, []).append(figure)
            else:
                after[figure.placement].append(figure)
        blocks = [("intro", self.intro, after[FigurePlacement.INTRO])]
        for section in self.section_list:
            blocks.append(("section", section, after_section.get(section.position, [])))
        if self.checklist:
            blocks.append(("checklist", self.checklist, after[FigurePlacement.CHECKLIST]))
        elif after[FigurePlacement.CHECKLIST]:
            blocks[-1][2].extend(after[FigurePlacement.CHECKLIST])
        if self.final_notes:
            blocks.append(("final", self.final_notes, []))
        return blocks


class Revision(models.Model):
    post = models.OneToOneField(
        Post, on_delete=models.CASCADE, primary_key=True, related_name="revision"
    )
    # No choices: an open vocabulary (RevisionStatus holds the statuses the code knows, and only
    # "reviewed" makes a post indexable).
    status = models.CharField(max_length=30, default=RevisionStatus.DRAFT)
    version = models.CharField(max_length=30, default="1.0.0")
    last_reviewed = models.DateField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status"], name="revision_status_idx")]

    def __str__(self):
        return f"{self.status} {self.version}"

    def get_status_display(self):
        """Return the status as pages show it: a known status's label, any other as stored."""
        return REVISION_STATUS_LABELS.get(self.status, self.status)


class PostTag(models.Model):
    """A tag's place in one of a post's ordered lists (stack, tools, entities)."""

    # No single-column indexes: (post, tag, role) and (tag, listed_at, post) below serve both
    # lookups.
    post = models.ForeignKey(
        Post, on_delete=models.CASCADE, related_name="tag_links", db_index=False
    )
    tag = models.ForeignKey(
        Tag, on_delete=models.CASCADE, related_name="post_links", db_index=False
    )
    role = models.CharField(max_length=10, choices=TagRole.choices)
    position = models.PositiveSmallIntegerField(default=0)
    # The post's publication date while it is published, else NULL: copied from the post by
    # every write path (posts/derived.py), so a tag page and the similar-post candidates read
    # one index range instead of joining every post that carries a popular tag.
    listed_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = PostTagQuerySet.as_manager()

    class Meta:
        ordering = ["post", "role", "position"]
        constraints = [
            # (post, tag) first: similar posts probe "does this post carry that tag".
            models.UniqueConstraint(fields=["post", "tag", "role"], name="posttag_unique_tag_role"),
        ]
        indexes = [
            # Tag pages (newest first, seeking from a cursor) and similar-post candidates.
            models.Index(fields=["tag", "-listed_at", "-post"], name="posttag_tag_listed_idx"),
        ]

    def __str__(self):
        return f"{self.role} #{self.position + 1}"


class SimilarPost(models.Model):
    """One entry of a post's precomputed similar posts (posts/derived.py keeps them).

    A few more than the page shows are stored, so the read-time filter (published, not in the
    future) still leaves a full list when an entry's post was unpublished since.
    """

    pk = models.CompositePrimaryKey("post", "similar")
    # Derived rows, so no foreign-key constraints in the database: each import batch writes
    # 16 of them per post, and checking each would key-share-lock a post row. Deletes through
    # Django still cascade; a row left dangling by raw SQL is invisible (every read joins the
    # posts) and the next refresh_similar drops it. No single-column index on post: the
    # primary key (post, similar) serves it.
    post = models.ForeignKey(
        Post, on_delete=models.CASCADE, related_name="similar_links", db_index=False,
        db_constraint=False,
    )
    similar = models.ForeignKey(
        Post, on_delete=models.CASCADE, related_name="similar_entries", db_index=False,
        db_constraint=False,
    )
    score = models.FloatField(help_text="Sum of the rarity weights of the tags both posts carry.")

    class Meta:
        indexes = [
            # Which lists hold a post: refilled when it is unpublished or deleted.
            models.Index(fields=["similar"], name="similarpost_similar_idx"),
        ]

    def __str__(self):
        return f"{self.similar_id} for {self.post_id} ({self.score:.2f})"


class SearchDocument(models.Model):
    """A post's full-text search vector (PostgreSQL): title weighted A, summary B, body C.

    A table of its own rather than a column of Post, so that no query of posts ever reads
    vectors of several kilobytes; kept current by every write path with the other derived
    data (posts/derived.py), set-based. Its full-text indexes, one per band over the vector
    and the facets, are made by migration 0010 on PostgreSQL only; the SQLite default searches
    titles and summaries directly (posts/searching.py).
    """

    # Derived rows, like SimilarPost's: no foreign-key constraint for imports to check per
    # row. Deletes through Django still cascade; a row left by raw SQL is never read (search
    # joins the posts).
    post = models.OneToOneField(
        Post, on_delete=models.CASCADE, primary_key=True, related_name="search_document",
        db_constraint=False,
    )
    vector = SearchVectorField(null=True)
    # What a search's filters match: one lexeme per tag ("tag 12"), and the post's difficulty
    # and code language ("language " and the value's md5, so any text is one plain lexeme).
    # Each has a space, which no word of a reader's query can have.
    facets = SearchVectorField(null=True)
    # The post's publication date while it is published, else NULL (as PostTag.listed_at).
    listed_at = models.DateTimeField(null=True)
    # Which band of dates the document is in while published (SearchBand), else NULL. Each
    # band has its own full-text index, so a search reads the newest band first.
    band = models.PositiveSmallIntegerField(null=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["-listed_at", "-post"], name="searchdocument_listed_idx",
                condition=Q(listed_at__isnull=False),
            ),
        ]

    def __str__(self):
        return f"search document of post {self.post_id}"


class SearchBand(models.Model):
    """Where a band of search documents starts: band `number` holds the published documents
    listed since `since` (and before the band above it starts); the last band, one more than
    the rows here, holds the rest.

    Bands are a date order of the documents cut in pieces of growing size (settings.SEARCH_BANDS),
    each with its own full-text index, so that a search finds its newest matches in the newest
    band alone whenever that has enough of them (posts/searching.py). `since` is NULL while the
    band is empty. Moved by `refresh_search_bands` (locking these rows FOR UPDATE); every write
    of documents locks them FOR SHARE first, so no document is ever given a band by starts
    that are being moved.
    """

    number = models.PositiveSmallIntegerField(primary_key=True)
    since = models.DateTimeField(null=True)

    def __str__(self):
        return f"search band {self.number} since {self.since}"


class ViewCountFold(models.Model):
    """One batch of view counts moved from Redis into Post.view_count (posts/viewcounts.py).

    Its token is recorded in the same transaction as the counts are added, so a fold that is
    run again after a crash cannot add them twice.
    """

    token = models.CharField(max_length=32, primary_key=True)
    folded_at = models.DateTimeField(auto_now_add=True)
    posts = models.PositiveIntegerField()
    views = models.PositiveBigIntegerField()

    def __str__(self):
        return f"{self.views} views of {self.posts} posts at {self.folded_at:%Y-%m-%d %H:%M}"


class Counter(models.Model):
    """A named count kept current by every write path, e.g. the number of published posts."""

    LISTED_POSTS = "listed_posts"

    name = models.CharField(max_length=50, primary_key=True)
    value = models.BigIntegerField(default=0)

    def __str__(self):
        return f"{self.name} = {self.value}"


class Section(models.Model):
    # No single-column index: the (post, position) constraint serves lookups by post.
    post = models.ForeignKey(
        Post, on_delete=models.CASCADE, related_name="sections", db_index=False
    )
    position = models.PositiveSmallIntegerField()
    heading = models.CharField(max_length=300)
    body = models.TextField(help_text="Paragraphs separated by a blank line.")

    class Meta:
        ordering = ["post", "position"]
        constraints = [
            models.UniqueConstraint(fields=["post", "position"], name="section_unique_position"),
        ]

    def __str__(self):
        return self.heading

    @property
    def paragraphs(self):
        return [part.strip() for part in self.body.split("\n\n") if part.strip()]


class ImageSource(models.Model):
    """A figure of a post: where the image comes from, its caption, and where it stands."""

    # No single-column index: the (post, position) constraint serves lookups by post.
    post = models.ForeignKey(
        Post, on_delete=models.CASCADE, related_name="figures", db_index=False
    )
    position = models.PositiveSmallIntegerField()
    source = models.CharField(max_length=200)
    url = models.URLField(max_length=1000, validators=[HTTP_URL])
    caption = models.CharField(max_length=500)
    placement = models.CharField(
        max_length=10, choices=FigurePlacement.choices, default=FigurePlacement.INTRO
    )
    section_position = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The section the figure follows, when placed after one."
    )

    class Meta:
        ordering = ["post", "position"]
        constraints = [
            models.UniqueConstraint(fields=["post", "position"], name="image_unique_position"),
            models.CheckConstraint(
                condition=(
                    Q(placement=FigurePlacement.SECTION, section_position__isnull=False)
                    | (~Q(placement=FigurePlacement.SECTION) & Q(section_position__isnull=True))
                ),
                name="image_section_position_iff_section",
            ),
        ]

    def __str__(self):
        return self.caption


class ReviewAction(models.TextChoices):
    FLAGGED = "flagged", "flagged for review"
    CLEARED = "cleared", "flag cleared"
    REVIEWED = "reviewed", "marked reviewed"
    PUBLISHED = "published", "published"
    UNPUBLISHED = "unpublished", "unpublished"


class ReviewEvent(models.Model):
    """One step of a post's review history: who did what, when and why. Never edited."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="review_events")
    action = models.CharField(max_length=12, choices=ReviewAction.choices)
    reason = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["post", "created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=ReviewAction.values), name="reviewevent_action_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["post", "created_at"], name="reviewevent_post_idx"),
            models.Index(fields=["-created_at"], name="reviewevent_newest_idx"),
        ]

    def __str__(self):
        return f"{self.get_action_display()} on {self.created_at:%Y-%m-%d %H:%M}"
