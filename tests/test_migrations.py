"""Migrations that would lock a large table are refused (docs/deploy.md, "Migrations").

On PostgreSQL, CREATE INDEX, a new constraint or a changed column holds a lock that stops
writes (or reads and writes) on the table until it is done: minutes on the posts table at a
million rows, with the site down for editors and imports meanwhile. A new migration touching a
large table must use AddIndexConcurrently / RemoveIndexConcurrently in a migration with
`atomic = False` (or raw SQL with CONCURRENTLY, or NOT VALID then VALIDATE for constraints).
The migrations below were applied before this check and are left as they are.
"""

import re

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations
from django.db.migrations.loader import MigrationLoader

# Tables that grow with the posts: a lock on any of them stops imports and the admin.
LARGE_MODELS = {"post", "posttag", "searchdocument", "similarpost", "revision", "section",
                "imagesource", "reviewevent"}
LARGE_TABLES = {f"posts_{model}" for model in LARGE_MODELS}

# Reviewed by hand when this check was written: 0001-0008 were applied everywhere already, and
# 0009 only widens posts_revision.status (varchar 12 -> 30: a catalogue change, no rewrite).
REVIEWED = {f"000{n}" for n in range(1, 10)}  # 0001-0009

LOCKING = (
    migrations.AddIndex, migrations.RemoveIndex, migrations.AddConstraint,
    migrations.AlterField, migrations.RenameField, migrations.AlterUniqueTogether,
    migrations.AlterIndexTogether,
)
BLOCKING_SQL = re.compile(
    r"\b(CREATE\s+(UNIQUE\s+)?INDEX(?!\s+CONCURRENTLY)|ALTER\s+TABLE|DROP\s+INDEX"
    r"(?!\s+CONCURRENTLY)|VACUUM\s+FULL|CLUSTER)\b", re.IGNORECASE)


def locking_operations(migration):
    """(operation, why) of each operation of `migration` that would lock a large table."""
    for operation in migration.operations:
        model = getattr(operation, "model_name", "") or ""
        if isinstance(operation, AddIndexConcurrently | RemoveIndexConcurrently):
            if migration.atomic:
                yield operation, "concurrent index operations need `atomic = False`"
            continue
        if isinstance(operation, LOCKING) and model.lower() in LARGE_MODELS:
            yield operation, f"{type(operation).__name__} locks posts_{model.lower()}"
        elif isinstance(operation, migrations.AddField) and model.lower() in LARGE_MODELS and (
            operation.field.db_index or operation.field.unique
        ):
            yield operation, f"an indexed new field builds its index under a lock on {model}"
        elif isinstance(operation, migrations.RunSQL):
            sql = " ".join(operation.sql if isinstance(operation.sql, list | tuple)
                           else [operation.sql])
            tables = {table for table in LARGE_TABLES if re.search(rf"\b{table}\b", sql)}
            if tables and BLOCKING_SQL.search(sql):
                yield operation, f"raw SQL that locks {', '.join(sorted(tables))}"


def test_no_new_migration_locks_a_large_table():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    problems = [
        f"posts/migrations/{name}.py: {why}"
        for (app, name), migration in sorted(loader.disk_migrations.items())
        if app == "posts" and name[:4] not in REVIEWED
        for _, why in locking_operations(migration)
    ]
    assert not problems, "\n".join(problems)


def test_the_check_finds_what_it_is_for():
    from django.db import models

    class Locking(migrations.Migration):
        operations = [
            migrations.AddIndex("post", models.Index(fields=["title"], name="post_title_idx")),
            migrations.RunSQL("CREATE INDEX x ON posts_posttag (tag_id)"),
            AddIndexConcurrently("post", models.Index(fields=["slug"], name="post_slug_idx")),
        ]

    class Safe(migrations.Migration):
        atomic = False
        operations = [
            AddIndexConcurrently("post", models.Index(fields=["slug"], name="post_slug_idx")),
            migrations.RunSQL("CREATE INDEX CONCURRENTLY y ON posts_posttag (tag_id)"),
            migrations.AddIndex("tag", models.Index(fields=["name"], name="tag_name_idx")),
        ]

    found = [why for _, why in locking_operations(Locking("0100_locking", "posts"))]
    assert found == ["AddIndex locks posts_post", "raw SQL that locks posts_posttag",
                     "concurrent index operations need `atomic = False`"]
    assert list(locking_operations(Safe("0101_safe", "posts"))) == []
