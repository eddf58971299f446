"""Benchmark the site under load at several sizes: pages, queries, plans and imports.

Usage: .venv/bin/python bench/site_bench.py [--sizes 10000,1000000] [--duration 5]

For each size, in a process of its own: starts a throwaway PostgreSQL and Redis (as the tests
do, with production-like memory), imports that many generated posts through `import_posts`
(timing it and its peak memory) plus a few crafted ones (a post with 20 tags, 3 images and 10
entities; 20 posts on a rare tag), runs VACUUM ANALYZE, times `refresh_similar --restart`,
counts each page's SQL queries and EXPLAIN ANALYZEs each of them (flagging sequential scans of
tables over 10,000 rows and sorts that spill to disk), and serves the site with gunicorn
(DEBUG off, 2 sync workers) on loopback.

Once every size is served, the sizes are measured side by side: every page is driven with wrk
for --duration seconds at each size in turn (--rounds times, the order of the sizes
alternating), each run followed by a trivial Django view on the same gunicorn (the ceiling),
and the article and home pages also against their naive N+1 versions (bench/bench_urls.py).

Prints a table per size and the ratios, and writes bench/results/latest-<sizes>.json and .md
(and a dated copy of the JSON) and bench/results/p95-<sizes>.png, so a run at 10,000 alone
leaves the figures of the last run at both sizes in place. Then the warm pages: from the Redis
page cache (a gunicorn with PAGE_CACHE on) and from Varnish in front of it, each against that
gunicorn's hello-world ceiling. Needs `wrk` (apt-get install -y wrk), Varnish (apt-get install
-y varnish varnish-modules) and matplotlib (the bench extra: pip install -e '.[bench]').
"""

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from import_bench import PG_SETTINGS, exit_on_sigterm, run_manage  # noqa: E402

SEQ_SCAN_ROWS = 10_000  # a sequential scan of a table larger than this is flagged
DEFAULT_ROUNDS = 3  # runs of each page at each size when several sizes are measured
READY = "BENCH SITE READY"  # a size's bench process serves its pages
RARE_TAG = "bench rare tool"
RARE_POSTS = 20
RARE_WORD = "zeppelin"  # in the rare posts' titles only
COMMON_WORD = "queries"  # in a large share of generated posts
LESS_COMMON_WORD = "terraform"  # in a few percent of them: more than the newest band has
WRK_SCRIPT = """
local paths = {%(paths)s}
local headers = {%(headers)s}
request = function()
  return wrk.format("GET", paths[math.random(#paths)], headers)
end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %%d %%d %%f %%d %%d %%d\\n", summary.requests, errors,
    summary.duration / 1e6, latency:percentile(50), latency:percentile(95),
    latency:percentile(99)))
end
"""


@dataclasses.dataclass
class Run:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def rps(self):
        return self.requests / self.seconds if self.seconds else 0.0


def share(part, whole):
    """part / whole, or 0 when nothing was measured (a page whose every request timed out)."""
    return part / whole if whole else 0.0


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wrk(url_base, paths, duration, connections, headers=None):
    """Drive `paths` (chosen at random per request) for `duration` seconds; return a Run."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {
            "paths": ", ".join(json.dumps(path) for path in paths),
            "headers": ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}"
                                 for k, v in (headers or {}).items()),
        })
    try:
        output = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
             "-s", script.name, url_base],
            capture_output=True, text=True, check=True, timeout=duration + 60,
        ).stdout
    finally:
        os.unlink(script.name)
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    requests, errors, seconds, p50, p95, p99 = line.split()[1:]
    return Run(int(requests), int(errors), float(seconds), int(p50) / 1000, int(p95) / 1000,
               int(p99) / 1000)


def crafted_records(count):
    """Return the crafted posts: one rich post, and RARE_POSTS posts on a rare tag."""
    from posts.generation import generate_records
    from posts.records import EntityRecord

    base = list(generate_records(RARE_POSTS + 1, seed=9))
    rich = base[0]
    figures = rich.figures
    while len(figures) < 3:
        figures = figures + figures[:1]
    figures = tuple(dataclasses.replace(f, placement="intro", section_position=None)
                    for f in figures[:3])
    entity_types = ("stack", "area", "problem", "language", "scenario")
    rich = dataclasses.replace(
        rich,
        source_id="bench-rich", slug="bench-rich-post", reference="bench-rich",
        title="bench: a post with 20 tags, 3 images and 10 entities",
        status="published", published_at=datetime.datetime.now(datetime.UTC),
        stack=("python services", "backend", "python"),
        tools=("fastapi", "pytest", "uvicorn", "ruff", "git", "docker", "sentry"),
        entities=tuple(EntityRecord(name, kind) for name, kind in zip(
            ("python services", "backend", "caching api responses", "python", "behind a cdn",
             "improving database queries", "django", "postgresql", "frontend",
             "tracing slow requests"),
            entity_types * 2, strict=True)),
        figures=figures, has_images=True, image_heavy=True,
    )
    rare = [
        dataclasses.replace(
            record, source_id=f"bench-rare-{n}", slug=f"bench-rare-{n}",
            reference=f"bench-rare-{n}", status="published",
            title=f"{record.title}: {RARE_WORD} notes",  # what the rare search finds
            published_at=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
            + datetime.timedelta(days=n * 20),
            tools=(*record.tools, RARE_TAG),
        )
        for n, record in enumerate(base[1:])
    ]
    return [rich, *rare]


def write_posts_file(path, count, env):
    """Generate `count` posts as JSON Lines into `path`, then append the crafted ones."""
    run_manage("generate_posts", f"--count={count}", "--seed=1", f"--output={path}", env=env)
    from posts.serialization import dumps, record_to_dict

    with open(path, "a") as out:
        for record in crafted_records(count):
            out.write(dumps(record_to_dict(record)) + "\n")


def start_gunicorn(port, env, log):
    """Start gunicorn (2 sync workers) on 127.0.0.1:`port`, errors to `log`; wait for it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--no-control-socket", "--workers", "2",
         "--bind", f"127.0.0.1:{port}", "--pythonpath", "bench", "--error-logfile", str(log),
         "alphanode.wsgi"],
        cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "bench_settings"},
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/hello/", timeout=2)
            return process
        except OSError:
            if process.poll() is not None:
                sys.exit(f"gunicorn exited with {process.returncode}; see {log}")
            time.sleep(0.2)
    process.kill()
    sys.exit(f"gunicorn did not answer within 30 s; see {log}")


def stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def plan_problems(plan, tables):
    """Return the sequential scans of big tables and the on-disk sorts in an EXPLAIN plan.

    A node that never ran (0 loops: a one-time filter stopped it, as search's older bands
    when the newest has enough matches) read nothing, and neither did anything under it.
    """
    if plan.get("Actual Loops") == 0:
        return []
    problems = []
    node_type = plan.get("Node Type")
    relation = plan.get("Relation Name")
    if node_type == "Seq Scan" and tables.get(relation, 0) > SEQ_SCAN_ROWS:
        problems.append(f"sequential scan of {relation} ({tables[relation]:,} rows)")
    if plan.get("Sort Space Type") == "Disk":
        problems.append(f"sort spilled to disk ({plan.get('Sort Space Used')} kB)")
    for child in plan.get("Plans", []):
        problems += plan_problems(child, tables)
    return problems


def inspect_pages(pages, session_key):
    """Return, for each page, its query count and each distinct query's plan summary."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples::bigint FROM pg_class WHERE relkind = 'r' "
            "AND relnamespace = 'public'::regnamespace"
        )
        tables = dict(cursor.fetchall())
    client = Client()
    report = {}
    for name, page in pages.items():
        client.cookies.clear()
        if page.get("login"):
            client.cookies["sessionid"] = session_key
        path = page["paths"][0]
        client.get(path)  # warm
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path)
        if response.status_code != 200:
            sys.exit(f"{path} answered {response.status_code} to the test client")
        queries = []
        for query in captured.captured_queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}")
                plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            top = plan[0]
            queries.append({
                "sql": sql[:300],
                "ms": round(top["Execution Time"], 2),
                "problems": plan_problems(top["Plan"], tables),
            })
        report[name] = {"queries": len(captured.captured_queries), "plans": queries}
    return report


def bench_size(size, options):
    from tests import servers

    servers.start_servers(pg_settings=PG_SETTINGS)
    gunicorn = None
    try:
        env = {**os.environ, "DEBUG": "0", "SECRET_KEY": "bench", "SECURE_SSL_REDIRECT": "0",
               "ALLOWED_HOSTS": "127.0.0.1,testserver", "LOG_LEVEL": "WARNING",
               # Static files as deployed: collected, hashed, served by WhiteNoise.
               "STATIC_ROOT": str(servers._servers.tmpdir / "static")}
        os.environ.update(env)
        run_manage("collectstatic", "--noinput", env=env)
        result = {"size": size}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "posts.jsonl"
            run_manage("migrate", "--noinput", env=env)
            write_posts_file(path, size, env)
            seconds, peak, summary = run_manage("import_posts", str(path), "--verbosity=0",
                                                env=env)
        imported = size + RARE_POSTS + 1
        result["import"] = {"posts": imported, "seconds": round(seconds, 1),
                            "posts_per_second": round(imported / seconds),
                            "peak_mib": round(peak), "summary": summary}
        print(f"\n{size:,} posts: import {seconds:.1f} s, {imported / seconds:,.0f} posts/s, "
              f"peak {peak:.0f} MiB", flush=True)
        run_sql("VACUUM ANALYZE", env)
        seconds, peak, summary = run_manage("refresh_similar", "--restart", "--verbosity=0",
                                            env=env)
        result["refresh_similar"] = {"seconds": round(seconds, 1),
                                     "posts_per_second": round(imported / seconds),
                                     "peak_mib": round(peak), "summary": summary}
        print(f"refresh_similar: {seconds:.1f} s, {imported / seconds:,.0f} posts/s, "
              f"peak {peak:.0f} MiB", flush=True)
        # Pages are measured on a settled database, as a site serves between imports: the
        # refresh rewrote every similar list (8 rows per post), whose dead rows autovacuum
        # would otherwise clean up, and whose dirty buffers a checkpoint would write, in the
        # middle of the page runs (at a million posts both took a core while the ceiling was
        # measured).
        run_sql("VACUUM ANALYZE", env)
        run_sql("CHECKPOINT", env)
        wait_for_autovacuum(env)

        import django

        os.environ["DJANGO_SETTINGS_MODULE"] = "bench_settings"
        django.setup()
        from django.contrib.auth.models import User
        from django.db import connection
        from django.test import Client

        from posts.models import Post, Tag

        admin = User.objects.create_superuser("bench", password="bench-password-123")
        login = Client()
        login.force_login(admin)
        session_key = login.cookies["sessionid"].value
        popular = Tag.objects.order_by("-post_count").first()
        rare = Tag.objects.get(name=RARE_TAG)
        published = Post.objects.published()
        rng = random.Random(size)
        ids = list(published.order_by("-id").values_list("id", flat=True)[:1])
        top = ids[0]
        sample = set(rng.randrange(1, top) for _ in range(400))
        random_slugs = list(published.filter(pk__in=sample).values_list("slug", flat=True))[:100]
        rich = "/posts/bench-rich-post/"
        pages = {
            "article, 20 tags": {"paths": [rich], "naive": f"/bench/naive{rich}"},
            "article, random": {"paths": [f"/posts/{slug}/" for slug in random_slugs]},
            "home, first page": {"paths": ["/"], "naive": "/bench/naive/"},
            "home, last page": {"paths": ["/?page=last"]},
            "popular tag, first page": {"paths": [popular.get_absolute_url()]},
            "popular tag, last page": {"paths": [f"{popular.get_absolute_url()}?page=last"]},
            "rare tag, first page": {"paths": [rare.get_absolute_url()]},
            "rare tag, last page": {"paths": [f"{rare.get_absolute_url()}?page=last"]},
            "search, common word": {"paths": [f"/search/?q={COMMON_WORD}"]},
            "search, rare word": {"paths": [f"/search/?q={RARE_WORD}"]},
            "search, less common word": {"paths": [f"/search/?q={LESS_COMMON_WORD}"]},
            # Filters (issue 9): two of the post's own columns; a popular stack and one of its
            # tools; search narrowed by a difficulty.
            "home, filtered": {"paths": ["/?difficulty=advanced&language=python"]},
            "tag, filtered by a tool": {
                "paths": ["/tags/stack-python-services/?tool=tool-pytest&difficulty=beginner"]
            },
            "search, filtered": {"paths": [f"/search/?q={COMMON_WORD}&difficulty=advanced"]},
            "admin posts list": {"paths": ["/admin/posts/post/"], "login": True},
            "review queue": {"paths": ["/review/"], "login": True},
        }
        inspected = inspect_pages(pages, session_key)
        connection.close_pool()

        port = free_port()
        log = Path(tempfile.gettempdir()) / f"alphanode-bench-gunicorn-{size}.log"
        gunicorn = start_gunicorn(port, env, log)
        # Serve until the parent has measured every size's pages side by side
        # (measure_side_by_side); it then says "warm" to go on. End of input (the parent is
        # gone) stops here; so does SIGTERM (stop_site).
        result["inspected"] = inspected
        Path(options.output).write_text(json.dumps({
            "result": result, "base": f"http://127.0.0.1:{port}", "pages": pages,
            "session_key": session_key,
        }))
        print(READY, flush=True)
        if sys.stdin.readline().strip() != "warm":
            return None
        stop(gunicorn)
        gunicorn = None
        result["warm"] = bench_warm(pages, env, options)
        result["hit_ratio"] = bench_hit_ratio(env, options)
        return {"warm": result["warm"], "hit_ratio": result["hit_ratio"]}
    finally:
        if gunicorn is not None:
            stop(gunicorn)
        servers.stop_servers()


@dataclasses.dataclass
class Site:
    """One size's site, set up and served by its own bench process (bench_size), and what the
    side-by-side measurement found on it."""

    size: int
    process: subprocess.Popen
    output: Path
    base: str = ""
    pages: dict = dataclasses.field(default_factory=dict)
    session_key: str = ""
    result: dict = dataclasses.field(default_factory=dict)
    hello: Run | None = None  # the latest hello-world run on this site's gunicorn


def start_site(size, output, options):
    """Start the bench process of one size; return its Site once it serves, having echoed
    its progress (the import of a million posts takes a while)."""
    process = subprocess.Popen(
        [sys.executable, __file__, f"--one-size={size}", f"--output={output}",
         f"--duration={options.duration}", f"--warm-duration={options.warm_duration}",
         f"--connections={options.connections}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    site = Site(size, process, output)
    try:
        for line in process.stdout:
            if line.strip() == READY:
                ready = json.loads(output.read_text())
                site.base, site.pages = ready["base"], ready["pages"]
                site.session_key, site.result = ready["session_key"], ready["result"]
                return site
            print(line, end="", flush=True)
    except BaseException:  # interrupted while it sets up: it stops its servers on SIGTERM
        process.terminate()
        process.wait()
        raise
    process.wait()
    raise SystemExit(f"the bench process of {size:,} posts exited with {process.returncode} "
                     "before serving its pages (its output is above)")


def finish_site(site):
    """Have a site's bench process measure its warm pages and stop; echo its output; return
    what it wrote."""
    site.process.stdin.write("warm\n")
    site.process.stdin.close()
    for line in site.process.stdout:
        print(line, end="", flush=True)
    if site.process.wait() != 0:
        raise SystemExit(f"the bench process of {site.size:,} posts exited with "
                         f"{site.process.returncode}")
    return json.loads(site.output.read_text())


def stop_site(site):
    """End a site's bench process if it still runs (it stops its servers on SIGTERM)."""
    if site.process.poll() is None:
        site.process.terminate()
        try:
            site.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            site.process.kill()
            site.process.wait()


