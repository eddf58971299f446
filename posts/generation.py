"""Deterministic synthetic posts in the style of the alphanode article pages.

Numbering: a run with seed S yields posts numbered `start + i` for i in range(count), and `start`
defaults to S * 100_000, so runs with different seeds never share source ids or slugs (as long as
a run stays under 100_000 posts). Post number n gets source id `alphanode-{n:06d}`, payload seed n
and slug `<slugified title>-{n:06d}`.

Each post draws from its own `random.Random(f"{S}:{n}")`, so a post depends only on the run seed
and its number: the same seed always gives the same posts, and generating in chunks (via `start`)
gives the same posts as one long run.

No Django in here: this module only builds posts.records dataclasses.
"""

import itertools
import math
import random
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

from posts.records import EntityRecord, FigureRecord, PostRecord, SectionRecord

GENERATOR = "anp content synthesizer"
NUMBERS_PER_SEED = 100_000
SLUG_MAX_LENGTH = 200
WORDS_PER_MINUTE = 200
MAX_VIEW_COUNT = 1_000_000

# Dates come from this fixed window, never from the clock, so output does not change over time.
PERIOD_END = datetime(2026, 11, 1, tzinfo=UTC)
PERIOD_DAYS = 2 * 365
LAST_DAY = PERIOD_END.date() - timedelta(days=1)


class Stack(NamedTuple):
    name: str
    area: str
    language: str
    tools: tuple[str, ...]


# Most popular first: stacks and problems are drawn with Zipf-like weights (see _zipf_weights),
# so a few stacks appear in many posts and "similar posts" have something to find.
STACKS = (
    Stack("python services", "backend", "python", ("fastapi", "pytest", "uvicorn", "ruff")),
    Stack("django", "backend", "python", ("django orm", "pytest-django", "gunicorn", "celery")),
    Stack("react frontends", "frontend", "javascript", ("vite", "eslint", "jest", "storybook")),
    Stack("wordpress sites", "cms", "php", ("wp-cli", "query monitor", "wp cron", "composer")),
    Stack("postgresql", "database", "sql", ("psql", "pg_stat_statements", "pgbouncer", "pg_dump")),
    Stack("node.js apis", "backend", "typescript", ("express", "vitest", "pino", "tsx")),
    Stack("kubernetes clusters", "infrastructure", "yaml", ("kubectl", "helm", "k9s", "kustomize")),
    Stack("go microservices", "backend", "go", ("go test", "pprof", "grpc", "golangci-lint")),
    Stack("laravel apps", "backend", "php", ("artisan", "phpunit", "horizon", "composer")),
    Stack("docker compose setups", "devops", "yaml", ("docker compose", "hadolint", "dive")),
    Stack("vue single page apps", "frontend", "typescript", ("vite", "pinia", "vitest", "eslint")),
    Stack("github actions pipelines", "devops", "yaml", ("actionlint", "act", "dependabot")),
    Stack("terraform infrastructure", "infrastructure", "hcl", ("terraform", "tflint", "checkov")),
    Stack("nginx reverse proxies", "infrastructure", "bash", ("nginx", "certbot", "goaccess")),
    Stack("rust cli tools", "tooling", "rust", ("cargo", "clippy", "clap", "criterion")),
    Stack("java spring services", "backend", "java", ("spring boot", "maven", "junit")),
    Stack("flutter mobile apps", "mobile", "dart", ("flutter test", "dart analyze", "fastlane")),
)

PROBLEMS = (
    "improving database queries",
    "caching api responses",
    "reducing cold start time",
    "cutting page load time",
    "hardening file uploads",
    "tuning background jobs",
    "managing secrets safely",
    "stabilizing flaky tests",
    "planning zero downtime deploys",
    "tracing slow requests",
    "shrinking container images",
    "rate limiting public endpoints",
    "migrating schema changes",
)

