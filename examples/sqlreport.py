"""Report every query an example makes: its SQL, parameters, time, the line that caused it,
and for a SELECT the plan the database chose.

install() hooks a reporter into every database connection of the process (through
`connection.execute_wrapper`). It writes to standard output, in order with the example's
own prints, in one of two forms:

* for a reader at a terminal (the default), a compact block after each query:

      [sql 0.42 ms, line 23] SELECT "glossary_topic"."id", … (+11 columns) FROM …
          plan: SEARCH glossary_topic USING INDEX … (slug=?)

* with SNIPPET_SQL_EVENTS=1 (the site's runner sets it), one record per query, written in
  a single call so it never splits: "\\x1e" + JSON + "\\n", where the JSON is
  {"type": "sql", "sql": ..., "params": [...], "ms": 0.42, "line": 23, "plan": ... or null,
  "formatted": ..., "short": ... or null}: formatted is the query laid out by sqlparse with
  its parameters written in, short the same with a long column list collapsed (null when
  there is none). The example pays for the layout out of its own CPU time.
"""

import asyncio
import datetime
import decimal
import json
import os
import re
import sys
import time
import uuid

import sqlparse
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections
from django.db.backends.signals import connection_created

RECORD_START = "\x1e"
PLACEHOLDER = re.compile(r"%s|%%|%\((\w+)\)s")
# A SELECT list of plain columns, shortened for reading ("… (+11 columns)").
COLUMN_LIST = re.compile(r"^SELECT (DISTINCT )?([^()]*?) FROM ", re.DOTALL)

_reporter = None


def install():
    """Report every query from now on, in this thread and any other; safe to call twice."""
    global _reporter
    if _reporter is None:
        _reporter = QueryReporter(events=events_enabled())
        connection_created.connect(_attach, weak=False, dispatch_uid="examples.sqlreport")
    for alias in connections:
        # Connect first: what Django runs to set a connection up (contrib.postgres looks
        # up type OIDs) is not the example's doing, and the site's runner connects early too.
        connections[alias].ensure_connection()
        _attach(connections[alias])


def events_enabled():
    value = os.environ.get("SNIPPET_SQL_EVENTS", "")
    if value not in ("", "0", "1"):
        raise ImproperlyConfigured(f"SNIPPET_SQL_EVENTS must be 1 or 0, not {value!r}.")
    return value == "1"


def _attach(connection, **kwargs):
    # Connections are per thread (the async ORM's worker thread has its own), so each new
    # one is hooked as it connects.
    if _reporter not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, _reporter)


class QueryReporter:
    def __init__(self, events=False):
        self.events = events

    def __call__(self, execute, sql, params, many, context):
        line = caller_line()
        started = time.perf_counter()
        try:
            result = execute(sql, params, many, context)
        except Exception as error:
            failed = f"failed: {type(error).__name__}"
            self.report(sql, params, many, elapsed_ms(started), line, plan=None, failed=failed)
            raise
        ms = elapsed_ms(started)
        plan = None if many or not is_select(sql) else explain(context["connection"], sql, params)
        self.report(sql, params, many, ms, line, plan)
        return result

    def report(self, sql, params, many, ms, line, plan, failed=None):
        if self.events:
            formatted, short = formatted_sql(sql, params, many)
            record = {
                "type": "sql",
                "sql": sql,
                "params": jsonable(params),
                "ms": ms,
                "line": line,
                "plan": plan,
                "formatted": formatted,
                "short": short,
            }
            sys.stdout.write(RECORD_START + json.dumps(record) + "\n")
        else:
            where = f", line {line}" if line is not None else ""
            where += f", {failed}" if failed else ""
            text = f"  [sql {ms:g} ms{where}] {display_sql(sql, params, many)}\n"
            if plan:
                first, *rest = plan.splitlines()
                text += f"      plan: {first}\n" + "".join(f"            {r}\n" for r in rest)
            sys.stdout.write(text)
        sys.stdout.flush()


