"""Every event a run yields, and the one place each is built.

    {"type": "queued", "position": 2}
    {"type": "start", "run": "<uuid hex>", "sandbox": "bubblewrap", "limits": {...}}
    {"type": "stdout", "text": "..."}  and  {"type": "stderr", "text": "..."}
    {"type": "sql", "sql": "...", "params": [...], "ms": 0.42, "line": 23, "plan": None}
      (Django runtime only: one per query the snippet's reporter writes, see SqlRecords)
    {"type": "table", "columns": ["id", "name"], "rows": [[1, "Ada"]], "truncated": False}
      (SQL snippets: one per result set, see child.run_sql)
    {"type": "exit", "reason": "ok", "code": 0, "signal": None, "wall_ms": 41,
     "truncated": False}
    {"type": "error", "message": "..."}

An exercise's runs (run() with setup or probes, see child.run_check) also yield phase
events, which start each phase and which a reader never sees; the checker adds its own:

    {"type": "phase", "phase": "setup" | "answer" | "probe" | "end", "index": None | 0,
     "ms": 1234.5}  (index: the probe's; ms: a clock of the run's process)
    {"type": "check", "name": "Rows equal the reference's", "passed": False,
     "detail": "..."}
    {"type": "verdict", "passed": True}  (or False, with "message" when it could not finish)

The rule: an error means nothing ran (it never follows start); a run that started ends
with exactly one exit. Exit reasons: ok, error, timeout (the wall clock), cpu (the CPU time
limit), memory, output_limit, lost (the run's end is unknown: its exit has a "message")
and cancelled (the reader stopped it; its driver reports that, see cancelled_event).
"""

import json
import math
import signal
from typing import Literal, NotRequired, TypedDict

EXIT_OK = "ok"
EXIT_ERROR = "error"
EXIT_TIMEOUT = "timeout"
EXIT_CPU = "cpu"
EXIT_MEMORY = "memory"
EXIT_OUTPUT_LIMIT = "output_limit"
EXIT_LOST = "lost"
EXIT_CANCELLED = "cancelled"

# A query record on a Django run's stdout: "\x1e" + a JSON object + "\n".
SQL_RECORD_START = "\x1e"
SQL_RECORD_CHARS = 64 * 1024
SQL_EVENT_FIELDS = ("type", "sql", "params", "ms", "line", "plan")
SQL_EVENT_LAYOUT = ("formatted", "short")
SQL_PARAMS_DEPTH = 4
INTEGERS = range(-(2**63), 2**63)
PHASES = ("setup", "answer", "probe", "end")


class Queued(TypedDict):
    type: Literal["queued"]
    position: int


class Start(TypedDict):
    type: Literal["start"]
    run: str
    sandbox: str
    limits: dict


class Output(TypedDict):
    type: Literal["stdout", "stderr"]
    text: str


class Sql(TypedDict):
    type: Literal["sql"]
    sql: str
    params: list | dict | None
    ms: int | float
    line: int | None
    plan: str | None
    formatted: NotRequired[str | None]
    short: NotRequired[str | None]


class Table(TypedDict):
    type: Literal["table"]
    columns: list[str]
    rows: list[list]
    truncated: bool


class Exit(TypedDict):
    type: Literal["exit"]
    reason: str
    code: int | None
    signal: int | None
    wall_ms: int
    truncated: bool
    message: NotRequired[str]


class Error(TypedDict):
    type: Literal["error"]
    message: str


class Phase(TypedDict):
    type: Literal["phase"]
    phase: Literal["setup", "answer", "probe", "end"]
    index: int | None
    ms: int | float


class CheckResult(TypedDict):
    type: Literal["check"]
    name: str
    passed: bool
    detail: str


class Verdict(TypedDict):
    type: Literal["verdict"]
    passed: bool
    message: NotRequired[str]


def queued_event(position) -> Queued:
    return {"type": "queued", "position": position}


def start_event(run_id, sandbox, limits) -> Start:
    return {"type": "start", "run": run_id, "sandbox": sandbox, "limits": limits}


def output_event(stream, text) -> Output:
    return {"type": stream, "text": text}


def exit_event(reason, wall_ms, code=None, signum=None, truncated=False, message=None) -> Exit:
    event = {
        "type": "exit",
        "reason": reason,
        "code": code,
        "signal": signum,
        "wall_ms": wall_ms,
        "truncated": truncated,
    }
    return event if message is None else {**event, "message": message}


def lost_event(message, wall_ms) -> Exit:
    """The end of a run that started but cannot report its own (its worker vanished)."""
    return exit_event(EXIT_LOST, wall_ms, message=message)


def cancelled_event(wall_ms) -> Exit:
    """The end of a run its reader stopped: a cancelled run cannot report its own, and its
    processes were killed."""
    return exit_event(EXIT_CANCELLED, wall_ms, signum=signal.SIGKILL)


def error_event(message) -> Error:
    """Nothing ran: the only event of a run that never started."""
    return {"type": "error", "message": message}


def check_event(name, passed, detail="") -> CheckResult:
    return {"type": "check", "name": name, "passed": passed, "detail": detail}


