"""Background work as Django tasks (posts/tasks.py), on the immediate backend and on the real one.

The worker tests run `manage.py run_worker` as a subprocess on the test database with
TASKS_BACKEND=database (django-tasks-db), so their data is committed (transactional tests), and
stop it by its PID. A small HTTP server in the test stands for the CDN: it records the keys of
each PURGE it answers, and can hold a PURGE unanswered (a CDN that stalls).
"""

import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.tasks import TaskResultStatus
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from posts import caching, purging, tasks
from posts.management.commands.run_worker import take_back_tasks
from posts.models import Post, SimilarPost
from posts.review import unpublish_posts
from tests.factories import PostFactory, PostTagFactory, TagFactory
from tests.servers import HOST, free_ports, stop_process
from tests.test_admin import run_action

ROOT = Path(__file__).resolve().parent.parent
DATABASE_BACKEND = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
WAIT_SECONDS = 30

pytestmark = pytest.mark.django_db


# The CDN and the worker.


class PurgeHandler(BaseHTTPRequestHandler):
    def do_PURGE(self):
        self.server.arrived.set()
        if self.server.stalling:
            self.server.release.wait(WAIT_SECONDS)
            return  # never answered: the worker waiting on it was killed meanwhile
        self.server.keys |= set(self.headers.get(django_settings.PURGE_KEY_HEADER, "").split())
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        pass


class PurgeRecorder(ThreadingHTTPServer):
    """A CDN on loopback that records the keys of every PURGE it answers."""

    daemon_threads = True

    def __init__(self, port, *, stalling=False):
        super().__init__((HOST, port), PurgeHandler)
        self.keys: set[str] = set()
        self.stalling = stalling  # hold each PURGE unanswered until `release`
        self.arrived, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.shutdown()
        self.server_close()


class Worker:
    """`manage.py run_worker` on the test database; can be killed and started again."""

    def __init__(self, worker_id, env, log):
        self.worker_id, self.env, self.log = worker_id, env, log
        self.process = None

    def start(self):
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "run_worker", "--worker-id", self.worker_id,
                 "--interval", "0.1", "--no-startup-delay", "--no-reload"],
                cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self):
        self.process.kill()  # SIGKILL: nothing of the worker's runs after it
        self.process.wait()

    def stop(self):
        if self.process is not None:
            stop_process(self.process)

    def output(self):
        return self.log.read_text(errors="replace")


@pytest.fixture
def cdn_port():
    (port,) = free_ports(1)
    return port


def queue_here(settings, cdn_port):
    """Have this process enqueue into the database, and purge by HTTP to the test's CDN."""
    settings.TASKS = DATABASE_BACKEND
    settings.PURGER = "http"
    settings.PURGE_URLS = [f"http://{HOST}:{cdn_port}/"]


@pytest.fixture
def queued(settings, cdn_port):
    queue_here(settings, cdn_port)