SCENARIOS = (
    "behind a cdn",
    "on a small vps",
    "in a monorepo",
    "on shared hosting",
    "during a traffic spike",
    "with a tiny team",
    "after a framework upgrade",
    "in a multi-tenant setup",
    "on a tight budget",
    "before a product launch",
    "inside a legacy codebase",
)

GENERAL_TOOLS = ("git", "logs", "docker", "make", "curl", "sentry", "grafana")

TITLE_TEMPLATES = (
    "{stack} notes: {problem} {scenario}: step by step",
    "{problem} in {stack} {scenario}",
    "a practical guide to {problem} for {stack}",
    "{stack}: {problem} {scenario}, what actually worked",
    "{problem} {scenario}: lessons from {stack}",
    "field notes on {problem} with {stack}",
    "{stack} checklist: {problem} {scenario}",
    "how we approach {problem} in {stack} {scenario}",
)

INTROS = (
    "{problem} tends to look simple until it meets real traffic. this alphanode note collects a "
    "practical, low-risk approach for {stack} {scenario}.",
    "most teams meet {problem} after something has already gone wrong. this note shows how to "
    "approach it calmly in {stack} {scenario}, with measurement first and changes second.",
    "there is no single command that fixes {problem}. what works in {stack} {scenario} is a short "
    "loop of measuring, changing one thing, and writing down the result.",
    "{problem} is one of those tasks that keeps coming back. here is a repeatable way to handle it "
    "in {stack} {scenario}, written so another developer can follow it.",
    "this alphanode note is about {problem} in {stack}, {scenario}, where small mistakes are "
    "expensive and careful, verified steps pay off.",
)

HEADINGS = (
    "why this matters",
    "the practical approach",
    "security and maintenance notes",
    "measuring the starting point",
    "common mistakes",
    "a safer rollout",
    "what to automate",
    "testing the change",
    "operational checks",
    "keeping it maintainable",
    "rollback planning",
    "trade-offs worth knowing",
    "monitoring after release",
    "documenting the result",
    "the smallest useful change",
)

