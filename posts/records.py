"""Plain dataclasses describing a post as it arrives from outside (generator, importers).

No ORM in here: parsers and generators produce these, posts.services writes them.
"""

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True, slots=True)
class SectionRecord:
    heading: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FigureRecord:
    source: str
    url: str
    caption: str
    placement: str  # a FigurePlacement value
    section_position: int | None = None  # 0-based index into sections, for placement "section"


@dataclass(frozen=True, slots=True)
class EntityRecord:
    name: str
    type: str  # its tag's kind: a TagKind value, or any other word (an open vocabulary)


@dataclass(slots=True)
class PostRecord:
    source_id: str
    title: str
    slug: str
    status: str  # a PublicationStatus value
    published_at: datetime | None
    intro: str
    sections: tuple[SectionRecord, ...]
    checklist: tuple[str, ...]
    final_notes: str
    figures: tuple[FigureRecord, ...]
    topic: str
    summary: str
    outline_context: str
    outline_problem: str
    outline_stack: str
    outline_action: str
    ai_brief: str
    stack: tuple[str, ...]
    tools: tuple[str, ...]
    code_language: str
    difficulty: str
    reading_time: int
    view_count: int
    quality_score: int
    freshness_score: int
    depth_score: int
    clarity_score: int
    revision_status: str  # a RevisionStatus value, or any other word (an open vocabulary)
    revision_version: str
    last_reviewed: date | None
    reference: str
    content_hash: str
    ai_generated_style: bool
    has_images: bool
    image_heavy: bool
    needs_human_review: bool
    entities: tuple[EntityRecord, ...]
    notes: tuple[str, ...]
    generator: str
    paragraph_count: int
    scenario: str
    seed: int | None
