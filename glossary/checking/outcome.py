"""One run of code on one data set, sorted by phase (see runner.child.run_check): what the
reader sees of it, and what the checks read.

A reader's Python can print phase records of its own. Checks guard against mistakes, not
against a reader fooling their own progress, which lives in their own browser anyway.
"""

import dataclasses

from glossary.runner.events import EXIT_CANCELLED, EXIT_LOST, EXIT_OK

# How a run that did not finish reads in a check's detail.
ENDINGS = {
    "error": "ended with an error",
    "timeout": "ran out of time",
    "cpu": "used up its CPU time",
    "memory": "ran out of memory",
    "output_limit": "printed more than the output limit",
}
# Statements of transaction bookkeeping: no query a reader wrote or could save.
BOOKKEEPING = ("SAVEPOINT", "RELEASE", "ROLLBACK TO")


@dataclasses.dataclass
class Outcome:
    # The answer's own output, queries and tables, in order.
    events: list = dataclasses.field(default_factory=list)
    # What the data set's setup printed (shown to curators when it fails).
    setup_events: list = dataclasses.field(default_factory=list)
    # Each probe's events, by index.
    probes: dict = dataclasses.field(default_factory=dict)
    marks: dict = dataclasses.field(default_factory=dict)
    phase: str | None = None
    probe: int | None = None
    exit: dict | None = None
    error: str | None = None

    def take(self, event):
        """File the run's next event; return whether the reader sees it."""
        kind = event["type"]
        if kind == "phase":
            self.phase, self.probe = event["phase"], event["index"]
            self.marks[(self.phase, self.probe)] = event["ms"]
            return False
        if kind == "error":
            self.error = event["message"]
            return True
        if kind == "exit":
            self.exit = event
            return True
        if kind in ("queued", "start"):
            return True
        if self.phase in (None, "setup"):
            self.setup_events.append(event)
            return False
        # The answer's traceback may come after the probe's first record: stderr is a pipe
        # of its own, and probes write only to stdout.
        if self.phase == "answer" or kind == "stderr":
            self.events.append(event)
            return True
        if self.phase == "probe":
            self.probes.setdefault(self.probe, []).append(event)
        return False

    async def follow(self, events):
        """Yield what the reader sees of a run's events, filing each."""
        async for event in events:
            if self.take(event):
                yield event

    @property
    def unfinished(self):
        """Why the run tells nothing about the code (the server's trouble), or None."""
        if self.error is not None:
            return self.error
        if self.exit is None:
            return "The run ended without a result."
        if self.exit["reason"] in (EXIT_LOST, EXIT_CANCELLED):
            return self.exit.get("message") or "The run was stopped."
        return None

    @property
    def setup_failed(self):
        return (
            self.unfinished is None
            and self.exit["reason"] != EXIT_OK
            and (self.phase in (None, "setup"))
        )

    @property
    def setup_output(self):
        return "".join(event.get("text", "") for event in self.setup_events).strip()

    @property
    def ok(self):
        """The code ran to its end."""
        return self.unfinished is None and self.exit["reason"] == EXIT_OK

    @property
    def ending(self):
        """How the code ended, in words: "ended with an error" and so on."""
        if self.ok:
            return "finished"
        reason = self.exit["reason"] if self.exit else None
        return ENDINGS.get(reason, "did not finish")

    @property
    def stdout(self):
        return "".join(event["text"] for event in self.events if event["type"] == "stdout")

    @property
    def stderr(self):
        return "".join(event["text"] for event in self.events if event["type"] == "stderr")

    @property
    def tables(self):
        return [event for event in self.events if event["type"] == "table"]

    @property
    def queries(self):
        """The answer's queries (sql events), transaction bookkeeping left out."""
        return [
            event
            for event in self.events
            if event["type"] == "sql" and not event["sql"].lstrip().upper().startswith(BOOKKEEPING)
        ]

    @property
    def answer_ms(self):
        """The answer's own wall time, setup and probes left out (None: it did not end)."""
        started = self.marks.get(("answer", None))
        after = [ms for (phase, _), ms in self.marks.items() if phase in ("probe", "end")]
        if started is None or not after:
            return None
        return round(min(after) - started)

    def probe_result(self, index):
        """(table, None) for a probe that gave rows, else (None, why not)."""
        events = self.probes.get(index, [])
        tables = [event for event in events if event["type"] == "table"]
        if tables:
            return tables[-1], None
        text = "".join(event.get("text", "") for event in events).strip()
        return None, text or "the check query did not run"