def wait_until_served(base, fast=0.05, seconds=120):
    """Wait until gunicorn has worked through the requests queued before this call: until
    three hello-world requests in a row are answered within `fast` seconds, then for a
    moment more, the other worker's last request."""
    deadline = time.monotonic() + seconds
    in_a_row = 0
    while in_a_row < 3 and time.monotonic() < deadline:
        started = time.monotonic()
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"{base}/bench/hello/", timeout=seconds).read()
        in_a_row = in_a_row + 1 if time.monotonic() - started < fast else 0
    time.sleep(2)


def measure_side_by_side(sites, options):
    """Drive every page on every site, the sizes one after another in each round, and every
    run followed by a hello-world run on the same gunicorn (its ceiling); fill each site's
    result["pages"] with the median of its rounds.

    The sizes are served at the same time so that a ratio between them (p95 at a million over
    p95 at 10,000) compares runs made within seconds of each other: this machine's speed
    drifts by a quarter over the tens of minutes between one size's runs and the next's.
    Rounds alternate the order of the sizes (A B, B A, A B), so a drift within a page's runs
    weighs on both sizes alike, and the median of three rounds leaves out one disturbed run.
    """
    rounds = rounds_of(options, sites)
    for site in sites:
        wrk(site.base, ["/bench/hello/"], 2, options.connections)  # warm up
        site.hello = wrk(site.base, ["/bench/hello/"], options.duration, options.connections)
        site.result["pages"] = {}
    for name in sites[0].pages:
        runs = {site.size: [] for site in sites}
        naive = {}
        for site in sites:
            # Each gunicorn worker's first requests of a page compile its templates and
            # prepare its statements: not what is being measured.
            drive(site, name, 1, options)
        for number in range(rounds):
            for site in sites if number % 2 == 0 else sites[::-1]:
                page = site.pages[name]
                run = drive(site, name, options.duration, options)
                hello_after = wrk(site.base, ["/bench/hello/"], options.duration,
                                  options.connections)
                ceiling = (site.hello.rps + hello_after.rps) / 2
                site.hello = hello_after
                runs[site.size].append((run, ceiling))
                if run.requests == 0:
                    # Every request outlived wrk's time-out: report it, let gunicorn catch up.
                    print(f"  {site.size:,}: {name}: NO REQUEST FINISHED within wrk's 10 s "
                          "time-out", flush=True)
                    wrk(site.base, ["/bench/hello/"], 30, options.connections)
                if number == 0 and page.get("naive"):
                    naive[site.size] = wrk(site.base, [page["naive"]], options.duration,
                                           options.connections)
                    # Let the naive requests still queued in gunicorn finish before the next
                    # run, at either size (at a million posts each naive home page counts
                    # them all, 1.6 s).
                    wait_until_served(site.base)
        for site in sites:
            entry = page_entry(runs[site.size], site.result["inspected"][name])
            if site.size in naive:
                entry["naive_rps"] = round(naive[site.size].rps, 1)
                entry["optimized_over_naive"] = round(share(entry["rps"], naive[site.size].rps),
                                                      2)
            site.result["pages"][name] = entry
            print(f"  {site.size:,}: {name}: {entry['rps']:,.0f} req/s "
                  f"({entry['ratio_to_ceiling']:.1%} of {entry['ceiling_rps']:,.0f}), "
                  f"p95 {entry['p95_ms']:.1f} ms ({', '.join(
                      f'{run.p95_ms:.1f}' for run, _ in runs[site.size])}), "
                  f"{entry['queries']} queries"
                  + (f", {entry['optimized_over_naive']}x naive" if site.size in naive else "")
                  + (f", {entry['errors']} errors" if entry["errors"] else ""), flush=True)


