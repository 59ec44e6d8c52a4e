"""The program that runs inside a run's sandbox, before and around the snippet.

It is handed to the interpreter as text (`python -c SOURCE ...`, see command()), since the
sandbox of a plain Python run shows nothing of the project; so it imports only the
standard library at the top. Its commands:

    serve CPU_SECONDS [WARM_UP ARGS...]
        Do the expensive part first (the interpreter and, for Django, django.setup() and
        the models), then read the snippet's code from stdin until EOF and run it as
        __main__ from snippet.py in the working directory. That lets a warm pool start
        the process ahead of its run, which then only hands its code over. Once it has
        the code it lowers RLIMIT_CPU to the snippet's budget on top of the CPU the
        warm-up spent (rounded up: rlimits count whole seconds), so a snippet gets the
        same budget warm or cold.
    limit RLIMITS_JSON COMMAND...
        Set the resource limits and exec the command: what prlimit does inside
        bubblewrap, for the unsafe local mode (macOS has no prlimit).
"""

import functools
import sys

__runner__ = True  # tracebacks hide the frames of modules marked so (see receive())


@functools.cache
def source():
    """This program's text (outside the sandbox only: `python -c` has no __file__)."""
    from pathlib import Path

    return Path(__file__).read_text(encoding="utf-8")


def command(interpreter, *args):
    """The argv that runs this program's command (args) with interpreter."""
    return [interpreter, "-u", "-I", "-B", "-c", source(), *args]


def limit_command(interpreter, rlimits, argv):
    """The argv that sets rlimits, (name, soft, hard) triples, then execs argv."""
    import json

    # -S: nothing of site-packages runs before the limits are set.
    return [interpreter, "-I", "-S", "-c", source(), "limit", json.dumps(rlimits), *argv]


def warm_up_django(project):
    """Set Django up with the models and a connection; install the query reporter."""
    set_up_django(project)
    connect_django()


def set_up_django(project):
    sys.path.insert(0, project)
    import django

    django.setup()
    import glossary.models  # noqa: F401
    from examples import sqlreport

    sqlreport.layout("SELECT 1")  # sqlparse builds its lexer once


def connect_django():
    from django.db import connection

    import glossary.models

    connection.ensure_connection()
    # A first query's imports and caches (in a fork, the pages it writes) are not the
    # snippet's wait; before the reporter, which would count it.
    glossary.models.Topic.objects.exists()
    from examples import sqlreport

    sqlreport.install()


def warm_up_imports(*modules):
    """Import what the snippet most likely imports first: its database's client."""
    import importlib

    for module in modules:
        importlib.import_module(module)


def greet_server():
    """Connect to the run's own server once, as its snippet will: what a first connection
    costs (PostgreSQL builds its relation cache file, redis-py reads its version from its
    package metadata) is then not the snippet's wait."""
    import os

    if "REDIS_URL" in os.environ:
        import redis

        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        client.ping()
        client.close()
    elif "PGHOST" in os.environ or "MYSQL_UNIX_PORT" in os.environ:
        connection, _ = connect_sql()
        connection.cursor().execute("SELECT 1")
        connection.close()


def warm_up_clients(*modules):
    warm_up_imports(*modules)
    greet_server()


WARM_UPS = {"django": warm_up_django, "import": warm_up_clients}
# A fork server's (zygote.py): what it does once, and what each run's process does.
FORK_WARM_UPS = {
    "django": (set_up_django, connect_django),
    "import": (warm_up_imports, greet_server),
}


SUFFIXES = {b"python": "py", b"sql": "sql"}


def prepare():
    """Import what receive() needs, ahead of the code: a fork server does it once."""
    import linecache  # noqa: F401
    import sysconfig
    import traceback  # noqa: F401

    sysconfig.get_paths()


