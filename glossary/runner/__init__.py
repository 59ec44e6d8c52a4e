"""Snippet execution: run untrusted code in a sandbox and stream what it prints.

`run()` is an async generator of event dicts (events.py) that a test, a management
command and the WebSocket consumer can all drive; the runner knows nothing of Channels.
A run's path goes down the package once:

    runs.py       run(): refuse early, take a warm process or start one, clean up;
                  run_queued(): the same behind the run slots; LocalRuns
    runtimes.py   one class per runtime, a registry keyed by the model's Runtime choices
    databases.py  the Django runtime's seeded template
    servers.py    private servers of the server runtimes: templates built once, mounts
    serve.py      the launcher inside the sandbox: start the run's server, then the child
    sandbox.py    Bubblewrap | UnsafeLocal
    child.py      the program inside the sandbox: warm up, wait for the code, run it
    pool.py       warm processes per event loop, forked by
    forkserver.py a fork server per runtime: zygote.py, inside its own sandbox, forks
                  each run into a fresh one
    supervise.py  stream output, enforce the wall and output limits, decide the exit
    slots.py      run slots, per-client shares, the queue
    events.py     every event and the one place each is built
    limits.py     Limits from settings
"""

from .databases import DatabaseBuildError, template_database
from .events import (
    EXIT_CANCELLED,
    EXIT_LOST,
    SQL_RECORD_CHARS,
    SqlRecords,
    cancelled_event,
    check_event,
    encode,
    error_event,
    exit_event,
    lost_event,
    verdict_event,
)
from .limits import Limits
from .pool import shutdown_pool, warm_pids
from .runs import LANGUAGES, LocalRuns, run, run_queued, unavailable
from .runtimes import RUNTIMES
from .sandbox import RUN_UIDS, SANDBOX_DIR, base_python, bubblewrap_works, bwrap_argv, child_env
from .slots import Busy, RunSlots

__all__ = [
    "EXIT_CANCELLED",
    "EXIT_LOST",
    "LANGUAGES",
    "RUNTIMES",
    "RUN_UIDS",
    "SANDBOX_DIR",
    "SQL_RECORD_CHARS",
    "Busy",
    "DatabaseBuildError",
    "Limits",
    "LocalRuns",
    "RunSlots",
    "SqlRecords",
    "base_python",
    "bubblewrap_works",
    "bwrap_argv",
    "cancelled_event",
    "check_event",
    "child_env",
    "encode",
    "error_event",
    "exit_event",
    "lost_event",
    "run",
    "run_queued",
    "shutdown_pool",
    "template_database",
    "unavailable",
    "verdict_event",
    "warm_pids",
]