def drive(site, name, seconds, options):
    """Drive page `name` of `site` with wrk for `seconds` (logged in if the page needs it)."""
    page = site.pages[name]
    headers = {"Cookie": f"sessionid={site.session_key}"} if page.get("login") else None
    return wrk(site.base, page["paths"], seconds, options.connections, headers)


def rounds_of(options, sizes):
    """Return the runs of each page at each size: --rounds, else 3 with several sizes."""
    return options.rounds or (DEFAULT_ROUNDS if len(sizes) > 1 else 1)


def page_entry(runs, inspected):
    """Return a page's figures at one size from its rounds [(Run, ceiling req/s)]: the median
    over the rounds of its req/s, latencies, ceiling and ratio to the ceiling (each round's
    req/s over that round's own ceiling); the totals of its requests, errors and seconds; the
    rounds themselves; its queries and their plans."""
    def median(values):
        return round(statistics.median(values), 3)

    rps = median([run.rps for run, _ in runs])
    ceiling = median([ceiling for _, ceiling in runs])
    return {
        "requests": sum(run.requests for run, _ in runs),
        "errors": sum(run.errors for run, _ in runs),
        "seconds": round(sum(run.seconds for run, _ in runs), 2),
        "p50_ms": median([run.p50_ms for run, _ in runs]),
        "p95_ms": median([run.p95_ms for run, _ in runs]),
        "p99_ms": median([run.p99_ms for run, _ in runs]),
        "rps": round(rps, 1),
        "ceiling_rps": round(ceiling, 1),
        "ratio_to_ceiling": round(median([share(run.rps, ceiling) for run, ceiling in runs]), 4),
        "rounds": [{**dataclasses.asdict(run), "rps": round(run.rps, 1),
                    "ceiling_rps": round(ceiling, 1)} for run, ceiling in runs],
        "queries": inspected["queries"],
        "plans": inspected["plans"],
    }