PARAGRAPHS = (
    "start by writing down what slow or broken looks like today. a response time, an error count, "
    "or a screenshot of the failing page gives the team a baseline that later numbers can be "
    "compared against.",
    "{problem} rarely fails because of one bad line. it fails because nobody owns the whole path "
    "from request to storage, so each layer assumes another layer handles the edge cases.",
    "keep the first change small enough to review in one sitting. a diff that fits on one screen "
    "gets a real review, while a sprawling one gets a quick approval and a surprise in production.",
    "measure before and after with the same tool and the same data. switching from a local "
    "benchmark to a production dashboard halfway through makes any improvement impossible to "
    "trust.",
    "configuration belongs in one place. when timeouts, limits, and feature switches are spread "
    "across environment files, code constants, and a dashboard, nobody can say which value is "
    "actually live.",
    "a rollback plan is only real if someone has tried it. run the revert on staging once, time "
    "it, and write the exact command next to the release notes.",
    "logs should answer a question, not fill a disk. add one structured line per request that "
    "records the duration, the outcome, and the identifier needed to find related events.",
    "{scenario}, the usual defaults are rarely the right ones. review each limit and timeout with "
    "the real traffic pattern in mind instead of trusting the values a tutorial used.",
    "tests for {problem} should describe behavior, not implementation. a test that checks what a "
    "user sees keeps working after a refactor, while a test that checks private calls breaks on "
    "every cleanup.",
    "resist the urge to add a new dependency for a problem that ten lines of code can solve. every "
    "package is another thing to update, audit, and explain to the next maintainer.",
    "when a change touches shared infrastructure, announce it before it ships. a short message "
    "with the time window and the expected effect saves another team an hour of confused "
    "debugging.",
    "caching hides problems as often as it solves them. before adding a cache, make sure the slow "
    "path is understood, and decide up front how stale the data is allowed to be.",
    "in {stack}, the framework defaults are a starting point, not a promise. read the settings "
    "that matter for {problem} and write down why each one has its current value.",
    "automate the boring checks first. formatting, linting, and a fast test run on every push "
    "catch the cheap mistakes, so human review time goes to design and behavior.",
    "database work deserves its own review. look at the query plan, the indexes involved, and how "
    "the query behaves with ten times the current data before calling it done.",
    "feature flags make risky changes reversible without a deploy. keep them short-lived, name "
    "them after the behavior they control, and remove them once the change has settled.",
    "error messages are part of the interface. say what failed, which value was expected, and "
    "whether trying again makes sense, so the reader can act without opening the code.",
    "secrets should never travel through chat, tickets, or commit history. load them from the "
    "environment or a secret store, and rotate any value that was ever exposed.",
    "a health check that always returns ok is worse than none. make it touch the dependencies "
    "that actually matter, such as the database and the cache, and keep it fast.",
    "when {problem} shows up only under load, reproduce it with a simple load script before "
    "touching code. guessing at concurrency issues usually produces fixes for problems that never "
    "existed.",
    "write the runbook while the details are fresh. the command, the expected output, and the "
    "first thing to check when it goes wrong are worth more than a long explanation.",
    "dependency upgrades are easier in small steps. moving one minor version at a time keeps the "
    "changelog readable and makes it obvious which release introduced a regression.",
    "background jobs need the same care as requests. give them timeouts, make them safe to retry, "
    "and record enough context to replay a failed job by hand.",
    "the cheapest performance win is often removing work. check whether the page, job, or "
    "endpoint still needs every query and call it makes before optimizing any of them.",
    "staging should look like production where it counts: the same versions, similar data sizes, "
    "and the same deployment command. differences elsewhere are fine as long as they are written "
    "down.",
    "{stack} teams often keep important knowledge in one person's head. pair on the change or "
    "record a short walkthrough so the fix survives a vacation or a job change.",
    "limits protect the system from its own users. set maximum sizes for uploads, request bodies, "
    "and result pages, and return a clear error when a limit is hit.",
    "observability is easier to add before an incident than during one. a dashboard with latency, "
    "error rate, and saturation gives everyone the same picture when something goes wrong.",
    "avoid fixing two things in one release. if the metrics move, nobody will know which change "
    "helped, and if they get worse, both changes have to be reverted.",
    "permissions should start narrow and grow when needed. a service account that can only do its "
    "own job limits the damage of a leaked key or a buggy script.",
    "document the decision, not just the code. a short note on the options considered and why one "
    "was chosen keeps the next person from reopening the same debate.",
    "for {problem}, the boundary between components is where most bugs live. check what each side "
    "assumes about formats, time zones, encodings, and empty values.",
    "review the change with fresh eyes the next morning. a short pause often reveals a missing "
    "edge case or a log line that should have been added.",
    "make the safe path the easy path. if the correct way to deploy or migrate needs extra steps, "
    "wrap them in one command so nobody is tempted to skip them.",
    "{scenario}, time and resources are both limited, so every background process should justify "
    "what it costs. remove what is unused before adding capacity.",
    "a good pull request explains the problem in one paragraph, lists the verification steps, and "
    "links to the metric that should improve.",
    "keep an eye on the first hour after release. most regressions show up quickly in error rates "
    "and slow requests, and a fast revert is cheaper than a long investigation.",
    "version everything that affects behavior: code, configuration, schema, and infrastructure "
    "definitions. an unversioned change is one nobody can review or undo.",
    "not every warning needs a fix today. sort findings by impact and effort, fix the cheap and "
    "important ones first, and record the rest with an owner.",
    "when the fix for {problem} works, turn the lesson into a check. a test, a lint rule, or an "
    "alert keeps the same mistake from coming back quietly.",
)

