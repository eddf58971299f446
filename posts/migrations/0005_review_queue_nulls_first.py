"""The review queue's index in the queue's order: flags from imports (no date) first.

flagged() orders by flagged_at NULLS FIRST. On PostgreSQL an ascending index puts NULLs
last, so at a million posts the queue sorted every flagged post per page; the index is
rebuilt with NULLS FIRST there. SQLite cannot declare NULLS FIRST in an index and already
sorts NULLs first in an ascending one, so its index stays as 0001 made it.
"""

from django.db import migrations, models

CREATE = (
    "CREATE INDEX post_review_queue_idx ON posts_post (flagged_at ASC NULLS FIRST, id) "
    "WHERE needs_human_review"
)
CREATE_OLD = (
    "CREATE INDEX post_review_queue_idx ON posts_post (flagged_at, id) WHERE needs_human_review"
)


def rebuild(sql):
    def operation(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute("DROP INDEX IF EXISTS post_review_queue_idx")
            schema_editor.execute(sql)

    return operation


class Migration(migrations.Migration):
    dependencies = [
        ("posts", "0004_listings_counts_similar"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="post", name="post_review_queue_idx"),
                migrations.AddIndex(
                    model_name="post",
                    index=models.Index(
                        models.OrderBy(models.F("flagged_at"), nulls_first=True),
                        models.F("id"),
                        condition=models.Q(("needs_human_review", True)),
                        name="post_review_queue_idx",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(rebuild(CREATE), rebuild(CREATE_OLD))],
        ),
    ]
