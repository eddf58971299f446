"""Time the public pages on a PostgreSQL database of many posts, without any cache in front.

Usage: .venv/bin/python bench/page_bench.py [--count 100000] [--pages 20]

Starts the same throwaway servers as bench/import_bench.py, imports COUNT generated posts, then
renders pages through Django's test client (the whole stack but the network) and prints the
median and slowest time of each kind of page.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from import_bench import run_manage, start_servers


def timed(client, path):
    """Return the seconds one GET of `path` takes; fail loudly unless it answers 200."""
    started = time.perf_counter()
    response = client.get(path)
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        sys.exit(f"GET {path} answered {response.status_code}")
    return seconds


def report(label, seconds):
    print(f"{label}: median {statistics.median(seconds) * 1000:.0f} ms, "
          f"slowest {max(seconds) * 1000:.0f} ms ({len(seconds)} pages)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="Posts in the database.")
    parser.add_argument("--pages", type=int, default=20, help="Pages of each kind to time.")
    options = parser.parse_args()

    stop_servers = start_servers()
    try:
        env = {**os.environ, "DEBUG": "0", "SECRET_KEY": "bench", "ALLOWED_HOSTS": "testserver"}
        os.environ.update(env)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "posts.jsonl"
            run_manage("migrate", "--noinput", env=env)
            run_manage("generate_posts", f"--count={options.count}", "--seed=1",
                       f"--output={path}", env=env)
            run_manage("import_posts", str(path), "--verbosity=0", env=env)

        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alphanode.settings")
        django.setup()
        from django.db import connection
        from django.test import Client

        from posts.models import Post, Tag

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        client = Client()
        published = Post.objects.published()
        slugs = list(published.order_by("?").values_list("slug", flat=True)[: options.pages])
        pages = published.count() // 20
        tag = Tag.objects.get(slug="stack-python-services")
        kinds = {
            "article page": [f"/posts/{slug}/" for slug in slugs],
            "latest posts, first page": ["/"] * options.pages,
            f"latest posts, page {pages // 2} of {pages}": [f"/?page={pages // 2}"] * options.pages,
            f"tag page ({tag.name}), first page": [tag.get_absolute_url()] * options.pages,
        }
        print(f"{options.count:,} posts, PostgreSQL, Django test client, no cache:")
        for label, paths in kinds.items():
            timed(client, paths[0])  # warm the connection and PostgreSQL's buffers
            report(label, [timed(client, path) for path in paths])
        connection.close_pool()
    finally:
        stop_servers()


if __name__ == "__main__":
    main()