# Appended to some paragraphs, as on the original pages, to tie generic advice to the stack.
TAILS = (
    "for this {stack} case, keep the owner, the expected result, and the rollback step written "
    "down together.",
    "in {stack} projects this step is usually cheap, so there is little reason to skip it.",
    "the alphanode habit is to ship one verified step at a time rather than a broad rewrite.",
    "the same rule holds for {stack} {scenario}.",
)
TAIL_CHANCE = 0.35

# In the order the steps happen, so a picked subset still reads as a sequence.
CHECKLIST_ITEMS = (
    "capture the current behavior",
    "record baseline metrics",
    "create a safe backup",
    "write down the rollback step",
    "agree on the expected result",
    "test the smallest change",
    "run the full test suite",
    "try the change on staging",
    "review the configuration diff",
    "release during a quiet window",
    "watch logs after release",
    "compare metrics with the baseline",
    "clear only the affected cache",
    "update the runbook",
    "write the final note",
)
CHECKLIST_LENGTH = 5

FINAL_NOTES = (
    "the goal is not only a faster or safer {stack} setup. it is a change that another developer "
    "can read, verify, and repeat without asking the original author.",
    "{problem} is never finished for good. keep the commands, metrics, and assumptions from this "
    "change next to the code so the next round starts from facts.",
    "if one thing sticks from this note, let it be the habit of measuring first. in {stack}, as "
    "anywhere, a number before and after beats any amount of intuition.",
    "treat this as a starting template for {stack} {scenario}. adjust the checklist to the "
    "project at hand and keep the notes close to the code they describe.",
)

SUMMARY_TEMPLATES = (
    "this ai-style technical summary explains {problem} in {stack}, with emphasis on {emphasis}.",
    "a short technical overview of {problem} for {stack} {scenario}, focused on {emphasis}.",
    "this note covers {problem} in {stack} and highlights {emphasis}.",
)
EMPHASIS = (
    "measurement",
    "safe defaults",
    "rollback planning",
    "small releases",
    "clear ownership",
    "test coverage",
    "observability",
    "cost control",
    "maintainable documentation",
)

AI_BRIEFS = (
    "the article reads like a careful ai generated engineering draft: it explains why the change "
    "is needed, lists the operational checks, and does not claim that one command fixes every "
    "case.",
    "written in the style of an ai assisted engineering note: practical steps, explicit "
    "verification, and a clear rollback path, with no promises beyond what was measured.",
    "an ai-style draft that favors small verified changes, names the metrics to watch, and leaves "
    "room for a human reviewer to adjust the details.",
    "this brief summarizes a generated technical walkthrough: context first, then a cautious "
    "plan, then the checks that prove the plan worked.",
)

ACTIONS = (
    "measure first, change carefully, document the result",
    "reproduce the issue, fix the smallest cause, add a regression test",
    "set a baseline, ship behind a flag, watch the metrics",
    "review the configuration, tighten the defaults, write a runbook",
    "back up first, change one thing, verify the rollback",
    "profile the slow path, remove unneeded work, measure again",
)

NOTES = (
    "list-valued meta is expected to render as a list in the meta box",
    "view count is synthetic and only meant for load testing",
    "content is generated for import and load testing and should be reviewed before indexing",
    "scores are synthetic and do not reflect an editorial review",
    "image urls point to placeholder services and may change",
    "revision dates are synthetic and spread over two years",
)

UNSPLASH_PHOTOS = (
    "photo-1555949963-aa79dcee981c",
    "photo-1555066931-4365d14bab8c",
    "photo-1517694712202-14dd9538aa97",
    "photo-1498050108023-c5249f4df085",
    "photo-1461749280684-dccba630e2f6",
    "photo-1518770660439-4636190af475",
    "photo-1504639725590-34d0984388bd",
    "photo-1550439062-609e1531270e",
    "photo-1587620962725-abab7fe55159",
    "photo-1515879218367-8466d910aaa4",
    "photo-1542831371-29b0f74f9713",
)

