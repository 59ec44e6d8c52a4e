"""Guardrails for curators: which languages a runtime runs, whether this server can run
it, and verifying a snippet in the background after an edit in the admin."""

import io
import logging
import queue
import threading

from django.core.management import CommandError, call_command
from django.db import close_old_connections, transaction

from . import runner

logger = logging.getLogger(__name__)


def language_problem(language, runtime):
    """Why code in this language cannot run with this runtime, or ""."""
    if runtime and language not in runner.LANGUAGES:
        languages = " or ".join(runner.LANGUAGES)
        return f"Snippets run {languages} code, not {language}: make it display-only."
    return ""


def runtime_problem(runtime):
    """Why this server cannot run the runtime (readers would see an error), or ""."""
    return (runtime and runner.unavailable(runtime)) or ""


def verify(slug):
    """Run one snippet and record the result (the logic of `manage.py verifysnippets`)."""
    try:
        call_command("verifysnippets", slug, stdout=io.StringIO())
    except CommandError:
        pass  # a failing snippet is recorded as failing; the command says so by raising
    except Exception:
        logger.exception("Verifying snippet %s failed", slug)
    finally:
        close_old_connections()


# Verifications wait their turn in one thread: a bulk "Verify now" must not start dozens of
# sandboxes at once next to the readers' runs.
_pending = queue.SimpleQueue()
_worker = None
_worker_lock = threading.Lock()


def _verify_pending():
    while True:
        verify(_pending.get())


def verify_in_background(snippet):
    """Queue the snippet for verification once the current transaction commits."""

    def enqueue():
        global _worker
        with _worker_lock:
            if _worker is None or not _worker.is_alive():
                _worker = threading.Thread(
                    target=_verify_pending, name="verify-snippets", daemon=True
                )
                _worker.start()
        _pending.put(snippet.slug)

    transaction.on_commit(enqueue)