def verdict_event(passed, message=None) -> Verdict:
    """The end of an exercise's check: passed when every check passed. message: why the
    check could not finish (then it did not pass)."""
    event = {"type": "verdict", "passed": passed}
    return event if message is None else {**event, "message": message}


def encode(event):
    """An event as strict JSON text, the only form in which events leave the server."""
    return json.dumps(event, allow_nan=False)


class SqlRecords:
    """Splits a run's stdout into text and records: a Django run's queries, an SQL run's
    result sets.

    A record is "\x1e" + a JSON object with "type": "sql" or "table" + "\n", written at once but
    maybe read in pieces. Anything that is not a valid record (bad JSON, another type or
    shape, no newline within SQL_RECORD_CHARS, cut off at the end) passes through as
    stdout text.
    """

    def __init__(self):
        self.record = None  # the record read so far, from its "\x1e"

    def feed(self, text, final=False):
        """Events for the next piece of stdout, in order; final: it is the last piece."""
        events, plain = [], []
        while text:
            if self.record is None:
                start = text.find(SQL_RECORD_START)
                if start == -1:
                    plain.append(text)
                    break
                plain.append(text[:start])
                self.record, text = "", text[start:]
            end = text.find("\n") + 1 or len(text)
            self.record += text[:end]
            text = text[end:]
            if len(self.record) > SQL_RECORD_CHARS:
                plain.append(self.record)
                self.record = None
            elif self.record.endswith("\n"):
                event = record_event(self.record)
                if event is None:
                    plain.append(self.record)
                else:
                    events += self._text_event(plain)
                    events.append(event)
                self.record = None
        if final and self.record is not None:
            plain.append(self.record)
            self.record = None
        return events + self._text_event(plain)

    @staticmethod
    def _text_event(plain):
        text = "".join(plain)
        plain.clear()
        return [output_event("stdout", text)] if text else []


def record_event(record) -> Sql | Table | Phase | None:
    """The event a record holds, or None if it is not exactly one.

    The snippet writes these records, so they are checked as any input: no NaN or
    Infinity (not JSON; browsers refuse them), no integer msgpack cannot carry to a
    run worker's reader, no nesting deeper than a query's parameters need.
    """
    try:
        fields = json.loads(record[len(SQL_RECORD_START) :], parse_constant=_not_json)
    except (ValueError, RecursionError):
        return None
    if not isinstance(fields, dict):
        return None
    if fields.get("type") == "table":
        return table_event(fields)
    if fields.get("type") == "phase":
        return phase_event(fields)
    if fields.get("type") != "sql":
        return None
    return sql_event(fields)


def table_event(fields) -> Table | None:
    """A result set: column names, rows of JSON scalars as wide as the columns."""
    event = {name: fields.get(name) for name in ("type", "columns", "rows", "truncated")}
    columns, rows = event["columns"], event["rows"]
    valid = (
        isinstance(columns, list)
        and all(isinstance(column, str) for column in columns)
        and isinstance(rows, list)
        and all(
            isinstance(row, list) and len(row) == len(columns) and all(map(_is_scalar, row))
            for row in rows
        )
        and isinstance(event["truncated"], bool)
    )
    return event if valid else None


def phase_event(fields) -> Phase | None:
    """The start of a phase of an exercise's run (child.run_check)."""
    event = {name: fields.get(name) for name in ("type", "phase", "index", "ms")}
    valid = (
        event["phase"] in PHASES
        and (event["index"] is None or _is_integer(event["index"]))
        and _is_number(event["ms"])
    )
    return event if valid else None


def sql_event(fields) -> Sql | None:
    """A query the Django runtime's reporter wrote (examples/sqlreport.py)."""
    if not fields.keys() >= set(SQL_EVENT_FIELDS):
        return None
    event = {name: fields[name] for name in SQL_EVENT_FIELDS}
    # The panel's layout of the query (examples/sqlreport.py), when the reporter sent it.
    event |= {name: fields[name] for name in SQL_EVENT_LAYOUT if name in fields}
    valid = (
        isinstance(event["sql"], str)
        and _is_params(event["params"])
        and _is_number(event["ms"])
        and (event["line"] is None or _is_integer(event["line"]))
        and (event["plan"] is None or isinstance(event["plan"], str))
        and all(
            event.get(name) is None or isinstance(event[name], str) for name in SQL_EVENT_LAYOUT
        )
    )
    return event if valid else None


def _not_json(constant):
    raise ValueError(f"{constant} is not JSON")


def _is_integer(value):
    return type(value) is int and value in INTEGERS


def _is_number(value):
    # Floats are finite: the parser refuses NaN and Infinity, and overflows to Infinity
    # only for literals such as 1e999.
    return _is_integer(value) or (type(value) is float and math.isfinite(value))


def _is_params(value, depth=0):
    """None, or a list or dict of JSON scalars (nested a little: list parameters)."""
    if depth > SQL_PARAMS_DEPTH:
        return False
    if isinstance(value, list):
        return all(_is_params(item, depth + 1) or _is_scalar(item) for item in value)
    if isinstance(value, dict):
        return all(_is_params(item, depth + 1) or _is_scalar(item) for item in value.values())
    return depth == 0 and value is None


def _is_scalar(value):
    return value is None or isinstance(value, str | bool) or _is_number(value)