# Figures per post, 0 to 12: most posts have a few, some are image heavy.
FIGURE_COUNT_WEIGHTS = (15, 20, 20, 15, 10, 6, 4, 3, 2, 2, 1, 1, 1)

PUBLISHED_SHARE = 0.85
REVISION_STATUSES = ("reviewed", "in_review", "draft", "outdated")
REVISION_WEIGHTS = (60, 20, 10, 10)
DIFFICULTIES = ("beginner", "intermediate", "advanced")
DIFFICULTY_WEIGHTS = (45, 40, 15)
# Review is flagged rarely for reviewed posts and often otherwise: about 15% overall.
NEEDS_REVIEW_CHANCE = {"reviewed": 0.05}
NEEDS_REVIEW_CHANCE_DEFAULT = 0.30
AI_STYLE_SHARE = 0.9


def _zipf_weights(count: int) -> tuple[float, ...]:
    """Return cumulative weights 1, 1/2, 1/3, ... for `count` items ranked by popularity."""
    return tuple(itertools.accumulate(1 / rank for rank in range(1, count + 1)))


STACK_CUM_WEIGHTS = _zipf_weights(len(STACKS))
PROBLEM_CUM_WEIGHTS = _zipf_weights(len(PROBLEMS))


def generate_records(count: int, seed: int, start: int | None = None) -> Iterator[PostRecord]:
    """Yield `count` deterministic synthetic posts; the same seed gives the same posts.

    Posts are numbered from `start`, which defaults to seed * 100_000 (see the module docstring).
    """
    first = seed * NUMBERS_PER_SEED if start is None else start
    # Checked here rather than inside a generator so bad arguments fail at the call.
    if count < 0:
        raise ValueError(f"count must be 0 or more, got {count}.")
    if first < 0:
        raise ValueError(f"post numbers must be 0 or more, got a first number of {first}.")
    return (build_post(seed, number) for number in range(first, first + count))


def build_post(seed: int, number: int) -> PostRecord:
    """Return post `number` of the run with `seed`."""
    rng = random.Random(f"{seed}:{number}")
    stack = rng.choices(STACKS, cum_weights=STACK_CUM_WEIGHTS)[0]
    problem = rng.choices(PROBLEMS, cum_weights=PROBLEM_CUM_WEIGHTS)[0]
    scenario = rng.choice(SCENARIOS)
    words = {"stack": stack.name, "problem": problem, "scenario": scenario}

    title = rng.choice(TITLE_TEMPLATES).format(**words)
    intro = rng.choice(INTROS).format(**words)
    sections = _sections(rng, words)
    checklist = _pick_in_order(rng, CHECKLIST_ITEMS, CHECKLIST_LENGTH)
    final_notes = rng.choice(FINAL_NOTES).format(**words)
    figures = _figures(rng, number, len(sections), f"{problem} with {stack.name}")

    status, published_at = _publication(rng)
    revision_status = rng.choices(REVISION_STATUSES, weights=REVISION_WEIGHTS)[0]
    needs_review_chance = NEEDS_REVIEW_CHANCE.get(revision_status, NEEDS_REVIEW_CHANCE_DEFAULT)
    body = [intro, *(p for s in sections for p in s.paragraphs), *checklist, final_notes]
    suffix = f"-{number:06d}"

    return PostRecord(
        source_id=f"alphanode-{number:06d}",
        title=title,
        slug=slugify(title)[: SLUG_MAX_LENGTH - len(suffix)].rstrip("-") + suffix,
        status=status,
        published_at=published_at,
        intro=intro,
        sections=sections,
        checklist=checklist,
        final_notes=final_notes,
        figures=figures,
        topic=f"{problem} / {stack.name}",
        summary=_summary(rng, words),
        outline_context=scenario,
        outline_problem=problem,
        outline_stack=stack.name,
        outline_action=rng.choice(ACTIONS),
        ai_brief=rng.choice(AI_BRIEFS),
        stack=tuple(dict.fromkeys((stack.name, stack.area, stack.language))),
        tools=_tools(rng, stack),
        code_language=stack.language,
        difficulty=rng.choices(DIFFICULTIES, weights=DIFFICULTY_WEIGHTS)[0],
        reading_time=_reading_time(body),
        # Drafts have had no readers yet.
        view_count=_view_count(rng) if status == "published" else 0,
        quality_score=rng.randint(40, 99),
        freshness_score=_freshness(rng, published_at),
        depth_score=rng.randint(35, 99),
        clarity_score=rng.randint(45, 99),
        revision_status=revision_status,
        revision_version=f"1.{rng.randrange(10)}.{rng.randrange(10)}",
        last_reviewed=_last_reviewed(rng, revision_status, published_at),
        reference=f"anp-ref-{number:06d}-{rng.randrange(10_000):04d}",
        content_hash=f"{rng.getrandbits(96):024x}",
        ai_generated_style=rng.random() < AI_STYLE_SHARE,
        has_images=len(figures) > 0,
        image_heavy=len(figures) >= 3,
        needs_human_review=rng.random() < needs_review_chance,
        entities=_entities(rng, stack, problem, scenario),
        notes=_pick_in_order(rng, NOTES, rng.randint(2, 3)),
        generator=GENERATOR,
        paragraph_count=sum(len(s.paragraphs) for s in sections) + 1,  # + the final notes
        scenario=scenario,
        seed=number,
    )