def receive(cpu_seconds):
    """Wait for the snippet: its language on the first line, then its code until EOF.
    Return exec()'s arguments to run it: Python as __main__, SQL with run_sql().

    The excepthook hides this program's frames, so tracebacks start at snippet.py;
    tracebacks and warnings show each file relative to the directory Python found it in
    (json/decoder.py, django/db/models/query.py, snippet.py): the server's paths mean
    nothing to a reader. Reading stdin, which only carried the code, says so instead of a
    bare EOFError.
    """
    import io
    import json
    import linecache
    import math
    import os
    import re
    import resource
    import sysconfig
    import traceback
    import warnings

    roots = {os.getcwd(), *sysconfig.get_paths().values(), *sys.path}
    roots = sorted((os.path.join(root, "") for root in roots if root), key=len, reverse=True)
    file_line = re.compile(r'^(  File ")([^"]+)', re.MULTILINE)
    format_warning = warnings.formatwarning

    def relative(path):
        root = next((root for root in roots if path.startswith(root)), "")
        return path[len(root) :]

    def formatwarning(message, category, filename, lineno, line=None):
        if line is None:
            line = linecache.getline(filename, lineno)
        return format_warning(message, category, relative(filename), lineno, line)

    def excepthook(kind, value, tb):
        frames = []
        while tb is not None:
            if not tb.tb_frame.f_globals.get("__runner__"):
                frames.append(tb)
            tb = tb.tb_next
        for frame, after in zip(frames, [*frames[1:], None], strict=True):
            frame.tb_next = after
        tb = frames[0] if frames else None
        text = "".join(traceback.format_exception(kind, value.with_traceback(tb), tb))
        sys.stderr.write(file_line.sub(lambda match: match[1] + relative(match[2]), text))

    class NoInput(io.TextIOBase):
        def readable(self):
            return True

        def read(self, size=-1):
            raise EOFError("this sandbox has no input; write the value into the code instead")

        readline = read

    sys.excepthook = excepthook
    warnings.formatwarning = formatwarning
    language, _, source = sys.stdin.buffer.read().partition(b"\n")
    sys.stdin = NoInput()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    budget = math.ceil(usage.ru_utime + usage.ru_stime) + cpu_seconds
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (min(soft, budget), min(hard, budget + 1)))
    if language == b"check":
        # In this program's globals, so that tracebacks hide the frame as they hide ours.
        namespace = globals()
        namespace["job"] = json.loads(source)
        return compile("run_check(job)", "<check>", "exec"), namespace
    path = snippet_file(language, source)
    if language == b"sql":
        return compile("run_sql(source)", "<sql>", "exec"), {"run_sql": run_sql, "source": source}
    return compile(source, path, "exec"), main_namespace(path)


def snippet_file(language, source):
    """Write the snippet where its tracebacks say it is: snippet.py or snippet.sql."""
    import os

    path = os.path.join(os.getcwd(), f"snippet.{SUFFIXES.get(language, 'py')}")
    with open(path, "wb") as file:
        file.write(source)
    return path


def main_namespace(path):
    """The globals of the snippet, run as __main__ from path."""
    import types

    main = types.ModuleType("__main__")
    main.__file__ = path
    sys.modules["__main__"] = main
    sys.argv[:] = [path]
    return vars(main)


# Exercise runs: the data set (setup), the answer, then the checks' probes (see run_check).
PHASE_RECORD = "phase"


def run_check(job):
    """Run an answer the way an exercise checks it, in one process: the data set's setup,
    the answer, then each probe (a query whose rows or plan a check reads). A phase record
    on stdout starts each phase, so the runner can tell their events apart; the answer
    keeps its own file name, line and statement numbers.

    job: {"language": "python" | "sql", "setup": str, "code": str,
          "probes": [{"language": "python" | "sql", "code": str, "explain": bool}]}
    """
    import os

    sql = job["language"] == "sql"
    database = connect_sql() if sql else None
    write_phase("setup")
    if sql:
        run_sql(job["setup"].encode(), database, "Setup statement")
    else:
        setup = compile(job["setup"], os.path.join(os.getcwd(), "setup.py"), "exec")
        exec(setup, {"__name__": "setup"})
    write_phase("answer")
    code = job["code"].encode()
    path = snippet_file(b"sql" if sql else b"python", code)
    if sql:
        run_sql(code, database)
    else:
        try:
            exec(compile(code, path, "exec"), main_namespace(path))
        except SystemExit as stop:
            if stop.code not in (None, 0):
                raise
    for index, probe in enumerate(job["probes"]):
        write_phase("probe", index)
        try:
            run_probe(probe, database)
        except Exception as error:
            # On stdout, in order with the phase records: the check quotes it.
            sys.stdout.flush()
            sys.__stdout__.write(f"{type(error).__name__}: {str(error).strip()}\n")
    write_phase("end")


