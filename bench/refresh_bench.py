"""Time `refresh_similar` over a database of many posts.

Usage: .venv/bin/python bench/refresh_bench.py [--count 1000000] [--workers 2]

Starts the same throwaway servers as bench/import_bench.py, imports COUNT generated posts with
`import_posts`, runs VACUUM ANALYZE, then times `manage.py refresh_similar --restart` (every
post's list recomputed) and prints posts per second and its peak memory.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from import_bench import run_manage, start_servers


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="Posts in the database.")
    parser.add_argument("--workers", type=int, default=2, help="refresh_similar --workers.")
    options = parser.parse_args()

    stop_servers = start_servers()
    try:
        env = {**os.environ, "DEBUG": "0", "SECRET_KEY": "bench", "ALLOWED_HOSTS": "localhost"}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "posts.jsonl"
            run_manage("migrate", "--noinput", env=env)
            run_manage("generate_posts", f"--count={options.count}", "--seed=1",
                       f"--output={path}", env=env)
            seconds, peak, _ = run_manage("import_posts", str(path), "--verbosity=0", env=env)
            print(f"import_posts: {options.count:,} posts in {seconds:.1f}s "
                  f"({options.count / seconds:,.0f} posts/s, peak {peak:.0f} MiB)", flush=True)
        run_manage("dbshell", "--", "-c", "VACUUM ANALYZE", env=env)
        seconds, peak, summary = run_manage(
            "refresh_similar", "--restart", f"--workers={options.workers}", "--verbosity=0",
            env=env,
        )
        print(f"refresh_similar: {seconds:.1f}s for {options.count:,} posts "
              f"({options.count / seconds:,.0f} posts/s, peak {peak:.0f} MiB)")
        print(f"    {summary}")
    finally:
        stop_servers()


if __name__ == "__main__":
    main()