def slugify(text: str) -> str:
    """Return `text` lowercased, with each run of other characters than a-z and 0-9 as one "-"."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _pick_in_order(rng: random.Random, pool: Sequence[str], k: int) -> tuple[str, ...]:
    """Return `k` distinct items of `pool`, kept in the pool's order."""
    return tuple(pool[i] for i in sorted(rng.sample(range(len(pool)), k)))


def _sections(rng: random.Random, words: dict[str, str]) -> tuple[SectionRecord, ...]:
    """Return 2-5 sections of 1-4 paragraphs, no heading or paragraph used twice in a post."""
    sizes = [rng.randint(1, 4) for _ in range(rng.randint(2, 5))]
    headings = rng.sample(HEADINGS, len(sizes))
    templates = iter(rng.sample(PARAGRAPHS, sum(sizes)))
    return tuple(
        SectionRecord(
            heading=heading,
            paragraphs=tuple(_paragraph(rng, next(templates), words) for _ in range(size)),
        )
        for heading, size in zip(headings, sizes, strict=True)
    )


def _paragraph(rng: random.Random, template: str, words: dict[str, str]) -> str:
    """Return one paragraph from `template`, sometimes with a tail sentence naming the stack."""
    text = template.format(**words)
    if rng.random() < TAIL_CHANCE:
        text += " " + rng.choice(TAILS).format(**words)
    return text


def _figures(
    rng: random.Random, number: int, section_count: int, caption_stem: str
) -> tuple[FigureRecord, ...]:
    """Return 0-12 figures in body order: after the intro, after sections, after the checklist."""
    count = rng.choices(range(len(FIGURE_COUNT_WEIGHTS)), weights=FIGURE_COUNT_WEIGHTS)[0]
    if count == 0:
        return ()
    intro_count = min(count, rng.randint(1, 2))
    # The rest follow a random section, or the checklist (slot == section_count); sorting the
    # slots puts them in body order, which the caption numbers follow.
    slots = sorted(rng.randrange(section_count + 1) for _ in range(count - intro_count))
    places = [("intro", None)] * intro_count + [
        ("checklist", None) if slot == section_count else ("section", slot) for slot in slots
    ]
    # The first image is always picsum, as on the original pages; the rest are a coin toss.
    sources = ["picsum.photos"] + [rng.choice(("picsum.photos", "unsplash")) for _ in places[1:]]
    # Shuffled once per post so a post does not show the same unsplash photo twice.
    photos = rng.sample(UNSPLASH_PHOTOS, len(UNSPLASH_PHOTOS))
    picsum_seen = unsplash_seen = 0
    figures = []
    for position, ((placement, section_position), source) in enumerate(
        zip(places, sources, strict=True), start=1
    ):
        if source == "picsum.photos":
            extra = f"-{picsum_seen}" if picsum_seen else ""
            url = f"https://picsum.photos/seed/anp-{number:06d}{extra}/1200/630"
            picsum_seen += 1
        else:
            photo = photos[unsplash_seen % len(photos)]
            url = f"https://images.unsplash.com/{photo}?auto=format&fit=crop&w=1200&q=80"
            unsplash_seen += 1
        figures.append(
            FigureRecord(
                source=source,
                url=url,
                caption=f"{caption_stem} visual reference {position}",
                placement=placement,
                section_position=section_position,
            )
        )
    return tuple(figures)


