"""Search documents in bands of dates, each band with its own full-text index, and each
document with its post's filter values (issue 9).

A search reads the newest band first and goes to older ones only while it has too few
matches, so its cost no longer grows with the number of posts a word is in; a filtered search
is the same index lookup with the filters' lexemes added (docs/queries.md, "Search").

On PostgreSQL: the documents already there get their facets and band 4 (the oldest band,
which then holds them all) in batches; the four partial indexes are built CONCURRENTLY, and
the index over the whole table is dropped the same way. `manage.py refresh_search_bands` then
moves the newest documents into bands 1-3 (its timer runs it every 10 minutes, imports at
their end); until then searches read band 4, as they read the whole index before.
"""

import django.contrib.postgres.search
from django.db import migrations, models

BANDS = 4
BATCH = 5000

# As posts/derived.py SEARCH_DOCUMENTS_SQL computes them at the time of this migration.
FACETS_SQL = """
UPDATE posts_searchdocument d
SET facets = array_to_tsvector(ARRAY(
        SELECT DISTINCT 'tag ' || l.tag_id FROM posts_posttag l WHERE l.post_id = p.id
    ) || ARRAY['difficulty ' || md5(p.difficulty), 'language ' || md5(p.code_language)]),
    band = CASE WHEN d.listed_at IS NOT NULL THEN %s END
FROM posts_post p
WHERE p.id = d.post_id AND d.post_id = ANY(%s)
"""


def band_rows(apps, schema_editor):
    # The starts of bands 1-3, empty until refresh_search_bands; the last band has none.
    SearchBand = apps.get_model("posts", "SearchBand")
    SearchBand.objects.bulk_create([SearchBand(number=n) for n in range(1, BANDS)])


def fill_facets_and_bands(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    SearchDocument = apps.get_model("posts", "SearchDocument")
    last = 0
    while ids := list(
        SearchDocument.objects.filter(pk__gt=last)
        .order_by("pk")
        .values_list("pk", flat=True)[:BATCH]
    ):
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(FACETS_SQL, [BANDS, ids])
        last = ids[-1]


def band_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for band in range(1, BANDS + 1):
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS searchdocument_band{band}_idx "
            f"ON posts_searchdocument USING gin (vector, facets) WHERE band = {band}"
        )
    schema_editor.execute("DROP INDEX CONCURRENTLY IF EXISTS searchdocument_vector_idx")


def whole_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS searchdocument_vector_idx "
        "ON posts_searchdocument USING gin (vector)"
    )
    for band in range(1, BANDS + 1):
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS searchdocument_band{band}_idx")


class Migration(migrations.Migration):
    atomic = False  # CREATE/DROP INDEX CONCURRENTLY, and one transaction per batch

    dependencies = [
        ("posts", "0009_open_vocabularies"),
    ]

    operations = [
        migrations.CreateModel(
            name="SearchBand",
            fields=[
                ("number", models.PositiveSmallIntegerField(primary_key=True, serialize=False)),
                ("since", models.DateTimeField(null=True)),
            ],
        ),
        migrations.AddField(
            model_name="searchdocument",
            name="facets",
            field=django.contrib.postgres.search.SearchVectorField(null=True),
        ),
        migrations.AddField(
            model_name="searchdocument",
            name="band",
            field=models.PositiveSmallIntegerField(null=True),
        ),
        migrations.RunPython(band_rows, migrations.RunPython.noop),
        migrations.RunPython(fill_facets_and_bands, migrations.RunPython.noop),
        migrations.RunPython(band_indexes, whole_index),
    ]
