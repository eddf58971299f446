"""Search documents carry their post's listing date (issue 9), so that a search walks the newest
documents without reading posts: the column, filled for the posts already there in batches,
then its index."""

from django.db import migrations, models

BATCH = 20_000


def fill_listed_at(apps, schema_editor):
    SearchDocument = apps.get_model("posts", "SearchDocument")
    Post = apps.get_model("posts", "Post")
    last = 0
    while ids := list(
        SearchDocument.objects.filter(pk__gt=last)
        .order_by("pk")
        .values_list("pk", flat=True)[:BATCH]
    ):
        SearchDocument.objects.filter(pk__in=ids).update(
            listed_at=models.Subquery(
                Post.objects.filter(pk=models.OuterRef("pk"), status="published").values(
                    "published_at"
                )[:1]
            )
        )
        last = ids[-1]


class Migration(migrations.Migration):
    dependencies = [
        ("posts", "0007_search_documents"),
    ]

    operations = [
        migrations.AddField(
            model_name="searchdocument",
            name="listed_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(fill_listed_at, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="searchdocument",
            index=models.Index(
                condition=models.Q(("listed_at__isnull", False)),
                fields=["-listed_at", "-post"],
                name="searchdocument_listed_idx",
            ),
        ),
    ]