def write_phase(name, index=None):
    import time

    ms = round(time.perf_counter() * 1000, 3)
    write_record({"type": PHASE_RECORD, "phase": name, "index": index, "ms": ms})


def write_record(record):
    """A record for the runner on stdout, in one write so it never splits."""
    import json

    sys.stdout.flush()
    sys.__stdout__.write("\x1e" + json.dumps(record, allow_nan=False) + "\n")
    sys.__stdout__.flush()


def run_probe(probe, database):
    """Write the probe's result as a table record: its rows, or (explain) its plan as JSON
    in one cell. SQL probes use the answer's connection only for SQLite in memory, which
    no other connection sees; elsewhere a new one, which sees what the answer committed."""
    import json

    if probe["language"] == "python":
        rows = python_rows(probe["code"])
        width = max((len(row) for row in rows), default=1)
        columns = [f"column{number}" for number in range(1, width + 1)]
        values = [[json_value(value) for value in row] for row in rows]
        return write_record(table_record(columns, values))
    if database is None or database[1] != "sqlite":
        database = connect_sql()
    connection, engine = database
    cursor = connection.cursor()
    if not probe["explain"]:
        cursor.execute(probe["code"])
        if cursor.description is None:
            raise ValueError("the check query returns no rows")
        return write_table(cursor)
    plan = explain(cursor, engine, probe["code"])
    write_record(table_record(["plan"], [[json.dumps(plan)]]))


def explain(cursor, engine, query):
    """The plan of query, as JSON-able data. PostgreSQL is told to avoid sequential scans,
    so the plan shows whether an index can serve the query, however small the table."""
    import json

    if engine == "postgresql":
        cursor.execute("SET enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {query}")
        return cursor.fetchone()[0]
    if engine == "mysql":
        cursor.execute(f"EXPLAIN FORMAT=JSON {query}")
        return json.loads(cursor.fetchone()[0])
    cursor.execute(f"EXPLAIN QUERY PLAN {query}")
    return [list(row) for row in cursor.fetchall()]


def python_rows(code):
    """The rows a Python probe gives: the value of its last line, if an expression (a list
    of rows; a row that is no list or tuple is one value; a dict gives (key, value) rows)."""
    import ast

    tree = ast.parse(code, "check.py")
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    namespace = {"__name__": "check"}
    exec(compile(tree, "check.py", "exec"), namespace)
    if last is None:
        return []
    value = eval(compile(ast.Expression(last.value), "check.py", "eval"), namespace)
    if isinstance(value, dict):
        value = list(value.items())
    if value is None or isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        value = [value]
    return [list(row) if isinstance(row, list | tuple) else [row] for row in value]


# SQL runs: statement by statement, each result set a table record on stdout.
TABLE_ROWS = 200
TABLE_CHARS = 48 * 1024


def split_statements(text):
    """(line, statement) for each statement of an SQL script, without the ";".

    Semicolons inside quotes ('...', "...", `...`), dollar quotes ($$...$$, $tag$...$tag$)
    and comments do not end a statement.
    """
    import re

    token = re.compile(
        r"""'(?:[^']|'')*'?|"(?:[^"]|"")*"?|`[^`]*`?|--[^\n]*|/\*.*?(?:\*/|$)"""
        r"""|\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$|;""",
        re.DOTALL,
    )
    statements, start, position = [], 0, 0
    while match := token.search(text, position):
        position = match.end()
        found = match.group()
        if found == ";":
            statements.append((start, text[start : match.start()]))
            start = position
        elif found.startswith("$"):
            end = text.find(found, position)
            position = len(text) if end == -1 else end + len(found)
    statements.append((start, text[start:]))
    # A statement starts at its first word: comments before it are not part of it.
    lead = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/)*", re.DOTALL)
    found = []
    for offset, body in statements:
        skip = lead.match(body).end()
        if body[skip:].strip():
            found.append((text.count("\n", 0, offset + skip) + 1, body[skip:].strip()))
    return found


