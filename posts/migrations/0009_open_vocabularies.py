"""Revision statuses and tag kinds are open vocabularies (issue 10): an old-site word we have
not seen is imported as written instead of refusing the page. The fields lose their choices
(a state-only change), the revision status its check constraint, and its column grows to 30
characters so such words are not cut short (on PostgreSQL widening a varchar rewrites neither
the table nor its index)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("posts", "0008_search_documents_listed_at"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="revision",
            name="revision_status_valid",
        ),
        migrations.AlterField(
            model_name="revision",
            name="status",
            field=models.CharField(default="draft", max_length=30),
        ),
        migrations.AlterField(
            model_name="tag",
            name="kind",
            field=models.CharField(max_length=20),
        ),
    ]
