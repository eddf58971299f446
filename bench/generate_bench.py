"""Time `generate_posts` on a fresh SQLite database and print posts per second.

Usage: .venv/bin/python bench/generate_bench.py [--count 10000] [--seed 1]
The issue's target: 10,000 posts in under a minute on SQLite on a 2-core machine.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manage(*args, env):
    """Run manage.py with `args`, failing loudly."""
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DEBUG": "1", "DEBUG_TOOLBAR": "0",
               "SQLITE_PATH": str(Path(tmp) / "bench.sqlite3")}
        env.pop("DATABASE_URL", None)
        manage("migrate", "--noinput", env=env)
        for run in ("first run (creates)", "second run (same seed, updates)"):
            started = time.perf_counter()
            manage("generate_posts", f"--count={options.count}", f"--seed={options.seed}",
                   env=env)
            seconds = time.perf_counter() - started
            print(f"generate_posts --count {options.count} on SQLite, {run}: "
                  f"{seconds:.1f}s, {options.count / seconds:.0f} posts/s")


if __name__ == "__main__":
    main()