def elapsed_ms(started):
    return round((time.perf_counter() - started) * 1000, 2)


def is_select(sql):
    return sql.lstrip().upper().startswith(("SELECT", "WITH"))


def explain(connection, sql, params):
    """The plan of a query that has just run, or None.

    A raw cursor of the same connection runs EXPLAIN: it bypasses the execute wrappers (no
    report of the report) and Django's query log (assertNumQueries counts stay true).
    """
    prefix = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    cursor = connection.create_cursor()
    try:
        cursor.execute(prefix + sql, params)
        rows = cursor.fetchall()
    except DatabaseError:
        return None
    finally:
        cursor.close()
    if connection.vendor != "sqlite":
        return "\n".join(row[0] for row in rows)
    # SQLite: (id, parent, notused, detail) rows that form a tree.
    depth, lines = {0: -1}, []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    return "\n".join(lines)


def caller_line():
    """The line of the running example (the __main__ module) that led to this query.

    Under `python -m examples.x` that is examples/x.py; under the site's runner the
    snippet runs as __main__ too. The async ORM runs queries on a worker thread, whose
    stack holds no example code: then the waiting coroutine is asked.
    """
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == "__main__":
            return frame.f_lineno
        frame = frame.f_back
    return _awaiting_line()


def _awaiting_line():
    from asgiref.sync import SyncToAsync

    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    if loop is None:
        return None
    waiting, others = [], []
    for task in asyncio.all_tasks(loop):
        line, coro, innermost = None, task.get_coro(), None
        while coro is not None and hasattr(coro, "cr_frame"):
            if coro.cr_frame is not None and coro.cr_frame.f_globals.get("__name__") == "__main__":
                line = coro.cr_frame.f_lineno
            innermost, coro = coro, coro.cr_await
        if line is not None:
            # The task whose innermost coroutine is sync_to_async's is the one waiting on
            # this thread; others may be waiting for something else.
            is_waiting = innermost is not None and "SyncToAsync" in innermost.__qualname__
            (waiting if is_waiting else others).append(line)
    return (waiting or others or [None])[0]


def jsonable(value):
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    return repr(value)


def display_sql(sql, params, many=False):
    """The SQL on one line with its parameters written in, a long column list shortened."""
    return shorten(written_in(sql, params, many))


def formatted_sql(sql, params, many=False):
    """(formatted, short) for the site's SQL panel: see the module docstring."""
    text = written_in(sql, params, many)
    short = shorten(text)
    return layout(text), (layout(short) if short != text else None)


def layout(sql):
    return sqlparse.format(sql, reindent=True, wrap_after=60)


def written_in(sql, params, many=False):
    """The SQL on one line with its parameters written in as literals, for reading only."""
    sql = " ".join(sql.split())
    if many:
        rows = len(params) if hasattr(params, "__len__") else "several"
        return f"{sql}  -- executed for {rows} rows"
    if params is None:
        return sql
    values = iter(params) if not isinstance(params, dict) else None

    def substitute(match):
        if match.group(0) == "%%":
            return "%"
        value = params[match.group(1)] if values is None else next(values)
        return literal(value)

    try:
        return PLACEHOLDER.sub(substitute, sql)
    except (StopIteration, KeyError, TypeError):
        return f"{sql}  -- params {params!r}"


def shorten(sql):
    match = COLUMN_LIST.match(sql)
    if not match:
        return sql
    columns = match.group(2).split(", ")
    if len(columns) < 4:
        return sql
    distinct = match.group(1) or ""
    short = f"SELECT {distinct}{columns[0]}, … (+{len(columns) - 1} columns) FROM "
    return short + sql[match.end() :]


def literal(value):
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        value = value.isoformat(sep=" ") if isinstance(value, datetime.datetime) else value
    text = str(value)
    return "'" + text.replace("'", "''") + "'"
