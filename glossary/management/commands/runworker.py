"""`manage.py runworker`: channels' command, with a worker that takes a run off the shared
channel only while it has a free run slot (glossary/workers/worker.py)."""

from channels.management.commands import runworker

from glossary.workers.worker import RunWorker


class Command(runworker.Command):
    worker_class = RunWorker