WARM_PAGES = ("article, 20 tags", "article, random", "home, first page",
              "popular tag, first page", "rare tag, first page", "search, common word")


def bench_warm(pages, env, options):
    """Measure the reader pages served warm: from Redis by gunicorn (PAGE_CACHE on), and from
    Varnish in front of it, each against the same gunicorn's hello-world ceiling."""
    with behind_varnish({**env, "SERVER_TIMING": "1"}, "warm") as (base, front, _):
        hello = wrk(base, ["/bench/hello/"], options.warm_duration, options.connections)
        warm = {}
        for name in WARM_PAGES:
            paths = pages[name]["paths"]
            for where, url in (("redis", base), ("varnish", front)):
                timings = [fetch_server_timing(url + path) for path in paths for _ in range(2)]
                run = wrk(url, paths, options.warm_duration, options.connections)
                hello_after = wrk(base, ["/bench/hello/"], options.warm_duration,
                                  options.connections)
                ceiling = (hello.rps + hello_after.rps) / 2
                hello = hello_after
                entry = {**dataclasses.asdict(run), "rps": round(run.rps, 1),
                         "ceiling_rps": round(ceiling, 1),
                         "ratio_to_ceiling": round(share(run.rps, ceiling), 4),
                         "server_timing_when_warm": timings[-1]}
                warm.setdefault(name, {})[where] = entry
                print(f"  warm from {where}: {name}: {run.rps:,.0f} req/s "
                      f"({share(run.rps, ceiling):.1%} of {ceiling:,.0f}), p95 {run.p95_ms:.1f} ms"
                      + (f", {run.errors} errors" if run.errors else ""), flush=True)
        return warm


@contextlib.contextmanager
def behind_varnish(env, name):
    """Serve the app with gunicorn (the page cache on) and Varnish in front of it, both fresh;
    yield (gunicorn's base URL, Varnish's, Varnish's working directory for varnishstat)."""
    from tests import servers

    port, varnish_port = free_port(), free_port()
    log = Path(tempfile.gettempdir()) / f"alphanode-bench-gunicorn-{name}.log"
    gunicorn = start_gunicorn(port, {**env, "PAGE_CACHE": "1"}, log)
    varnish = None
    tmpdir = Path(tempfile.mkdtemp(prefix=f"alphanode-bench-{name}-", dir="/tmp"))
    try:
        varnish = servers.start_varnish(tmpdir, varnish_port, port, probe_interval="2s")
        servers.wait_for_http(f"http://127.0.0.1:{varnish_port}/healthz", varnish, "varnishd",
                              tmpdir / "varnishd.log")
        yield (f"http://127.0.0.1:{port}", f"http://127.0.0.1:{varnish_port}",
               tmpdir / "varnish")
    finally:
        if varnish is not None:
            stop(varnish)
        stop(gunicorn)
        shutil.rmtree(tmpdir, ignore_errors=True)


