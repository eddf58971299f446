"""factory-boy factories for every posts model.

PostFactory(tag_count=40, image_count=12, entity_count=20, section_count=3) builds a post
with that many related rows; Traits `draft` and `flagged` cover the other states.
"""

import datetime

import factory
from django.utils import timezone

from posts import derived
from posts.models import (
    Difficulty,
    FigurePlacement,
    ImageSource,
    Post,
    PostTag,
    PublicationStatus,
    Revision,
    RevisionStatus,
    Section,
    Tag,
    TagKind,
    TagRole,
)
from posts.services import tag_slug


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("kind", "name")

    kind = TagKind.TOOL
    name = factory.Sequence(lambda n: f"tool {n}")
    slug = factory.LazyAttribute(lambda tag: tag_slug(tag.kind, tag.name))


class RevisionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Revision

    post = factory.SubFactory("tests.factories.PostFactory", revision=None)
    status = RevisionStatus.REVIEWED
    version = "1.3.8"
    last_reviewed = datetime.date(2026, 6, 30)


class PostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Post
        skip_postgeneration_save = True

    class Params:
        draft = factory.Trait(status=PublicationStatus.DRAFT, published_at=None)
        flagged = factory.Trait(needs_human_review=True)

    title = factory.Sequence(lambda n: f"python services notes: improving queries, part {n}")
    slug = factory.Sequence(lambda n: f"post-{n}")
    status = PublicationStatus.PUBLISHED
    published_at = factory.Sequence(
        lambda n: timezone.now() - datetime.timedelta(days=1, minutes=n)
    )
    intro = "when a project grows, improving database queries becomes part of shipping."
    checklist = factory.LazyFunction(
        lambda: ["capture the current behavior", "create a safe backup", "write the final note"]
    )
    final_notes = "keep the final commands, metrics, and assumptions close to the article."
    topic = "improving database queries / python services"
    summary = "this technical summary explains improving database queries in python services."
    outline_context = "behind a cdn"
    outline_problem = "improving database queries"
    outline_stack = "python services"
    outline_action = "measure first, change carefully, document the result"
    ai_brief = "the article is written like a careful engineering draft."
    code_language = "python"
    difficulty = Difficulty.BEGINNER
    reading_time = 14
    view_count = 54858
    quality_score = 93
    freshness_score = 66
    depth_score = 92
    clarity_score = 72
    reference = factory.Sequence(lambda n: f"anp-ref-{n:06d}-2705")
    content_hash = "a05e2a88eb2900fe33bd93fe"
    ai_generated_style = True
    notes = factory.LazyFunction(lambda: ["view count is synthetic", "review before indexing"])
    source_id = factory.Sequence(lambda n: f"alphanode-{n:06d}")
    generator = "anp content synthesizer"
    paragraph_count = 3
    scenario = "behind a cdn"
    seed = factory.Sequence(lambda n: n)

    revision = factory.RelatedFactory(RevisionFactory, factory_related_name="post")

    @factory.post_generation
    def tag_count(post, create, extracted, **kwargs):
        """Link `tag_count` stack/tool tags (default 1)."""
        if create:
            link_tags(post, TagRole.TOOL, TagKind.TOOL, 1 if extracted is None else extracted)

    @factory.post_generation
    def entity_count(post, create, extracted, **kwargs):
        """Link `entity_count` entity tags (default 0)."""
        if create and extracted:
            link_tags(post, TagRole.ENTITY, TagKind.AREA, extracted)

    @factory.post_generation
    def section_count(post, create, extracted, **kwargs):
        """Create `section_count` sections of two paragraphs (default 2)."""
        if create:
            count = 2 if extracted is None else extracted
            Section.objects.bulk_create(
                Section(
                    post=post,
                    position=position,
                    heading=f"section {position}",
                    body=f"first paragraph {position}.\n\nsecond paragraph {position}.",
                )
                for position in range(count)
            )

    @factory.post_generation
    def image_count(post, create, extracted, **kwargs):
        """Create `image_count` figures after the intro (default 0)."""
        if create and extracted:
            ImageSource.objects.bulk_create(
                ImageSource(
                    post=post,
                    position=position,
                    source="picsum.photos",
                    url=f"https://picsum.photos/seed/{post.source_id}-{position}/1200/630",
                    caption=f"visual reference {position + 1}",
                    placement=FigurePlacement.INTRO,
                )
                for position in range(extracted)
            )

    @factory.post_generation
    def derived_data(post, create, extracted, **kwargs):
        """Keep counts, listing dates and similar lists current, as every write path does."""
        if create:
            derived.posts_changed([post.pk], derived.Contribution())


def link_tags(post, role, kind, count):
    """Link `count` tags of `kind` to `post` in `role`; tag names are shared across posts."""
    tags = [TagFactory(kind=kind, name=f"{kind} {number}") for number in range(count)]
    PostTag.objects.bulk_create(
        PostTag(post=post, tag=tag, role=role, position=position)
        for position, tag in enumerate(tags)
    )


class PostTagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PostTag

    post = factory.SubFactory(PostFactory, tag_count=0)
    tag = factory.SubFactory(TagFactory)
    role = TagRole.TOOL
    position = factory.Sequence(lambda n: n)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        post = kwargs["post"]
        before = derived.contribution([post.pk])
        link = super()._create(model_class, *args, **kwargs)
        derived.posts_changed([post.pk], before)
        return link


class SectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Section

    post = factory.SubFactory(PostFactory, section_count=0)
    position = factory.Sequence(lambda n: n)
    heading = factory.Sequence(lambda n: f"heading {n}")
    body = "a paragraph.\n\nanother paragraph."


class ImageSourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ImageSource

    post = factory.SubFactory(PostFactory)
    position = factory.Sequence(lambda n: n)
    source = "unsplash"
    url = "https://images.unsplash.com/photo-1555949963-aa79dcee981c?w=1200"
    caption = factory.Sequence(lambda n: f"visual reference {n}")
    placement = FigurePlacement.INTRO
