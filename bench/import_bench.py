"""Benchmark import_posts on PostgreSQL: bulk import, re-import, and a naive per-row loop.

Usage: .venv/bin/python bench/import_bench.py [--count 100000] [--naive-count 300]

Starts a throwaway PostgreSQL and Redis (as the tests do, with fsync off; PostgreSQL also with
the memory settings in PG_SETTINGS) unless DATABASE_URL and REDIS_URL are set, generates a JSON
Lines file, then in one run prints posts per second for:
  1. import_posts of the file into an empty database,
  2. import_posts of the same file again (every post unchanged),
  3. a deliberately naive per-row ORM loop (update_or_create per post and per relation) over a
     small sample, and the ratio of 1 to 3 per post.
Each import runs as its own `manage.py import_posts` process, whose peak memory is printed too.
Targets on a 2-core machine: 100,000 posts in under 40 s, re-import under 20 s, at least 50x
faster per post than the naive loop.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# Memory for a database that holds the whole import, as a production server would have (the
# defaults, 128 MB of buffers and a checkpoint every 1 GB of WAL, suit the tests' tiny data).
PG_SETTINGS = {"shared_buffers": "1GB", "max_wal_size": "4GB", "checkpoint_timeout": "30min"}


def start_servers():
    """Start throwaway servers for whichever of DATABASE_URL/REDIS_URL is unset."""
    from tests import servers

    servers.start_servers(
        postgres=not os.environ.get("DATABASE_URL"),
        redis_server=not os.environ.get("REDIS_URL"),
        pg_settings=PG_SETTINGS,
    )
    return servers.stop_servers


def exit_on_sigterm():
    """Make SIGTERM end this process as Ctrl-C does: through its `finally` blocks and atexit,
    which stop the servers, gunicorns and commands it started."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def run_manage(*args, env):
    """Run manage.py `args`; return (seconds, its peak RSS in MiB, its stdout)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, stdout=out, stderr=err
        )
        try:
            # wait4 reports the resource use of this child alone, unlike RUSAGE_CHILDREN.
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:  # interrupted: the command must not outlive the benchmark
            process.kill()
            process.wait()
            raise
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            sys.exit(f"manage.py {' '.join(args)} failed:\n{err.read()[-2000:]}")
        return seconds, usage.ru_maxrss / 1024, out.read().strip()


def naive_import(records):
    """Import `records` one row at a time, the way a first draft would."""
    from posts.models import ImageSource, Post, PostTag, Revision, Section, Tag, TagKind, TagRole
    from posts.services import POST_FIELDS, tag_slug

    for record in records:
        post, _ = Post.objects.update_or_create(
            source_id=record.source_id,
            defaults={
                **{name: getattr(record, name) for name in POST_FIELDS},
                "checklist": list(record.checklist),
                "notes": list(record.notes),
            },
        )
        Revision.objects.update_or_create(
            post=post,
            defaults={"status": record.revision_status, "version": record.revision_version,
                      "last_reviewed": record.last_reviewed},
        )
        post.tag_links.all().delete()
        items = [(TagRole.STACK, TagKind.STACK, name) for name in record.stack]
        items += [(TagRole.TOOL, TagKind.TOOL, name) for name in record.tools]
        items += [(TagRole.ENTITY, entity.type, entity.name) for entity in record.entities]
        for position, (role, kind, name) in enumerate(items):
            tag, _ = Tag.objects.get_or_create(
                kind=kind, name=name, defaults={"slug": tag_slug(kind, name)}
            )
            PostTag.objects.get_or_create(post=post, tag=tag, role=role,
                                          defaults={"position": position})
        post.sections.all().delete()
        for position, section in enumerate(record.sections):
            Section.objects.create(post=post, position=position, heading=section.heading,
                                   body="\n\n".join(section.paragraphs))
        post.figures.all().delete()
        for position, figure in enumerate(record.figures):
            ImageSource.objects.create(
                post=post, position=position, source=figure.source, url=figure.url,
                caption=figure.caption, placement=figure.placement,
                section_position=figure.section_position,
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="Posts in the bulk file.")
    parser.add_argument("--naive-count", type=int, default=300, help="Posts for the naive loop.")
    parser.add_argument("--batch-size", type=int, default=500)
    options = parser.parse_args()

    stop_servers = start_servers()
    try:
        env = {**os.environ, "DEBUG": "0", "SECRET_KEY": "bench", "ALLOWED_HOSTS": "localhost"}
        os.environ.update(env)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "posts.jsonl"
            run_manage("migrate", "--noinput", env=env)
            seconds, _, _ = run_manage(
                "generate_posts", f"--count={options.count}", "--seed=1", f"--output={path}",
                env=env,
            )
            size = path.stat().st_size / 2**20
            print(f"generated {options.count:,} posts as JSON Lines: {size:.0f} MiB in "
                  f"{seconds:.1f}s")

            figures = {}
            for label in ("import into an empty database", "re-import of the same file"):
                seconds, peak, summary = run_manage(
                    "import_posts", str(path), f"--batch-size={options.batch_size}",
                    "--verbosity=0", env=env,
                )
                figures[label] = options.count / seconds
                print(f"{label}: {options.count:,} posts in {seconds:.1f}s, "
                      f"{figures[label]:,.0f} posts/s (peak memory {peak:.0f} MiB)")
                print(f"    {summary}")

            import django

            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alphanode.settings")
            django.setup()
            from posts.generation import generate_records

            sample = list(generate_records(options.naive_count, seed=2))
            started = time.perf_counter()
            naive_import(sample)
            seconds = time.perf_counter() - started
            naive_rate = options.naive_count / seconds
            print(f"naive per-row ORM loop: {options.naive_count:,} posts in {seconds:.1f}s, "
                  f"{naive_rate:,.0f} posts/s")
            bulk_rate = figures["import into an empty database"]
            print(f"bulk import is {bulk_rate / naive_rate:.0f}x faster per post than the "
                  "naive loop")
            from django.db import connection

            connection.close_pool()  # stop the pool's threads before the servers go
    finally:
        stop_servers()


if __name__ == "__main__":
    exit_on_sigterm()
    main()
