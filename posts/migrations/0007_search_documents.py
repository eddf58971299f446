"""Full-text search documents of posts (issue 9): the table, its GIN index on PostgreSQL, and
the documents of the posts already there (in batches; a million posts take minutes)."""

import django.contrib.postgres.search
import django.db.models.deletion
from django.db import migrations, models

# As posts/derived.py SEARCH_DOCUMENTS_SQL at the time of this migration.
SEARCH_DOCUMENTS_SQL = """
INSERT INTO posts_searchdocument (post_id, vector)
SELECT p.id,
       setweight(to_tsvector('english', p.title), 'A')
       || setweight(to_tsvector('english', p.summary), 'B')
       || setweight(to_tsvector('english', concat_ws(' ', p.intro,
              (SELECT string_agg(s.heading || ' ' || s.body, ' ' ORDER BY s.position)
               FROM posts_section s WHERE s.post_id = p.id),
              p.final_notes)), 'C')
FROM posts_post p WHERE p.id = ANY(%s)
ON CONFLICT (post_id) DO UPDATE SET vector = EXCLUDED.vector
"""
BATCH = 5000


def index_existing_posts(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS searchdocument_vector_idx ON posts_searchdocument "
        "USING gin (vector)"
    )
    Post = apps.get_model("posts", "Post")
    last = 0
    while ids := list(
        Post.objects.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:BATCH]
    ):
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(SEARCH_DOCUMENTS_SQL, [ids])
        last = ids[-1]


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS searchdocument_vector_idx")


class Migration(migrations.Migration):
    dependencies = [
        ("posts", "0006_view_count_folds"),
    ]

    operations = [
        migrations.CreateModel(
            name="SearchDocument",
            fields=[
                (
                    "post",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        db_constraint=False,
                        primary_key=True,
                        related_name="search_document",
                        serialize=False,
                        to="posts.post",
                    ),
                ),
                ("vector", django.contrib.postgres.search.SearchVectorField(null=True)),
            ],
        ),
        migrations.RunPython(index_existing_posts, drop_index),
    ]
