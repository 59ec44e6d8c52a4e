"""Each check kind: given the answer's outcome (and the reference's on the same data set),
None if it passes, else a detail that says what is wrong with a small sample of the
difference (never a hidden data set whole)."""

import collections
import json
import re

from glossary.models import CheckKind
from glossary.runner.child import split_statements

from . import plans

SAMPLE_ROWS = 3
CELL_CHARS = 40
LINE_CHARS = 80
# Literals and placeholders, replaced to give a query's shape.
LITERAL = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b|%s|%\(\w+\)s|\?|\$\d+")
VALUE_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)*\s*\)")


def evaluate(check, spec, answer, reference, code, hidden=False):
    """Why check fails for this data set's outcomes, or None. answer ran to its end;
    hidden: the data set is hidden, so the detail quotes less of it."""
    match check.kind:
        case CheckKind.ROWS:
            return rows_problem(check, answer, reference, hidden)
        case CheckKind.OUTPUT:
            return output_difference(reference.stdout, answer.stdout)
        case CheckKind.MAX_QUERIES:
            queries = query_texts(spec, answer, code)
            if len(queries) <= check.number:
                return None
            return f"Your code sent {len(queries)} queries; at most {check.number} are allowed."
        case CheckKind.NO_SIMILAR:
            return similar_queries(query_texts(spec, answer, code))
        case CheckKind.USES_INDEX | CheckKind.NO_SEQ_SCAN:
            return plan_problem(check, spec, answer)
        case CheckKind.TIME_LIMIT:
            if answer.answer_ms is not None and answer.answer_ms <= check.number:
                return None
            return f"Your code took {answer.answer_ms} ms; the limit is {check.number} ms."
    raise ValueError(f"Unknown check kind {check.kind!r}")


def forbidden(check, code):
    """Why the code fails a forbids check (it does not depend on the data), or None."""
    found = re.search(check.target, code, re.MULTILINE)
    if not found:
        return None
    line = code.count("\n", 0, found.start()) + 1
    used = shorten(found.group(), LINE_CHARS)
    return f"Line {line} uses {used!r}, which this exercise rules out."


def rows_problem(check, answer, reference, hidden=False):
    if check.probe is None:
        expected = reference.tables[-1] if reference.tables else None
        got = answer.tables[-1] if answer.tables else None
        if got is None:
            return "Your code returned no rows: end it with the query whose rows are the answer."
    else:
        expected, _ = reference.probe_result(check.probe)
        got, why = answer.probe_result(check.probe)
        if got is None:
            return f"After your code, the check query failed: {shorten(why, LINE_CHARS * 2)}"
    if expected is None:
        raise ValueError("The reference gave no rows to compare with.")
    sample_rows = 1 if hidden else SAMPLE_ROWS
    return table_difference(expected, got, check.ordered, check.compare_column_names, sample_rows)


def table_difference(expected, got, ordered=False, names=False, sample_rows=SAMPLE_ROWS):
    """How got's rows differ from expected's, or None. Unordered, rows are a multiset.
    The detail quotes at most sample_rows rows of each kind of difference."""
    if names and expected["columns"] != got["columns"]:
        return f"Expected the columns {columns(expected)}, got {columns(got)}."
    if len(expected["columns"]) != len(got["columns"]):
        return (
            f"Expected {len(expected['columns'])} columns ({columns(expected)}), "
            f"got {len(got['columns'])} ({columns(got)})."
        )
    want = [normal_row(row) for row in expected["rows"]]
    have = [normal_row(row) for row in got["rows"]]
    if want == have:
        return None
    counts = f"Expected {len(want)} rows, got {len(have)}."
    missing = collections.Counter(want) - collections.Counter(have)
    extra = collections.Counter(have) - collections.Counter(want)
    if not missing and not extra:
        if not ordered:
            return None
        first = next(i for i, (a, b) in enumerate(zip(want, have, strict=True)) if a != b)
        return (
            f"The rows are right but their order is not: row {first + 1} should be "
            f"{row_text(want[first])}, not {row_text(have[first])}."
        )
    parts = [counts] if len(want) != len(have) else []
    if missing:
        parts.append(f"Missing: {sample(missing, sample_rows)}.")
    if extra:
        parts.append(f"Not expected: {sample(extra, sample_rows)}.")
    return " ".join(parts)


def normal_row(row):
    # Floats from different but equal computations differ in the last digits.
    return tuple(float(f"{value:.12g}") if isinstance(value, float) else value for value in row)


def sample(counter, size):
    rows = list(counter.elements())
    text = "; ".join(row_text(row) for row in rows[:size])
    return text + (f" (and {len(rows) - size} more)" if len(rows) > size else "")


def row_text(row):
    return "(" + ", ".join(cell_text(value) for value in row) + ")"


def cell_text(value):
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + shorten(value, CELL_CHARS) + "'"
    return json.dumps(value)


def columns(table):
    return ", ".join(table["columns"]) or "none"


def shorten(text, limit):
    text = " ".join(text.split()) if "\n" in text else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def output_lines(text):
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def output_difference(expected, got):
    want, have = output_lines(expected), output_lines(got)
    if want == have:
        return None
    for number, (a, b) in enumerate(zip(want, have, strict=False), start=1):
        if a != b:
            return (
                f"Line {number} of the output should be {shorten(a, LINE_CHARS)!r}, "
                f"not {shorten(b, LINE_CHARS)!r}."
            )
    if len(have) < len(want):
        return f"The output stops after {len(have)} lines; {len(want)} were expected."
    first = shorten(have[len(want)], LINE_CHARS)
    return f"The output has {len(have) - len(want)} lines too many, from {first!r}."


def query_texts(spec, answer, code):
    """The answer's queries: a Django answer's sql events, an SQL answer's statements."""
    if spec.runtime == "django" and spec.language == "python":
        return [event["sql"] for event in answer.queries]
    return [statement for _, statement in split_statements(code)]


def shape(sql):
    """A query with its literals and parameters replaced: same shape, same query."""
    text = LITERAL.sub("?", sql)
    return " ".join(VALUE_LIST.sub("(?)", text).split()).lower()


def similar_queries(queries):
    counts = collections.Counter(shape(query) for query in queries)
    repeated = [(query, count) for query, count in counts.most_common() if count > 1]
    if not repeated:
        return None
    query, count = repeated[0]
    return f"This query ran {count} times, once per row: {shorten(query, LINE_CHARS * 2)}"


def plan_problem(check, spec, answer):
    if spec.runtime == "django" and spec.language == "python":
        needle = check.target.lower()
        event = next((e for e in answer.queries if needle in e["sql"].lower()), None)
        if event is None:
            return f"None of your code's queries contains {check.target!r}."
        if not event["plan"]:
            return "The database gave no plan for that query."
        accesses = plans.sqlite_accesses(event["plan"].splitlines())
    else:
        table, why = answer.probe_result(check.probe)
        if table is None:
            return f"After your code, the query's plan could not be read: {shorten(why, 160)}"
        accesses = plans.accesses_of(spec.runtime, json.loads(table["rows"][0][0]))
    steps = plans.describe(accesses)
    if check.kind == CheckKind.USES_INDEX:
        if any(access.index and access.of(check.table) for access in accesses):
            return None
        where = f" of {check.table}" if check.table else ""
        return f"The plan uses no index{where}: {steps}."
    if any(access.full_scan and access.of(check.table) for access in accesses):
        return f"The plan reads all of {check.table}: {steps}."
    return None
