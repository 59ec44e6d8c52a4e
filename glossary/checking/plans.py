"""Reading query plans: which tables a plan reads, and whether through an index.

Three shapes: SQLite's EXPLAIN QUERY PLAN rows (or the text tree the Django runtime's
reporter makes of them), PostgreSQL's EXPLAIN (FORMAT JSON) and MariaDB's EXPLAIN
FORMAT=JSON.
"""

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class Access:
    """A plan reads table, through index (None: none), maybe scanning all of the table."""

    table: str
    index: str | None
    full_scan: bool
    step: str

    def of(self, table):
        return not table or self.table.lower() == table.lower()


# "SCAN t", "SCAN TABLE t AS x", "SEARCH t USING INDEX i (a=?)", "SCAN t USING COVERING
# INDEX i", "SEARCH t USING INTEGER PRIMARY KEY (rowid=?)".
SQLITE_STEP = re.compile(
    r"^(?P<kind>SCAN|SEARCH) (?:TABLE )?(?P<table>[^\s(]+)(?: AS \S+)?(?: USING (?P<using>.*))?$"
)
SQLITE_INDEX = re.compile(r"(?:COVERING )?INDEX (\S+)|(INTEGER PRIMARY KEY|PRIMARY KEY)")


def sqlite_accesses(details):
    """Accesses of SQLite plan steps (the detail column of EXPLAIN QUERY PLAN)."""
    accesses = []
    for detail in details:
        step = detail.strip()
        match = SQLITE_STEP.match(step)
        if not match:
            continue
        using = match["using"] or ""
        # An automatic index is built by this query, for this query: no index of the table.
        found = None if "AUTOMATIC" in using else SQLITE_INDEX.search(using)
        index = found and (found[1] or found[2])
        full_scan = match["kind"] == "SCAN" and not index
        accesses.append(Access(match["table"], index, full_scan, step))
    return accesses


def postgresql_accesses(plan):
    """Accesses of a PostgreSQL EXPLAIN (FORMAT JSON) plan."""
    accesses = []

    def visit(node, relation=None):
        kind = node.get("Node Type", "")
        table = node.get("Relation Name") or relation
        if kind in ("Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Index Scan"):
            index = node.get("Index Name")
            step = f"{kind} on {table}" + (f" using {index}" if index else "")
            # Without a condition an index scan reads the whole index: the planner's
            # way round a table scan when it is told to avoid those (see child.explain).
            if index and "Index Cond" not in node:
                accesses.append(Access(table or "", None, True, step + " (all of it)"))
            else:
                accesses.append(Access(table or "", index, kind == "Seq Scan", step))
        for child in node.get("Plans", []):
            # A bitmap index scan names its index; the heap scan above it, the table.
            visit(child, table if kind == "Bitmap Heap Scan" else None)

    for entry in plan if isinstance(plan, list) else [plan]:
        visit(entry.get("Plan", {}))
    return accesses


def mysql_accesses(plan):
    """Accesses of a MariaDB (or MySQL) EXPLAIN FORMAT=JSON plan."""
    accesses = []

    def visit(value):
        if isinstance(value, dict):
            if "table_name" in value and "access_type" in value:
                kind, index = value["access_type"], value.get("key")
                step = f"{value['table_name']}: {kind}" + (f" using {index}" if index else "")
                accesses.append(Access(value["table_name"], index, kind == "ALL", step))
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(plan)
    return accesses


def accesses_of(engine, plan):
    """The accesses of a probe's plan: engine is the exercise's runtime."""
    if engine == "postgresql":
        return postgresql_accesses(plan)
    if engine == "mysql":
        return mysql_accesses(plan)
    return sqlite_accesses(row[-1] for row in plan)


def describe(accesses):
    """The plan's steps, shortly, for a check's detail."""
    return "; ".join(access.step for access in accesses) or "no table is read"