@pytest.fixture
def worker_env(cdn_port):
    database = urlsplit(django_settings.DATABASE_URL)
    test_database = urlunsplit(database._replace(path=f"/{connection.settings_dict['NAME']}"))
    return {
        **{key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")},
        "DATABASE_URL": test_database,
        "REDIS_URL": django_settings.REDIS_URL,
        "DEBUG": "0",
        "SECRET_KEY": "worker-test-secret-key-not-for-production-use-0123456789",
        "TASKS_BACKEND": "database",
        "PURGER": "http",
        "PURGE_URLS": f"http://{HOST}:{cdn_port}/",
        "PURGE_RETRY_SECONDS": "1",
    }


@pytest.fixture
def make_worker(worker_env):
    """Return a function starting a worker (extra environment as keyword arguments)."""
    started = []
    tmpdir = Path(tempfile.mkdtemp(prefix="alphanode-worker-"))

    def make(worker_id="test-worker", **env):
        worker = Worker(worker_id, {**worker_env, **env}, tmpdir / f"{worker_id}.log")
        started.append(worker)
        worker.start()
        return worker

    yield make
    for worker in started:
        worker.stop()
        print(f"{worker.worker_id}'s log:\n{worker.output()}")  # shown when the test failed
    shutil.rmtree(tmpdir, ignore_errors=True)


def wait_for(condition, what, seconds=WAIT_SECONDS):
    """Return condition()'s first true value, polling; fail saying `what` did not happen."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {seconds} s")


def task_rows(task):
    return DBTaskResult.objects.filter(task_path=task.module_path).order_by("enqueued_at")


def first_rows(task, count):
    """The first `count` rows of `task` once there are that many and the first has finished."""
    rows = list(task_rows(task)[:count])
    return rows if len(rows) == count and rows[0].status == TaskResultStatus.SUCCESSFUL else None


def finished(task, count=1):
    """The rows of `task` once `count` of them finished and none is left to run, else None."""
    rows = list(task_rows(task))
    done = [row for row in rows if row.status in (TaskResultStatus.SUCCESSFUL,
                                                  TaskResultStatus.FAILED)]
    return rows if len(done) >= count and len(done) == len(rows) else None


# With the real backend and a real worker.


@pytest.mark.django_db(transaction=True)
def test_an_admin_action_queues_tasks_that_the_worker_runs(
    settings, make_worker, cdn_port, admin_user
):
    shared = TagFactory(name="shared by three")
    gone, *holders = PostFactory.create_batch(3, tag_count=0)
    for post in (gone, *holders):
        PostTagFactory(post=post, tag=shared)
    assert SimilarPost.objects.filter(similar=gone).count() == 2
    queue_here(settings, cdn_port)  # the posts above were made on the immediate backend
    client = Client()
    client.force_login(admin_user)  # groups are gone in transactional tests

    assert run_action(client, "unpublish", [gone]).status_code == 302

    # Queued by the action's transaction: the worker has not started yet.
    assert task_rows(tasks.refill_similar_lists).get().status == TaskResultStatus.READY
    assert task_rows(tasks.purge_keys).get().status == TaskResultStatus.READY
    with PurgeRecorder(cdn_port) as cdn:
        make_worker("admin-worker")
        refills = wait_for(lambda: finished(tasks.refill_similar_lists), "the refill")
        # The refill changed the holders' lists, whose pages it purged in turn.
        purges = wait_for(lambda: finished(tasks.purge_keys, count=2), "both purges")

    assert {row.status for row in refills + purges} == {TaskResultStatus.SUCCESSFUL}
    assert {tuple(row.worker_ids) for row in refills + purges} == {("admin-worker",)}
    assert not SimilarPost.objects.filter(similar=gone).exists()
    assert {caching.post_key(post.pk) for post in (gone, *holders)} <= cdn.keys


@pytest.mark.django_db(transaction=True)
def test_a_failing_purge_is_queued_again_later_until_the_cdn_takes_it(
    queued, make_worker, cdn_port
):
    make_worker()  # the CDN's port refuses connections
    tasks.purge_keys.enqueue(["post:1", "tag:2"])

    first, retry = wait_for(lambda: first_rows(tasks.purge_keys, 2), "a retry")

    assert first.status == TaskResultStatus.SUCCESSFUL  # the attempt ran; the CDN failed it
    assert "retry_at" in first.return_value
    assert retry.args_kwargs == {"args": [["post:1", "tag:2"]], "kwargs": {"attempt": 2}}
    assert retry.run_after >= first.started_at + datetime.timedelta(seconds=1)  # the back-off
    with PurgeRecorder(cdn_port) as cdn:
        done = wait_for(
            lambda: task_rows(tasks.purge_keys).filter(return_value__purged=2).first(),
            "a purge the CDN took",
        )
    assert cdn.keys == {"post:1", "tag:2"}
    assert done.args_kwargs["kwargs"]["attempt"] >= 2


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_task_runs_it_again_when_it_starts(queued, make_worker, cdn_port):
    with PurgeRecorder(cdn_port, stalling=True) as cdn:
        worker = make_worker("killed-worker", PURGE_TIMEOUT="60")
        result = tasks.purge_keys.enqueue(["post:7"])
        assert cdn.arrived.wait(WAIT_SECONDS), worker.output()
        worker.kill()
        cdn.release.set()
        row = DBTaskResult.objects.get(pk=result.id)
        assert row.status == TaskResultStatus.RUNNING  # and nothing would ever change that
        assert cdn.keys == set()

        cdn.stalling = False
        worker.start()  # the same worker id
        wait_for(lambda: DBTaskResult.objects.get(pk=result.id).status
                 == TaskResultStatus.SUCCESSFUL, "the task's second run")

    row = DBTaskResult.objects.get(pk=result.id)
    assert row.worker_ids == ["killed-worker", "killed-worker"]  # two attempts
    assert cdn.keys == {"post:7"}
    assert task_rows(tasks.purge_keys).count() == 1  # run again, not queued again
    assert "worker killed-worker took back 1 task(s)" in worker.output()


# Without a worker.


def test_a_purge_is_queued_once_the_change_commits(
    settings, django_capture_on_commit_callbacks
):
    settings.TASKS = DATABASE_BACKEND
    settings.PURGER = "log"

    with django_capture_on_commit_callbacks(execute=True):
        caching.invalidate(["post:1", "tag:2"])
        assert not DBTaskResult.objects.exists()  # nothing before the commit

    row = task_rows(tasks.purge_keys).get()
    assert row.args_kwargs == {"args": [["post:1", "tag:2"]], "kwargs": {}}
    assert not purging.queue.to_purge  # the worker sends it, not this process


def test_with_replicas_a_change_is_refreshed_again_once_they_settle(
    settings, django_capture_on_commit_callbacks
):
    # Pages rendered from a replica behind the change were cached under its new versions:
    # the worker refreshes the same keys again after REPLICA_SETTLE_SECONDS
    # (tests/test_replicas.py shows the stale page and its refresh through real servers).
    settings.TASKS = DATABASE_BACKEND
    settings.DATABASE_REPLICA_URLS = ["postgres://replica.invalid/alphanode"]
    settings.REPLICA_SETTLE_SECONDS = 7.5
    before = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        caching.invalidate(["post:5", "card:5"])

    row = task_rows(tasks.refresh_keys).get()
    assert row.args_kwargs == {"args": [["card:5", "post:5"]], "kwargs": {}}
    assert 7 <= (row.run_after - before).total_seconds() < 9

    key = caching.VERSION_PREFIX + "post:5"
    version = caching.cache.get(key)
    tasks.refresh_keys.call(["card:5", "post:5"])  # what the worker runs: new versions again
    assert caching.cache.get(key) not in (None, version)


def test_on_the_immediate_backend_purges_stay_with_the_purge_thread(
    settings, django_capture_on_commit_callbacks, caplog
):
    settings.PURGER = "log"

    with django_capture_on_commit_callbacks(execute=True):
        caching.invalidate(["post:3"])

    assert not DBTaskResult.objects.exists()
    assert purging.flush(timeout=1)
    assert "purge 1 keys: post:3" in caplog.text


@pytest.mark.parametrize(("attempt", "delay"), [(1, 2), (2, 4), (3, 8), (5, 32), (6, 60), (9, 60)])
def test_purge_retries_wait_twice_as_long_each_time_up_to_a_minute(settings, attempt, delay):
    settings.PURGE_RETRY_SECONDS = 2
    assert tasks.retry_delay(attempt) == delay


def test_a_purge_that_fails_its_last_attempt_is_logged_and_fails(settings, cdn_port, caplog):
    settings.PURGER = "http"
    settings.PURGE_URLS = [f"http://{HOST}:{cdn_port}/"]  # refused: nothing listens there
    settings.PURGE_ATTEMPTS = 3

    with pytest.raises(tasks.PurgeFailed, match="1 keys not purged after 3 attempts"):
        tasks.purge_keys.call(["post:1"], attempt=3)

    assert "failed 3 times" in caplog.text and "giving up" in caplog.text


def claimed(status, *worker_ids):
    return DBTaskResult.objects.create(
        task_path=tasks.purge_keys.module_path, args_kwargs={"args": [["post:1"]], "kwargs": {}},
        backend_name="default", status=status, worker_ids=list(worker_ids),
    )


def test_a_starting_worker_takes_back_only_the_tasks_it_was_running():
    lost = claimed(TaskResultStatus.RUNNING, "w1")
    lost_again = claimed(TaskResultStatus.RUNNING, "w2", "w1")  # reclaimed by w1 after w2
    others = [
        claimed(TaskResultStatus.RUNNING, "w1", "w2"),  # w2 runs it now
        claimed(TaskResultStatus.RUNNING, "w2"),
        claimed(TaskResultStatus.SUCCESSFUL, "w1"),
        claimed(TaskResultStatus.FAILED, "w1"),
    ]

    assert take_back_tasks("w1", "default") == 2

    statuses = dict(DBTaskResult.objects.values_list("pk", "status"))
    assert statuses[lost.pk] == statuses[lost_again.pk] == TaskResultStatus.READY
    assert [statuses[row.pk] for row in others] == [row.status for row in others]
    assert take_back_tasks("w1", "default") == 0


def test_unpublishing_refills_the_lists_at_once_on_the_immediate_backend():
    shared = TagFactory()
    gone, holder = PostFactory.create_batch(2, tag_count=0)
    for post in (gone, holder):
        PostTagFactory(post=post, tag=shared)
    assert SimilarPost.objects.filter(post=holder, similar=gone).exists()

    unpublish_posts(Post.objects.filter(pk=gone.pk), None)

    assert not SimilarPost.objects.filter(similar=gone).exists()
    assert not DBTaskResult.objects.exists()


def test_a_refill_that_fails_does_not_undo_the_unpublishing(monkeypatch):
    # On the immediate backend the refill runs inside the editor's transaction, and the
    # backend records its failure as the task's: the change itself must still commit.
    from django.db import transaction

    from posts import derived

    def broken(*args, **kwargs):
        raise RuntimeError("the refill failed")

    shared = TagFactory()
    gone, holder = PostFactory.create_batch(2, tag_count=0)
    for post in (gone, holder):
        PostTagFactory(post=post, tag=shared)
    monkeypatch.setattr(derived, "refill_lists_holding", broken)

    with transaction.atomic():  # as the admin's action runs
        unpublish_posts(Post.objects.filter(pk=gone.pk), None)
        assert Post.objects.filter(pk=gone.pk, status="draft").exists()

    gone.refresh_from_db()
    assert gone.status != "published"


@pytest.mark.parametrize("command", ["fold_view_counts", "release_scheduled"])
@pytest.mark.parametrize(
    ("backend", "status"),
    [(None, TaskResultStatus.SUCCESSFUL), (DATABASE_BACKEND, TaskResultStatus.READY)],
)
def test_periodic_commands_can_queue_their_work(settings, command, backend, status):
    if backend:
        settings.TASKS = backend
    out = StringIO()

    call_command(command, "--enqueue", stdout=out)

    assert out.getvalue().startswith(f"queued {command} as task ")
    assert out.getvalue().strip().endswith(f"({status})")
    rows = task_rows(getattr(tasks, command))
    assert [row.status for row in rows] == ([status] if backend else [])


def test_the_worker_refuses_to_start_without_a_queue():
    with pytest.raises(CommandError, match="Set TASKS_BACKEND=database"):
        call_command("run_worker", "--batch")