# Readers' interest in articles: the r-th newest of N is read with weight 1 / r (Zipf, s = 1),
# the shape web traffic over a catalogue usually has. HIT_RATIO_SAMPLE addresses drawn so;
# wrk picks among them uniformly, so each article is requested about as often as its weight.
HIT_RATIO_SAMPLE = 50_000
HIT_RATIO_ARTICLES = 200_000  # the newest this many: older ones are drawn with weight ~0


def varnish_counters(varnish_dir):
    """(cache hits, cache misses) so far of the Varnish working in `varnish_dir`."""
    output = subprocess.run(
        ["varnishstat", "-1", "-n", str(varnish_dir), "-f", "MAIN.cache_hit",
         "-f", "MAIN.cache_miss"], capture_output=True, text=True, check=True).stdout
    values = {line.split()[0]: int(line.split()[1]) for line in output.splitlines()}
    return values["MAIN.cache_hit"], values["MAIN.cache_miss"]


def bench_hit_ratio(env, options):
    """Serve articles drawn by Zipf's law through Varnish in front of a gunicorn with the page
    cache on, both cold at the start; return Varnish's hit ratio over two consecutive halves
    of the run (the second: once the popular pages are in), from varnishstat's counters."""
    import random

    from posts.models import Post

    slugs = list(Post.objects.published().order_by("-published_at", "-id")
                 .values_list("slug", flat=True)[:HIT_RATIO_ARTICLES])
    weights = [1 / rank for rank in range(1, len(slugs) + 1)]
    paths = [f"/posts/{slug}/" for slug in
             random.Random(7).choices(slugs, weights=weights, k=HIT_RATIO_SAMPLE)]
    with behind_varnish(env, "hits") as (_, front, varnish_dir):
        halves = []
        for _ in range(2):
            hits_before, misses_before = varnish_counters(varnish_dir)
            run = wrk(front, paths, options.duration * 2, options.connections)
            hits, misses = varnish_counters(varnish_dir)
            hits, misses = hits - hits_before, misses - misses_before
            halves.append({"requests": run.requests, "rps": round(run.rps, 1),
                           "varnish_hits": hits, "varnish_misses": misses,
                           "hit_ratio": round(share(hits, hits + misses), 4)})
        result = {"articles": len(slugs), "sample": HIT_RATIO_SAMPLE,
                  "distinct_addresses": len(set(paths)), "halves": halves}
        print(f"  hit ratio, Zipf over {len(slugs):,} articles ({len(set(paths)):,} distinct "
              f"addresses drawn): Varnish {halves[0]['hit_ratio']:.1%} from cold, "
              f"{halves[1]['hit_ratio']:.1%} after", flush=True)
        return result


def fetch_server_timing(url):
    """GET `url` once (filling the caches); return its Server-Timing, or Varnish's X-Cache."""
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
        return response.headers.get("Server-Timing") or f"X-Cache: {response.headers['X-Cache']}"


