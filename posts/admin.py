"""The admin for editors and reviewers.

Every page runs a constant number of queries however many rows it shows (tests/test_admin.py
asserts them): lists join what their columns show, inlines join what their rows show, and the
tag links' autocomplete widgets render their selected tag from the row instead of a query each.
Publishing and the review steps are set-based actions (posts/review.py) that record history.
"""

import functools

from django.contrib import admin, messages
from django.contrib.admin import ActionLocation
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import models
from django.db.models import Exists, OuterRef
from django.db.models.constants import LOOKUP_SEP
from django.utils.html import format_html

from posts import caching, derived
from posts.forms import (
    LoadedAutocompleteSelect,
    PositionedInlineForm,
    PositionedInlineFormSet,
    PostAdminForm,
    PostTagInlineForm,
    ReviewActionForm,
)
from posts.models import (
    ImageSource,
    Post,
    PostTag,
    ReviewEvent,
    Revision,
    RevisionStatus,
    Section,
    Tag,
    TagKind,
)
from posts.pagination import CappedCountPaginator
from posts.review import (
    ReviewError,
    clear_flags,
    flag_posts,
    mark_reviewed,
    publish_posts,
    unpublish_posts,
)

BOTH_LOCATIONS = [ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM]
FLAG_FIELDS = ["needs_human_review", "flagged_at", "flagged_by", "flag_reason"]
PROVENANCE_FIELDS = [
    "reference", "content_hash", "source_id", "generator", "paragraph_count", "scenario", "seed",
]


def action_reason(request):
    """Return the reason typed in the action bar whose Run button was pressed."""
    prefix = ""
    if f"{ActionLocation.CHANGE_FORM.value}-action" in request.POST:
        prefix = f"{ActionLocation.CHANGE_FORM.value}-"
    reasons = request.POST.getlist(f"{prefix}reason")
    try:
        index = int(request.POST.get("index", 0))
    except ValueError:
        index = 0
    return reasons[index] if 0 <= index < len(reasons) else ""


def posts_changed(count, what):
    """Return e.g. "3 posts flagged for review." for an action's message."""
    return f"{count} {'post' if count == 1 else 'posts'} {what}."


class TagKindFilter(admin.SimpleListFilter):
    """Posts linked to at least one tag of a kind; an EXISTS, so each post is listed once."""

    title = "tag kind"
    parameter_name = "tag_kind"

    def lookups(self, request, model_admin):
        return TagKind.choices

    def queryset(self, request, queryset):
        # The sidebar offers the known kinds; any other (imported kinds are an open set) works
        # from the address.
        if not self.value():
            return queryset
        links = PostTag.objects.filter(post=OuterRef("pk"), tag__kind=self.value())
        return queryset.filter(Exists(links))


class CodeLanguageFilter(admin.SimpleListFilter):
    """Posts by code language; the choices come from a walk of the language index."""

    title = "code language"
    parameter_name = "code_language"

    def lookups(self, request, model_admin):
        return ()  # read in choices(), only when the sidebar is drawn (not for actions)

    def has_output(self):
        return True

    def choices(self, changelist):
        self.lookup_choices = [(name, name) for name in Post.objects.code_languages()]
        yield from super().choices(changelist)

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(code_language=self.value())


class RevisionStatusFilter(admin.SimpleListFilter):
    """Posts by their revision's status: the sidebar offers the known statuses (a DISTINCT
    over every revision would be a scan per page load); any other imported one works from
    the address."""

    title = "revision status"
    parameter_name = "revision__status"

    def lookups(self, request, model_admin):
        return RevisionStatus.choices

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(revision__status=self.value())


class RevisionInline(admin.StackedInline):
    model = Revision
    fields = ["status", "version", "last_reviewed"]
    can_delete = False
    verbose_name_plural = "revision"

    def get_readonly_fields(self, request, obj=None):
        # Whether a post was reviewed is the reviewers' call, made with "mark reviewed" so it
        # enters the history; editors keep the version.
        if request.user.has_perm("posts.review_post"):
            return []
        return ["status", "last_reviewed"]


