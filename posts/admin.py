from django.contrib import admin

from posts.models import ImageSource, Post, PostTag, Revision, Section, Tag


class RevisionInline(admin.StackedInline):
    model = Revision
    can_delete = False


class SectionInline(admin.StackedInline):
    model = Section
    extra = 0


class ImageSourceInline(admin.TabularInline):
    model = ImageSource
    extra = 0


class PostTagInline(admin.TabularInline):
    model = PostTag
    extra = 0
    autocomplete_fields = ["tag"]


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ["title", "status", "difficulty", "needs_human_review", "published_at"]
    list_filter = ["status", "difficulty", "needs_human_review"]
    search_fields = ["title", "reference", "source_id"]
    readonly_fields = ["reference", "content_hash", "source_id", "generator", "seed"]
    inlines = [RevisionInline, SectionInline, ImageSourceInline, PostTagInline]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "slug"]
    list_filter = ["kind"]
    search_fields = ["name", "slug"]


@admin.register(ImageSource)
class ImageSourceAdmin(admin.ModelAdmin):
    list_display = ["caption", "source", "post"]
    list_select_related = ["post"]
    search_fields = ["caption", "source", "url"]
    raw_id_fields = ["post"]