def wait_for_autovacuum(env, timeout=600):
    """Wait until no autovacuum worker runs (up to `timeout` seconds); say so if one still does."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
    deadline = time.monotonic() + timeout
    while True:
        output = subprocess.run(
            [sys.executable, "manage.py", "dbshell", "--", "-Atc", query], cwd=ROOT, env=env,
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        if output == "0":
            return
        if time.monotonic() > deadline:
            print(f"autovacuum still running after {timeout} s; measuring anyway", flush=True)
            return
        time.sleep(5)


def run_sql(sql, env):
    subprocess.run(
        [sys.executable, "manage.py", "dbshell", "--", "-c", sql], cwd=ROOT, env=env,
        check=True, capture_output=True,
    )


def print_table(results):
    sizes = [result["size"] for result in results]
    names = list(results[0]["pages"])
    header = f"{'page':26}" + "".join(
        f" | {size:>9,} req/s  %ceil   p50    p95    p99  q" for size in sizes
    )
    print("\n" + header)
    print("-" * len(header))
    for name in names:
        line = f"{name:26}"
        for result in results:
            page = result["pages"][name]
            line += (f" | {page['rps']:>15,.0f} {page['ratio_to_ceiling']:6.1%} "
                     f"{page['p50_ms']:6.1f} {page['p95_ms']:6.1f} {page['p99_ms']:6.1f} "
                     f"{page['queries']:2}")
        print(line)
    for result in results:
        for name, page in result["pages"].items():
            for plan in page["plans"]:
                for problem in plan["problems"]:
                    print(f"PLAN PROBLEM at {result['size']:,}: {name}: {problem}: "
                          f"{plan['sql'][:120]}")


def ratios(results):
    """Return the 1M/10k-style ratios between the largest and smallest size."""
    if len(results) < 2:
        return {}
    small, large = results[0], results[-1]
    out = {}
    for name in small["pages"]:
        a, b = small["pages"][name], large["pages"][name]
        out[name] = {
            "p95_large_over_small": round(b["p95_ms"] / max(a["p95_ms"], 1e-3), 2),
            "rps_large_over_small": round(share(b["rps"], a["rps"]), 2),
            "same_queries": a["queries"] == b["queries"],
        }
    return out


def markdown(report):
    """Return the report as the Markdown tables of docs/performance.md."""
    results = report["results"]
    lines = [
        f"Run of {report['started']} on {report['machine']}; `{report['command']}`, each page "
        f"`{report['wrk']}`."
        + (f" The sizes were served at once and measured side by side: {report['rounds']} "
           "runs of each page at each size after a 1 s warm-up, the sizes alternating (A B, B A, "
           "...); req/s, latencies and % of the ceiling are the median of its runs, each "
           "run's ceiling the hello-world runs around it on the same gunicorn."
           if report.get("rounds", 1) > 1 else ""),
        "",
        "| size | import_posts | peak memory | refresh_similar |",
        "| --- | --- | --- | --- |",
    ]
    for result in results:
        imported, refresh = result["import"], result.get("refresh_similar")
        lines.append(
            f"| {result['size']:,} | {imported['seconds']} s, {imported['posts_per_second']:,} "
            f"posts/s | {imported['peak_mib']} MiB | "
            + (f"{refresh['seconds']} s, {refresh['posts_per_second']:,} posts/s |"
               if refresh else "not measured |")
        )
    header = "| page |" + "".join(
        f" {r['size']:,}: req/s | % of ceiling | p50 / p95 / p99 ms | queries |" for r in results
    )
    lines += ["", header, "|" + " --- |" * (1 + 4 * len(results))]
    for name in results[0]["pages"]:
        row = f"| {name} |"
        for result in results:
            page = result["pages"][name]
            row += (f" {page['rps']:,.0f} | {page['ratio_to_ceiling']:.1%} | "
                    f"{page['p50_ms']:.1f} / {page['p95_ms']:.1f} / {page['p99_ms']:.1f} | "
                    f"{page['queries']} |")
        lines.append(row)
    lines += ["", "| page |" + "".join(f" {r['size']:,}: each query, EXPLAIN ANALYZE ms |"
                                        for r in results),
              "|" + " --- |" * (1 + len(results))]
    for name in results[0]["pages"]:
        lines.append(f"| {name} |" + "".join(
            " " + " + ".join(f"{plan['ms']:.2f}" for plan in r["pages"][name]["plans"]) + " |"
            for r in results
        ))
    naive = [
        f"{name} at {result['size']:,}: {page['optimized_over_naive']}x the naive version's "
        f"req/s ({page['naive_rps']:,.0f})"
        for result in results for name, page in result["pages"].items()
        if "naive_rps" in page
    ]
    lines += ["", "Optimized over naive: " + "; ".join(naive) + "."]
    if report.get("ratios"):
        lines += ["", "| page | p95 largest / smallest size | same queries |",
                  "| --- | --- | --- |"]
        for name, ratio in report["ratios"].items():
            lines.append(f"| {name} | {ratio['p95_large_over_small']} | "
                         f"{'yes' if ratio['same_queries'] else 'no'} |")
    if all("warm" in result for result in results):
        lines += ["", "Warm pages (served by the Redis page cache, and by Varnish in front of it; "
                  "% of the same gunicorn's hello-world ceiling"
                  + (f"; each `{report['warm_wrk']}`" if "warm_wrk" in report else "") + "):", "",
                  "| page |" + "".join(f" {r['size']:,}: Redis req/s | % | p95 ms | Varnish "
                                       "req/s | % | p95 ms |" for r in results),
                  "|" + " --- |" * (1 + 6 * len(results))]
        for name in results[0]["warm"]:
            row = f"| {name} |"
            for result in results:
                for where in ("redis", "varnish"):
                    entry = result["warm"][name][where]
                    row += (f" {entry['rps']:,.0f} | {entry['ratio_to_ceiling']:.0%} | "
                            f"{entry['p95_ms']:.1f} |")
            lines.append(row)
    problems = [
        f"- {result['size']:,}, {name}: {problem}"
        for result in results for name, page in result["pages"].items()
        for plan in page["plans"] for problem in plan["problems"]
    ]
    lines += ["", "Plan problems (sequential scans of tables over 10,000 rows, sorts on disk): "
              + ("none." if not problems else ""), *problems]
    return "\n".join(lines) + "\n"


def chart(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results[0]["pages"])
    width = 0.8 / len(results)
    figure, axis = plt.subplots(figsize=(11, 5))
    for index, result in enumerate(results):
        axis.bar([n + index * width for n in range(len(names))],
                 [result["pages"][name]["p95_ms"] for name in names], width,
                 label=f"{result['size']:,} posts")
    axis.set_xticks([n + width * (len(results) - 1) / 2 for n in range(len(names))])
    axis.set_xticklabels(names, rotation=30, ha="right")
    axis.set_ylabel("p95 latency (ms), wrk -t2 -c8, 2 gunicorn workers")
    axis.set_title("alphanode: p95 per page by database size")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000",
                        help="Comma-separated post counts (default 10000; the full run is "
                        "--sizes 10000,1000000, about 70 minutes here).")
    # 4 s and 2 s keep the 10,000-post run under 5 minutes here (4 min 25 s on 2026-12-07).
    parser.add_argument("--duration", type=int, default=4,
                        help="Seconds per wrk run of an uncached page (default 4).")
    parser.add_argument("--warm-duration", type=int, default=2,
                        help="Seconds per wrk run of the warm pages, from the page cache and "
                        "Varnish (default 2: a cached page's latency is steady).")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections.")
    parser.add_argument("--rounds", type=int, help="Runs of each page at each size, the sizes "
                        "alternating (default 3 with several sizes, else 1); figures are their "
                        "median.")
    parser.add_argument("--report", metavar="JSON",
                        help="Only print and write the tables and chart of a finished run.")
    parser.add_argument("--one-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    options = parser.parse_args()
    try:
        sizes = [int(size) for size in options.sizes.split(",")]
    except ValueError:
        sys.exit(f"--sizes {options.sizes!r}: expected comma-separated whole numbers")
    if options.duration < 1 or options.warm_duration < 1:
        sys.exit("--duration and --warm-duration: expected 1 second or more")
    if options.rounds is not None and options.rounds < 1:
        sys.exit(f"--rounds {options.rounds}: expected 1 or more")
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: install it with `apt-get install -y wrk`.")
    if options.report is not None:
        # Re-render the table, Markdown and chart of a finished run.
        report = json.loads(Path(options.report).read_text())
        print_table(report["results"])
        write_figures(report, [result["size"] for result in report["results"]])
        return
    if options.one_size is not None:
        # One size per process: Django reads its database settings once.
        result = bench_size(options.one_size, options)
        if result is not None:
            Path(options.output).write_text(json.dumps(result))
        return
    started_at = datetime.datetime.now(datetime.UTC)
    sites = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for size in sizes:
                sites.append(start_site(size, Path(tmp) / f"{size}.json", options))
            print(f"\nMeasuring {', '.join(f'{size:,}' for size in sizes)} posts side by side "
                  f"({elapsed(started_at)} after the start)", flush=True)
            measure_side_by_side(sites, options)
            print(f"Pages measured, {elapsed(started_at)} after the start; the warm pages "
                  "next", flush=True)
            results = []
            for site in sites:
                site.result |= finish_site(site)
                del site.result["inspected"]
                results.append(site.result)
            print(f"Done {elapsed(started_at)} after the start", flush=True)
        finally:
            for site in sites:
                stop_site(site)
    rounds = rounds_of(options, sizes)
    report = {
        "started": started_at.isoformat(timespec="seconds"),
        "machine": machine(),
        "command": " ".join([".venv/bin/python", "bench/site_bench.py", *sys.argv[1:]]),
        "wrk": f"wrk -t2 -c{options.connections} -d{options.duration}s",
        "warm_wrk": f"wrk -t2 -c{options.connections} -d{options.warm_duration}s",
        "rounds": rounds,
        "results": results,
        "ratios": ratios(results),
    }
    print_table(results)
    for name, ratio in report["ratios"].items():
        print(f"{name}: p95 {results[-1]['size']:,}/{results[0]['size']:,} = "
              f"{ratio['p95_large_over_small']}, same queries: {ratio['same_queries']}")
    RESULTS.mkdir(exist_ok=True)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    label = "-".join(map(str, sizes))
    for name in (f"latest-{label}.json", f"{stamp}-{label}.json"):
        (RESULTS / name).write_text(json.dumps(report, indent=2) + "\n")
    write_figures(report, sizes)
    if sizes == [10_000]:
        print("The million-post run: .venv/bin/python bench/site_bench.py "
              "--sizes 10000,1000000 (about 70 minutes on 2 cores).")


def write_figures(report, sizes):
    """Write the chart and the Markdown tables of `report`, named by its sizes."""
    label = "-".join(map(str, sizes))
    chart(report["results"], RESULTS / f"p95-{label}.png")
    (RESULTS / f"latest-{label}.md").write_text(markdown(report))
    print(f"\nwrote {RESULTS}/latest-{label}.json, .md and p95-{label}.png")


def elapsed(since):
    """Return the time from `since` (an aware datetime) to now, as "4 min 05 s"."""
    seconds = round((datetime.datetime.now(datetime.UTC) - since).total_seconds())
    return f"{seconds // 60} min {seconds % 60:02} s"


def machine():
    """Return what the figures were measured on."""
    cpus = os.cpu_count()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    python = sys.version.split()[0]
    return f"{cpus} cores ({model}), {memory:.0f} GiB, {sys.platform}, Python {python}"


if __name__ == "__main__":
    exit_on_sigterm()
    main()
