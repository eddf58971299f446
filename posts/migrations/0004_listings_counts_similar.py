"""Listing dates on tag links, maintained post counts, precomputed similar posts, and a
trigram index for the admin's title search (issue 7).

Existing posts get their listing dates and counts here; their similar lists come from
`manage.py refresh_similar` (see the README), which is too long a job for a migration.
"""

import django.db.models.deletion
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce

# Matches the SQL of the admin's `title__icontains` search: UPPER("title"::text) LIKE UPPER(%s).
TITLE_TRGM_INDEX = (
    "CREATE INDEX IF NOT EXISTS post_title_trgm_idx ON posts_post "
    "USING gin ((UPPER(title::text)) gin_trgm_ops)"
)


def create_title_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TITLE_TRGM_INDEX)


def drop_title_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS post_title_trgm_idx")


def count_existing_posts(apps, schema_editor):
    Post = apps.get_model("posts", "Post")
    PostTag = apps.get_model("posts", "PostTag")
    Tag = apps.get_model("posts", "Tag")
    Counter = apps.get_model("posts", "Counter")
    PostTag.objects.update(
        listed_at=Subquery(
            Post.objects.filter(pk=OuterRef("post_id"), status="published").values(
                "published_at"
            )[:1]
        )
    )
    counts = (
        PostTag.objects.filter(tag_id=OuterRef("pk"), listed_at__isnull=False)
        .values("tag_id")
        .annotate(posts=Count("post_id", distinct=True))
        .values("posts")
    )
    Tag.objects.update(post_count=Coalesce(Subquery(counts), 0))
    Counter.objects.update_or_create(
        name="listed_posts", defaults={"value": Post.objects.filter(status="published").count()}
    )


class Migration(migrations.Migration):
    dependencies = [
        ("posts", "0003_editor_and_reviewer_groups"),
    ]

    operations = [
        migrations.CreateModel(
            name="Counter",
            fields=[
                ("name", models.CharField(max_length=50, primary_key=True, serialize=False)),
                ("value", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name="SimilarPost",
            fields=[
                (
                    "post",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="similar_links",
                        to="posts.post",
                    ),
                ),
                (
                    "similar",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="similar_entries",
                        to="posts.post",
                    ),
                ),
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "post", "similar", blank=True, editable=False, primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "score",
                    models.FloatField(
                        help_text="Sum of the rarity weights of the tags both posts carry."
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["similar"], name="similarpost_similar_idx")],
            },
        ),
        migrations.RemoveConstraint(model_name="posttag", name="posttag_unique_role_tag"),
        migrations.RemoveIndex(model_name="posttag", name="posttag_tag_post_idx"),
        migrations.AddField(
            model_name="posttag",
            name="listed_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="tag",
            name="post_count",
            field=models.PositiveIntegerField(db_default=0, default=0, editable=False),
        ),
        migrations.AddIndex(
            model_name="posttag",
            index=models.Index(fields=["tag", "-listed_at", "-post"], name="posttag_tag_listed_idx"),
        ),
        migrations.AddConstraint(
            model_name="posttag",
            constraint=models.UniqueConstraint(
                fields=("post", "tag", "role"), name="posttag_unique_tag_role"
            ),
        ),
        migrations.RunPython(count_existing_posts, migrations.RunPython.noop),
        TrigramExtension(),
        migrations.RunPython(create_title_index, drop_title_index),
    ]
