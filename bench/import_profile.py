"""Where an import's CPU goes: Python against PostgreSQL, and PostgreSQL by statement.

Usage: .venv/bin/python bench/import_profile.py [--base 40000] [--new 10000]

Starts a throwaway PostgreSQL (with pg_stat_statements) and Redis, imports --base generated
posts, runs VACUUM ANALYZE, then imports --new other generated posts into them and prints,
per imported post of that second import: its wall time, the CPU of the import_posts process
and of this PostgreSQL (its server processes, those that exited included), and each
statement's milliseconds from pg_stat_statements (time inside the server, which includes
waiting for locks and for a core; the foreign-key checks are listed on their own and also
counted in the statement that fired them). The two files are generated once and kept in
bench/out/.
"""

import argparse
import os
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from import_bench import PG_SETTINGS, exit_on_sigterm, run_manage  # noqa: E402

STATEMENTS = 18  # statements listed, the costliest first


def process_stats():
    """Return {pid: (parent pid, CPU ticks of it and of its reaped children)} of every
    process."""
    stats = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it exited meanwhile
        # utime, stime, and cutime, cstime: what its children used, added as they are reaped.
        stats[int(pid)] = (int(fields[1]), sum(int(value) for value in fields[11:15]))
    return stats


def server_cpu_seconds(launcher_pid):
    """Return the CPU seconds so far of the PostgreSQL started under `launcher_pid` (runuser
    or the postmaster itself): the postmaster, its processes, and those that exited."""
    stats = process_stats()
    tree = {launcher_pid}
    for _ in range(3):  # runuser -> postmaster -> backends
        tree |= {pid for pid, (parent, _) in stats.items() if parent in tree}
    return sum(stats[pid][1] for pid in tree if pid in stats) / os.sysconf("SC_CLK_TCK")


def timed_import(path, env, server_pid):
    """Import `path`; return (wall seconds, the command's CPU seconds, PostgreSQL's)."""
    server_before = server_cpu_seconds(server_pid)
    own_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds, _, summary = run_manage("import_posts", str(path), "--verbosity=0", env=env)
    own_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (own_after.ru_utime - own_before.ru_utime) + (own_after.ru_stime - own_before.ru_stime)
    print(f"    {summary}")
    return seconds, own, server_cpu_seconds(server_pid) - server_before


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=40_000, help="Posts imported first.")
    parser.add_argument("--new", type=int, default=10_000, help="Posts then profiled.")
    options = parser.parse_args()
    if options.base < 0 or options.new < 1:
        sys.exit("--base must be 0 or more and --new 1 or more")

    from tests import servers

    servers.start_servers(pg_settings={
        **PG_SETTINGS, "shared_preload_libraries": "pg_stat_statements",
        "pg_stat_statements.track": "all",  # the foreign-key checks' statements too
    })
    server_pid = servers._servers.postgres.pid
    try:
        env = {**os.environ, "DEBUG": "0", "SECRET_KEY": "bench", "ALLOWED_HOSTS": "localhost"}
        os.environ.update(env)
        import psycopg

        url = os.environ["DATABASE_URL"]
        run_manage("migrate", "--noinput", env=env)
        OUT.mkdir(parents=True, exist_ok=True)
        base = OUT / f"profile-base-{options.base}.jsonl"
        new = OUT / f"profile-new-{options.new}.jsonl"
        for path, count, seed in ((base, options.base, 1), (new, options.new, 77)):
            if count and not path.exists():
                run_manage("generate_posts", f"--count={count}", f"--seed={seed}",
                           f"--output={path}", env=env)
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        if options.base:
            print(f"importing {options.base:,} posts first")
            seconds, _, _ = timed_import(base, env, server_pid)
            print(f"    {seconds:.1f} s, {options.base / seconds:,.0f} posts/s")
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE")
            connection.execute("CHECKPOINT")
            connection.execute("SELECT pg_stat_statements_reset()")
        print(f"importing {options.new:,} other posts into them")
        seconds, own, server = timed_import(new, env, server_pid)
        per_post = 1000 / options.new
        print(f"    {seconds:.1f} s, {options.new / seconds:,.0f} posts/s; CPU per post: "
              f"import_posts {own * per_post:.3f} ms, PostgreSQL {server * per_post:.3f} ms")
        with psycopg.connect(url, autocommit=True) as connection:
            rows = connection.execute(
                "SELECT total_exec_time, calls, regexp_replace(query, '\\s+', ' ', 'g') "
                "FROM pg_stat_statements ORDER BY 1 DESC LIMIT %s", [STATEMENTS]
            ).fetchall()
        print("ms per post  calls  statement (time inside PostgreSQL)")
        for total, calls, query in rows:
            print(f"{total / options.new:11.3f} {calls:6}  {query[:100]}")
    finally:
        servers.stop_servers()


if __name__ == "__main__":
    exit_on_sigterm()
    main()
