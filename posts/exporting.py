"""Reading posts out as records, for export_posts."""

from collections.abc import Iterator

from posts.models import Post
from posts.records import EntityRecord, FigureRecord, PostRecord, SectionRecord
from posts.services import POST_FIELDS

EXPORT_CHUNK_SIZE = 1000


def record_from_post(post: Post) -> PostRecord:
    """Return the record of a post loaded with PostQuerySet.for_export()."""
    revision = post.revision
    return PostRecord(
        source_id=post.source_id,
        **{name: getattr(post, name) for name in POST_FIELDS},
        sections=tuple(
            SectionRecord(heading=section.heading, paragraphs=tuple(section.paragraphs))
            for section in post.section_list
        ),
        checklist=tuple(post.checklist),
        figures=tuple(
            FigureRecord(
                source=figure.source,
                url=figure.url,
                caption=figure.caption,
                placement=figure.placement,
                section_position=figure.section_position,
            )
            for figure in post.figure_list
        ),
        stack=tuple(tag.name for tag in post.stack),
        tools=tuple(tag.name for tag in post.tools),
        entities=tuple(EntityRecord(name=tag.name, type=tag.kind) for tag in post.entities),
        notes=tuple(post.notes),
        revision_status=revision.status,
        revision_version=revision.version,
        last_reviewed=revision.last_reviewed,
    )


def export_records(queryset=None) -> Iterator[PostRecord]:
    """Yield the records of `queryset` (default: every post), streamed in chunks."""
    queryset = Post.objects.all() if queryset is None else queryset
    for post in queryset.for_export().iterator(chunk_size=EXPORT_CHUNK_SIZE):
        yield record_from_post(post)