def connect_sql():
    """A connection to the run's database and what it is: the run's own PostgreSQL or
    MariaDB when it has one, its copy of the seed database (django), else SQLite in memory."""
    import os

    if "PGHOST" in os.environ:
        import psycopg

        connection = psycopg.connect(autocommit=True)
        connection.add_notice_handler(
            lambda notice: print(f"{notice.severity}: {notice.message_primary}")
        )
        return connection, "postgresql"
    if "MYSQL_UNIX_PORT" in os.environ:
        import pymysql

        socket = os.environ["MYSQL_UNIX_PORT"]
        return pymysql.connect(
            unix_socket=socket, user="root", database="learn", autocommit=True
        ), "mysql"
    import sqlite3

    url = os.environ.get("DATABASE_URL", "")
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ":memory:"
    return sqlite3.connect(path, isolation_level=None), "sqlite"


def run_sql(source, database=None, label="Statement"):
    """Run each statement in turn; print each result set as a table record, stop at the
    first error naming its statement (exit status 1).

    database: (connection, engine) from connect_sql(), else a new connection.
    """
    text = source.decode("utf-8", errors="replace")
    connection, engine = database or connect_sql()
    cursor = connection.cursor()
    for number, (line, statement) in enumerate(split_statements(text), start=1):
        try:
            cursor.execute(statement)
            if cursor.description is None:
                status = getattr(cursor, "statusmessage", None)
                if status:
                    print(status)
                elif cursor.rowcount > 0:
                    print(f"{cursor.rowcount} row{'s' if cursor.rowcount != 1 else ''} affected")
                continue
            write_table(cursor)
        except Exception as error:
            first = statement.splitlines()[0]
            more = " ..." if "\n" in statement else ""
            sys.stdout.flush()
            sys.stderr.write(f"{label} {number} (line {line}) failed: {first}{more}\n")
            sys.stderr.write(f"{type(error).__name__}: {str(error).strip()}\n")
            sys.exit(1)


def write_table(cursor):
    """The result set of cursor's last statement as a table record."""
    import json

    rows = cursor.fetchmany(TABLE_ROWS + 1)
    values = [[json_value(value) for value in row] for row in rows[:TABLE_ROWS]]
    columns = [str(column[0]) for column in cursor.description]
    table = table_record(columns, [], truncated=len(rows) > TABLE_ROWS)
    size = 0
    for row in values:
        # A record the runner takes is at most 64 KiB: the rest of a wide table is cut.
        size += len(json.dumps(row))
        if size > TABLE_CHARS:
            table["truncated"] = True
            break
        table["rows"].append(row)
    write_record(table)


def table_record(columns, rows, truncated=False):
    return {"type": "table", "columns": columns, "rows": rows, "truncated": truncated}


def json_value(value):
    """A value as the table shows it: JSON's own types as they are, anything else as text."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return value
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return value
    if isinstance(value, bytes | memoryview):
        return "\\x" + bytes(value).hex()
    return str(value)


def set_limits_and_exec(rlimits, argv):
    import os
    import resource

    for name, soft, hard in rlimits:
        try:
            resource.setrlimit(getattr(resource, name), (soft, hard))
        except (AttributeError, ValueError, OSError):
            pass
    os.execv(argv[0], argv)


def main(args):
    match args:
        case ["serve", cpu_seconds, *warm_up]:
            if warm_up:
                WARM_UPS[warm_up[0]](*warm_up[1:])
            exec(*receive(int(cpu_seconds)))
        case ["limit", rlimits, *argv]:
            import json

            set_limits_and_exec(json.loads(rlimits), argv)
        case _:
            sys.exit("usage: serve CPU_SECONDS [WARM_UP ARGS...] | limit RLIMITS COMMAND...")


if __name__ == "__main__":
    main(sys.argv[1:])