class SectionInline(admin.StackedInline):
    model = Section
    form = PositionedInlineForm
    formset = PositionedInlineFormSet
    fields = ["position", "heading", "body"]
    ordering = ["position"]
    extra = 0


class ImageSourceInline(admin.TabularInline):
    model = ImageSource
    form = PositionedInlineForm
    formset = PositionedInlineFormSet
    fields = ["position", "placement", "section_position", "source", "url", "caption"]
    ordering = ["position"]
    extra = 0
    verbose_name = "figure"


class PostTagInline(admin.TabularInline):
    model = PostTag
    form = PostTagInlineForm
    fields = ["role", "position", "tag"]
    ordering = ["role", "position"]
    autocomplete_fields = ["tag"]
    extra = 0
    verbose_name = "tag link"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("tag")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "tag":
            kwargs["widget"] = LoadedAutocompleteSelect(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReviewEventInline(admin.TabularInline):
    """The post's review history, oldest first; written only by the review actions."""

    model = ReviewEvent
    fields = ["created_at", "action", "reason", "actor"]
    readonly_fields = fields
    ordering = ["created_at", "id"]
    can_delete = False
    extra = 0
    verbose_name = "review event"
    verbose_name_plural = "review history"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# The lookups an address may use on the admin's lists: Django's plain comparisons. Others reach
# the database with what the address says: ?title__regex=( was an invalid expression (a 500),
# ?title__unaccent= an extension that is not installed.
ADDRESS_LOOKUPS = {
    "exact", "iexact", "contains", "icontains", "in", "gt", "gte", "lt", "lte", "startswith",
    "istartswith", "endswith", "iendswith", "range", "isnull", "date", "year", "month", "day",
}


@functools.cache  # after django.contrib.postgres registered its own (unaccent, search, ...)
def lookup_names() -> frozenset[str]:
    """The names of every lookup and transform the site's field types have."""
    fields = (models.CharField, models.TextField, models.IntegerField, models.BigIntegerField,
              models.DateTimeField, models.DateField, models.BooleanField, models.ForeignKey,
              models.JSONField)
    return frozenset().union(*(field.get_class_lookups() for field in fields))


class ModelAdmin(admin.ModelAdmin):
    """The admin of each model here: as Django's, with only ADDRESS_LOOKUPS from the address
    bar. Refused, Django answers 400."""

    def lookup_allowed(self, lookup, value, request):
        last = lookup.split(LOOKUP_SEP)[-1]
        if last in lookup_names() and last not in ADDRESS_LOOKUPS:
            return False
        return super().lookup_allowed(lookup, value, request)


@admin.register(Post)
class PostAdmin(ModelAdmin):
    form = PostAdminForm
    action_form = ReviewActionForm
    actions = ["publish", "unpublish", "flag", "clear_flag", "mark_reviewed"]
    list_display = [
        "title", "status", "difficulty", "needs_human_review", "revision_status",
        "last_reviewed", "view_count", "published_at", "site_link",
    ]
    list_filter = [
        "status",
        "difficulty",
        "needs_human_review",
        RevisionStatusFilter,
        TagKindFilter,
        CodeLanguageFilter,
        # Not date_hierarchy: its year links come from a DISTINCT over every post's date.
        "published_at",
    ]
    # Exact lookups on reference and source id use their unique indexes ("=field" would be
    # iexact, which compares UPPER() and cannot); titles match anywhere through a trigram
    # index on UPPER(title) (migration 0004), which is what icontains compares.
    search_fields = ["title", "reference__exact", "source_id__exact"]
    search_help_text = "Words of the title, or an exact reference or source id."
    ordering = ["-published_at", "-id"]
    list_per_page = 50
    # No full total, and the filtered count stops at a cap (CappedCountPaginator).
    show_full_result_count = False
    paginator = CappedCountPaginator
    prepopulated_fields = {"slug": ["title"]}
    inlines = [
        RevisionInline, SectionInline, ImageSourceInline, PostTagInline, ReviewEventInline,
    ]
    fieldsets = [
        (None, {"fields": ["title", "slug", ("status", "published_at")]}),
        (
            "Body",
            {
                "fields": ["intro", "checklist", "final_notes"],
                "description": "Sections and figures are edited below.",
            },
        ),
        (
            "Post meta",
            {
                "fields": [
                    "topic",
                    "summary",
                    "outline_context",
                    "outline_problem",
                    "outline_stack",
                    "outline_action",
                    "ai_brief",
                    ("code_language", "difficulty", "reading_time", "view_count"),
                    ("quality_score", "freshness_score", "depth_score", "clarity_score"),
                    ("ai_generated_style", "has_images", "image_heavy"),
                    "notes",
                ]
            },
        ),
        (
            "Review",
            {
                "fields": FLAG_FIELDS,
                "description": "Flag, clear and mark reviewed with the actions, which keep the "
                "history below.",
            },
        ),
        ("Provenance", {"fields": PROVENANCE_FIELDS}),
        ("Record", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    def action_checkbox(self, obj):
        # Django renders this widget through the form template engine, once per row: a third
        # of the changelist's time. The same markup, formatted directly.
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" '
            'aria-label="Select this object for an action - {}">',
            ACTION_CHECKBOX_NAME, obj.pk, obj,
        )

    def get_queryset(self, request):
        # The list shows the revision; the change page also shows who raised the flag.
        return super().get_queryset(request).select_related("revision", "flagged_by")

    def get_readonly_fields(self, request, obj=None):
        readonly = [*FLAG_FIELDS, "created_at", "updated_at"]
        if obj is not None:  # a new post needs its reference and source id typed in
            readonly += PROVENANCE_FIELDS
        if not self.has_publish_permission(request):
            readonly += ["status", "published_at"]
        return readonly

    def view_on_site(self, obj):
        # The post's own URL (the default goes through a ContentType lookup); staff see drafts
        # there too, with a notice saying why search engines may not index them.
        return obj.get_absolute_url()

    def get_actions(self, request, action_location=ActionLocation.CHANGE_LIST):
        # Deleting thousands of posts through the admin's confirmation page (which lists every
        # related object) would time out; a post is deleted from its own page.
        actions = super().get_actions(request, action_location=action_location)
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request, obj, form, change):
        # What the post counted for before the edit, to move the counts by the difference.
        form.listing_before = derived.contribution([obj.pk] if change else [])
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if not change:  # the site expects every post to have a revision
            Revision.objects.get_or_create(post=form.instance)
        # After the tag inlines are saved: listing dates, counts and similar lists follow.
        derived.posts_changed([form.instance.pk], form.listing_before)

    def delete_model(self, request, obj):
        with derived.deleting_posts([obj.pk]):
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with derived.deleting_posts(queryset.values_list("pk", flat=True)):
            super().delete_queryset(request, queryset)

    @admin.display(description="revision", ordering="revision__status")
    def revision_status(self, post):
        revision = getattr(post, "revision", None)
        return revision.get_status_display() if revision else None

    @admin.display(description="last reviewed", ordering="revision__last_reviewed")
    def last_reviewed(self, post):
        revision = getattr(post, "revision", None)
        return revision.last_reviewed if revision else None

    @admin.display(description="on site")
    def site_link(self, post):
        return format_html('<a href="{}">view on site</a>', self.view_on_site(post))

    def has_publish_permission(self, request):
        return request.user.has_perm("posts.publish_post")

    def has_flag_permission(self, request):
        return request.user.has_perm("posts.flag_post")

    def has_review_permission(self, request):
        return request.user.has_perm("posts.review_post")

    @admin.action(
        permissions=["publish"],
        description="Publish",
        description_plural="Publish selected posts",
        location=BOTH_LOCATIONS,
    )
    def publish(self, request, queryset):
        self.apply(request, publish_posts, queryset, done="published")

    @admin.action(
        permissions=["publish"],
        description="Unpublish (back to draft)",
        description_plural="Unpublish selected posts (back to draft)",
        location=BOTH_LOCATIONS,
    )
    def unpublish(self, request, queryset):
        self.apply(request, unpublish_posts, queryset, done="unpublished")

    @admin.action(
        permissions=["flag"],
        description="Flag for review (give a reason)",
        description_plural="Flag selected posts for review (give a reason)",
        location=BOTH_LOCATIONS,
    )
    def flag(self, request, queryset):
        self.apply(
            request, flag_posts, queryset, action_reason(request),
            done="flagged for review", refused="Nothing was flagged.",
        )

    @admin.action(
        permissions=["flag"],
        description="Clear the review flag",
        description_plural="Clear the review flag of selected posts",
        location=BOTH_LOCATIONS,
    )
    def clear_flag(self, request, queryset):
        self.apply(
            request, clear_flags, queryset, action_reason(request),
            done="unflagged", refused="No flag was cleared.",
        )

    @admin.action(
        permissions=["review"],
        description="Mark reviewed",
        description_plural="Mark selected posts reviewed",
        location=BOTH_LOCATIONS,
    )
    def mark_reviewed(self, request, queryset):
        self.apply(
            request, mark_reviewed, queryset, action_reason(request),
            done="marked reviewed", refused="Nothing was marked reviewed.",
        )

    def apply(self, request, action, queryset, *args, done, refused=""):
        """Run a posts/review.py action as the requesting user and report what it did."""
        try:
            count = action(queryset, request.user, *args)
        except ReviewError as error:
            self.message_user(request, f"{refused} {error}", messages.ERROR)
            return
        self.message_user(request, posts_changed(count, done), messages.SUCCESS)


@admin.register(Tag)
class TagAdmin(ModelAdmin):
    list_display = ["name", "kind", "slug"]
    list_filter = ["kind"]
    search_fields = ["name", "slug"]
    ordering = ["kind", "name"]
    prepopulated_fields = {"slug": ["kind", "name"]}  # as tag_slug() writes them
    show_full_result_count = False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        caching.invalidate(tag_keys([obj.pk]))

    def delete_model(self, request, obj):
        keys = tag_keys([obj.pk])
        super().delete_model(request, obj)
        caching.invalidate(keys)

    def delete_queryset(self, request, queryset):
        keys = tag_keys(queryset.values_list("pk", flat=True))
        super().delete_queryset(request, queryset)
        caching.invalidate(keys)


def tag_keys(tag_ids) -> list[str]:
    """The content keys of tags: wherever they are shown, and their own pages."""
    keys = [key for pk in tag_ids for key in (caching.tag_key(pk), caching.tag_list_key(pk))]
    return [caching.TAG_INDEX, *keys]  # /tags/ and the tag sitemap list every tag


@admin.register(ImageSource)
class ImageSourceAdmin(ModelAdmin):
    list_display = ["caption", "source", "post", "position", "placement"]
    list_filter = ["placement"]
    search_fields = ["caption", "source", "url"]
    autocomplete_fields = ["post"]
    ordering = ["post_id", "position"]  # "post" would sort by the posts' own ordering: a join
    show_full_result_count = False

    def get_queryset(self, request):
        # The list's post column and the change page's read-only post both show the post.
        return super().get_queryset(request).select_related("post")

    # A figure shows on its post's own page only (cards and similar entries show none).
    def save_model(self, request, obj, form, change):
        moved_from = form.initial.get("post") if change else None
        super().save_model(request, obj, form, change)
        caching.invalidate(caching.post_key(pk) for pk in {obj.post_id, moved_from} if pk)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        caching.invalidate([caching.post_key(obj.post_id)])

    def delete_queryset(self, request, queryset):
        post_ids = set(queryset.values_list("post_id", flat=True))
        super().delete_queryset(request, queryset)
        caching.invalidate(caching.post_key(pk) for pk in post_ids)


@admin.register(ReviewEvent)
class ReviewEventAdmin(ModelAdmin):
    """The review history of every post, newest first; read-only."""

    list_display = ["created_at", "action", "post", "actor", "reason"]
    list_filter = ["action"]
    search_fields = ["post__title", "post__reference__exact"]
    ordering = ["-created_at", "-id"]
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("post", "actor")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