def _publication(rng: random.Random) -> tuple[str, datetime | None]:
    """Return (status, published_at): mostly published within the two years before PERIOD_END."""
    if rng.random() >= PUBLISHED_SHARE:
        return "draft", None
    return "published", PERIOD_END - timedelta(seconds=rng.randint(1, PERIOD_DAYS * 86_400))


def _last_reviewed(
    rng: random.Random, revision_status: str, published_at: datetime | None
) -> date | None:
    """Return a review date within 180 days after publication, or None for draft revisions."""
    if revision_status == "draft":
        return None
    # Unpublished posts were written recently, so their reviews are recent too.
    written = published_at.date() if published_at else LAST_DAY - timedelta(days=90)
    return min(written + timedelta(days=rng.randrange(180)), LAST_DAY)


def _freshness(rng: random.Random, published_at: datetime | None) -> int:
    """Return a 0-100 score that falls with the post's age, plus some noise."""
    age_days = (PERIOD_END - published_at).days if published_at else 0
    score = 100 - age_days * 100 // PERIOD_DAYS + rng.randint(-8, 8)
    return max(0, min(100, score))


def _view_count(rng: random.Random) -> int:
    """Return a heavy-tailed view count: most posts get hundreds, a few get very many."""
    return min(int(rng.paretovariate(1.2) * 500), MAX_VIEW_COUNT)


def _reading_time(texts: Sequence[str]) -> int:
    """Return the minutes needed to read `texts`, rounded up, at least 1."""
    words = sum(len(text.split()) for text in texts)
    return max(1, math.ceil(words / WORDS_PER_MINUTE))


def _summary(rng: random.Random, words: dict[str, str]) -> str:
    """Return a one-sentence summary naming three points of emphasis."""
    first, second, third = _pick_in_order(rng, EMPHASIS, 3)
    emphasis = f"{first}, {second}, and {third}"
    return rng.choice(SUMMARY_TEMPLATES).format(emphasis=emphasis, **words)


def _tools(rng: random.Random, stack: Stack) -> tuple[str, ...]:
    """Return 3-6 tools: 2-4 from the stack's own pool, then 1-2 general ones."""
    own = _pick_in_order(rng, stack.tools, rng.randint(2, min(4, len(stack.tools))))
    general = _pick_in_order(rng, GENERAL_TOOLS, rng.randint(1, 2))
    return tuple(dict.fromkeys(own + general))


def _entities(
    rng: random.Random, stack: Stack, problem: str, scenario: str
) -> tuple[EntityRecord, ...]:
    """Return the stack, area and problem entities, sometimes with the language or scenario."""
    entities = [
        EntityRecord(stack.name, "stack"),
        EntityRecord(stack.area, "area"),
        EntityRecord(problem, "problem"),
    ]
    if rng.random() < 0.4:
        entities.append(EntityRecord(stack.language, "language"))
    if rng.random() < 0.3:
        entities.append(EntityRecord(scenario, "scenario"))
    return tuple(entities)
