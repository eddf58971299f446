"""Run the task worker (TASKS_BACKEND=database), first taking back the tasks that the same
worker id was running when it was killed."""

import logging
import socket

from django.core.management.base import CommandError
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS, TaskResultStatus, task_backends
from django_tasks_db import DatabaseBackend
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult

log = logging.getLogger("alphanode.tasks")


def take_back_tasks(worker_id: str, backend_name: str) -> int:
    """Set back to READY the tasks of `backend_name` that `worker_id` claimed last and never
    finished; return how many (at most 2 queries)."""
    running = DBTaskResult.objects.running().filter(backend_name=backend_name)
    # The worker ids of a task list every claim, the latest last; a task claimed since by
    # another worker is that one's. Few rows are ever RUNNING (one per live worker), and SQLite
    # has no JSON containment lookup: the latest claim is compared here.
    lost = [pk for pk, ids in running.values_list("pk", "worker_ids") if ids[-1:] == [worker_id]]
    # Still RUNNING: one that finished since is left alone.
    return running.filter(pk__in=lost).update(status=TaskResultStatus.READY)


class Command(db_worker.Command):
    help = (
        "Run the tasks queued in the database (TASKS_BACKEND=database), one at a time. On start, "
        "tasks this worker id was running when it was killed run again (every task is "
        "idempotent), so the id must stay the same across restarts and never be used by two "
        "workers at once (default: HOST-worker, as the systemd unit gives it)."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        # django-tasks-db's default is a random id, which would leave a killed worker's tasks
        # RUNNING for ever.
        parser.set_defaults(worker_id=f"{socket.gethostname()}-worker"[:64], backend_name=None)

    def handle(self, *, worker_id, backend_name, **options):
        if backend_name is None:
            if not isinstance(task_backends[DEFAULT_TASK_BACKEND_ALIAS], DatabaseBackend):
                raise CommandError(
                    "There is no queue to work on: tasks run where they are queued "
                    "(TASKS_BACKEND=immediate). Set TASKS_BACKEND=database."
                )
            backend_name = DEFAULT_TASK_BACKEND_ALIAS
        taken = take_back_tasks(worker_id, backend_name)
        if taken:
            log.warning(
                "worker %s took back %d task(s) it was running when it stopped; they run again",
                worker_id, taken,
            )
        else:
            log.info("worker %s: no unfinished task of its own to take back", worker_id)
        super().handle(worker_id=worker_id, backend_name=backend_name, **options)
