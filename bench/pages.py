"""Requests per second of the home, letter and topic pages under Daphne, next to a bare view.

Builds a scratch SQLite database (1,000 topics, 10,000 links by default) in a temporary
directory, starts Daphne on a free port with bench.settings, and drives each page with a
few keep-alive connections from this process. Prints one table; the goal is every page at
0.8x the bare view's requests per second or better.

    .venv/bin/python bench/pages.py [--seconds 10] [--concurrency 8] [--rounds 1]
"""

import argparse
import asyncio
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
GOAL = 0.8

# One name per letter, so every letter page has about the same number of topics.
WORDS = [
    "Aurora", "Bigtable", "Cassandra", "DuckDB", "Elasticsearch", "FoundationDB", "Greenplum",
    "HBase", "InfluxDB", "JanusGraph", "KeyDB", "LevelDB", "MongoDB", "Neo4j", "OrientDB",
    "PostgreSQL", "QuestDB", "Redis", "SQLite", "TimescaleDB", "UnQLite", "Vitess",
    "WiredTiger", "XTDB", "YugabyteDB", "ZODB",
]  # fmt: skip
DOMAINS = ["www.example.com", "docs.example.org", "github.com", "pypi.org", "blog.example.net"]
SUMMARY = """\
**{name}** is a database that Python developers reach for when the data outgrows a file.

- Drivers: `{slug}-client` (sync) and `a{slug}` (async)
- Django: through a third-party backend, see [the docs](https://docs.example.org/{slug}/)

It keeps rows in pages of fixed size and writes changes to a log before applying them.
"""
SNIPPETS = [
    (
        "python",
        "python",
        "",
        'import sqlite3\n\nwith sqlite3.connect(":memory:") as db:\n'
        '    db.execute("create table t (x)")\n'
        '    db.executemany("insert into t values (?)", [(1,), (2,)])\n'
        '    print(db.execute("select sum(x) from t").fetchone())\n',
    ),
    (
        "sql",
        "",
        "Needs a running server.",
        "select name, count(*)\n  from topic\n  join link on link.topic_id = topic.id\n"
        " group by name\n order by 2 desc\n limit 10;\n",
    ),
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="measured time per page")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--rounds", type=int, default=1, help="passes over all pages, summed")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds per page")
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--links-per-topic", type=int, default=10)
    parser.add_argument("--snippets-per-topic", type=int, default=2)
    parser.add_argument(
        "--show-queries", action="store_true", help="print each page's SQL with its time"
    )
    parser.add_argument(
        "--no-page-cache", action="store_true", help="render every page (no readers' cache)"
    )
    return parser.parse_args()


def setup_django(env):
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def build_data(topic_total, links_per_topic, snippets_per_topic):
    """Bulk-create the content, filling in the derived fields save() would have set."""
    from django.core.management import call_command
    from django.utils.text import slugify

    from glossary.models import Link, LinkGroup, Snippet, Topic, letter_for, normalize_url
    from glossary.rendering import highlight_code, render_markdown

    call_command("migrate", verbosity=0, interactive=False)

    topics = []
    for i in range(topic_total):
        name = f"{WORDS[i % len(WORDS)]} {i:04d}"
        slug = slugify(name)
        summary = SUMMARY.format(name=name, slug=slug)
        topics.append(
            Topic(
                name=name,
                slug=slug,
                letter=letter_for(name),
                summary=summary,
                summary_html=render_markdown(summary),
                aliases=f"{name.split()[0][:3]} {i}" if i % 3 == 0 else "",
            )
        )
    Topic.objects.bulk_create(topics, batch_size=500)
    topics = list(Topic.objects.order_by("pk"))

    # Every fifth topic has two children; each topic sees two others, both ways.
    for i, topic in enumerate(topics):
        if i % 5 in (1, 2):
            topic.parent = topics[i - i % 5]
    Topic.objects.bulk_update(topics, ["parent"], batch_size=500)
    pairs = set()
    for i, topic in enumerate(topics):
        for offset in (1, 7):
            other = topics[(i + offset) % len(topics)]
            if other.pk != topic.pk:
                pairs |= {(topic.pk, other.pk), (other.pk, topic.pk)}
    SeeAlso = Topic.see_also.through
    SeeAlso.objects.bulk_create(
        [SeeAlso(from_topic_id=a, to_topic_id=b) for a, b in sorted(pairs)], batch_size=1000
    )

    groups = list(LinkGroup)
    links = []
    for topic in topics:
        for position in range(links_per_topic):
            group = groups[position % len(groups)]
            url = f"https://{DOMAINS[position % len(DOMAINS)]}/{topic.slug}/{position}/"
            normalized = normalize_url(url)
            links.append(
                Link(
                    topic=topic,
                    url=url,
                    normalized_url=normalized,
                    domain=urlsplit(normalized).hostname.removeprefix("www."),
                    title=f"{topic.name}: {group.label.lower()} {position}",
                    description=f"What {group.label.lower()} say about {topic.name}, briefly.",
                    group=group,
                    position=position,
                )
            )
    Link.objects.bulk_create(links, batch_size=1000)

    # Highlighting is the slow part of a snippet and the code repeats, so do it once each.
    highlighted = {code: highlight_code(code, language) for language, _, _, code in SNIPPETS}
    description = "Counts rows the way the topic page describes."
    description_html = render_markdown(description)
    snippets = []
    for topic in topics:
        for position in range(snippets_per_topic):
            language, runtime, reason, code = SNIPPETS[position % len(SNIPPETS)]
            snippets.append(
                Snippet(
                    topic=topic,
                    title=f"{topic.name} example {position}",
                    slug=f"{topic.slug}-{position}",
                    description=description,
                    description_html=description_html,
                    code=code,
                    highlighted=highlighted[code],
                    language=language,
                    runtime=runtime,
                    display_only_reason=reason,
                    position=position,
                )
            )
    Snippet.objects.bulk_create(snippets, batch_size=1000)
    return len(topics), len(links), len(snippets)


def pick_pages():
    """(label, path) for the bare view and the three public pages."""
    from django.db.models import Count
    from django.urls import reverse

    from glossary.models import Topic

    counts = Topic.objects.published().letter_counts()
    letter = "M" if counts.get("M") else max(counts, key=counts.get)
    # A parent topic: children, see-also entries and a full set of links to show.
    topic = (
        Topic.objects.published()
        .annotate(child_count=Count("children", distinct=True))
        .filter(child_count__gt=0)
        .order_by("pk")
        .first()
    )
    return [
        ("bare", "/bare/"),
        ("home", reverse("glossary:home")),
        (f"letter {letter}", reverse("glossary:letter-detail", args=[letter])),
        ("topic", reverse("glossary:topic-detail", args=[topic.slug])),
    ]


@dataclass
class Profile:
    status: int
    queries: list = field(default_factory=list)
    median_ms: float = 0.0


def profile_in_process(pages, repeat=30):
    """Queries and median time per page through Django's test client, with no server."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(raise_request_exception=False, SERVER_NAME=HOST)
    profiles = {}
    for _, path in pages:
        with CaptureQueriesContext(connection) as captured:
            status = client.get(path).status_code
        profile = Profile(status, captured.captured_queries)
        if status == 200:
            timings = []
            for _ in range(repeat):
                start = time.perf_counter()
                client.get(path)
                timings.append(time.perf_counter() - start)
            profile.median_ms = statistics.median(timings) * 1000
        profiles[path] = profile
    connection.close()
    return profiles


def free_port():
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def spawn(argv, env, log_path):
    """Start a server process in its own session, its output going to log_path."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def start_daphne(port, env, log_path):
    argv = [sys.executable, "-m", "daphne", "-b", HOST, "-p", str(port)]
    return spawn([*argv, "config.asgi:application"], env, log_path)


def stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def request_bytes(path, port):
    return (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        "User-Agent: bench/pages.py\r\nAccept: text/html\r\n\r\n"
    ).encode()


async def fetch(reader, writer, request):
    """Send one request on a kept-alive connection; (status, server closed the connection)."""
    writer.write(request)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split(maxsplit=2)[1])
    length, chunked, close = None, False, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            close = value == b"close"
    if chunked:
        while size := int((await reader.readline()).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readline()
    elif length is not None:
        await reader.readexactly(length)
    else:
        await reader.read()
        close = True
    return status, close


@dataclass
class Result:
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    latencies: list = field(default_factory=list)

    @property
    def rps(self):
        return self.ok / self.seconds if self.seconds else 0.0

    def cpu_ms_per_request(self, seconds):
        done = self.ok + self.errors
        return seconds / done * 1000 if done and seconds == seconds else float("nan")

    def percentile_ms(self, fraction):
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


async def connection_loop(port, request, deadline, result):
    reader = writer = None
    while time.perf_counter() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(HOST, port)
            start = time.perf_counter()
            status, close = await fetch(reader, writer, request)
        except (OSError, ValueError, asyncio.IncompleteReadError):
            result.errors += 1
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.01)
            continue
        result.latencies.append(time.perf_counter() - start)
        if status == 200:
            result.ok += 1
        else:
            result.errors += 1
        if close:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


def cpu_seconds(pid):
    """User plus system CPU time of a process and its threads (Linux), else NaN."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(server_pid, port, path, seconds, concurrency, result):
    request = request_bytes(path, port)
    server_cpu, client_cpu = cpu_seconds(server_pid), time.process_time()
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(
        *(connection_loop(port, request, deadline, result) for _ in range(concurrency))
    )
    result.seconds += time.perf_counter() - start
    result.server_cpu += cpu_seconds(server_pid) - server_cpu
    result.client_cpu += time.process_time() - client_cpu


class ServerError(Exception):
    pass


async def wait_until_serving(process, port, log_path, timeout=30):
    request = request_bytes("/bare/", port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
            try:
                status, _ = await fetch(reader, writer, request)
            finally:
                writer.close()
            if status == 200:
                return
        except (OSError, ValueError, asyncio.IncompleteReadError):
            pass
        await asyncio.sleep(0.2)
    problem = "exited" if process.poll() is not None else f"did not serve /bare/ in {timeout} s"
    raise ServerError(f"Daphne {problem}; its log ends:\n{tail(log_path)}")


async def status_of(port, path):
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        status, _ = await fetch(reader, writer, request_bytes(path, port))
    finally:
        writer.close()
    return status


def tail(path, lines=30):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


async def measure(process, port, pages, args, log_path):
    await wait_until_serving(process, port, log_path)
    statuses = {path: await status_of(port, path) for _, path in pages}
    live = [path for _, path in pages if statuses[path] == 200]
    for path in live:
        await drive(process.pid, port, path, args.warmup, args.concurrency, Result())
    results = {path: Result() for path in live}
    # Rounds interleave the pages, so drift in the machine's load touches all of them.
    for _ in range(args.rounds):
        for path in live:
            await drive(process.pid, port, path, args.seconds, args.concurrency, results[path])
    return statuses, results


def print_header(args, sizes, port):
    import daphne
    import django

    topics, links, snippets = sizes
    print(
        f"Pages under Daphne {daphne.__version__} (Django {django.get_version()}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs), SQLite scratch database"
    )
    print(f"Data: {topics:,} topics, {links:,} links, {snippets:,} snippets")
    cache = "off: every page rendered" if args.no_page_cache else "on, as readers get it"
    print(f"Readers' page cache: {cache}")
    print(
        f"Load: {args.concurrency} keep-alive connections, {args.seconds:g} s per page "
        f"x {args.rounds} round(s) after {args.warmup:g} s warm-up, server on {HOST}:{port}"
    )
    print(
        "Note: the load generator (one asyncio loop in this process) shares the CPUs with "
        "Daphne,\nso absolute req/s understate a dedicated server; compare the pages with "
        "the bare view."
    )
    print(
        "in-proc ms: median time through Django's test client, no server. server CPU: "
        "Daphne's CPU time\nper request. client CPU: this process's share of one CPU while "
        "it drove the page.\n"
    )


COLUMNS = [
    ("page", 8),
    ("path", 20),
    ("queries", 7),
    ("in-proc ms", 10),
    ("requests", 8),
    ("errors", 6),
    ("req/s", 6),
    ("p50 ms", 7),
    ("p99 ms", 7),
    ("server CPU", 10),
    ("client CPU", 10),
    ("vs bare", 7),
]


def print_table(pages, profiles, statuses, results):
    row_format = "  ".join(
        f"{{:<{width}}}" if i < 2 else f"{{:>{width}}}" for i, (_, width) in enumerate(COLUMNS)
    )
    print(row_format.format(*(name for name, _ in COLUMNS)))
    print(row_format.format(*("-" * width for _, width in COLUMNS)))
    bare = results.get("/bare/")
    verdicts = []
    for label, path in pages:
        profile = profiles[path]
        result = results.get(path)
        if result is None:
            print(row_format.format(label, path, len(profile.queries), *["-"] * 9))
            verdicts.append(f"{label} not measured (HTTP {statuses[path]})")
            continue
        ratio = result.rps / bare.rps if bare and bare.rps else float("nan")
        print(
            row_format.format(
                label,
                path,
                len(profile.queries),
                f"{profile.median_ms:.2f}",
                result.ok + result.errors,
                result.errors,
                f"{result.rps:.0f}",
                f"{result.percentile_ms(0.50):.1f}",
                f"{result.percentile_ms(0.99):.1f}",
                f"{result.cpu_ms_per_request(result.server_cpu):.2f} ms",
                f"{result.client_cpu / result.seconds:.0%}",
                f"{ratio:.2f}",
            )
        )
        if path != "/bare/":
            verdicts.append(f"{label} {ratio:.2f}x {'ok' if ratio >= GOAL else 'BELOW'}")
    print(f"\nGoal: each page >= {GOAL:.2f}x bare req/s. " + "; ".join(verdicts))


def print_queries(pages, profiles):
    for label, path in pages:
        queries = profiles[path].queries
        print(f"\n{label} {path}: {len(queries)} queries")
        for query in queries:
            print(f"  {float(query['time']) * 1000:7.2f} ms  {query['sql'][:160]}")


def main():
    args = parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": f"sqlite:///{scratch / 'bench.sqlite3'}",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "BENCH_PAGE_CACHE": "off" if args.no_page_cache else "on",
    }
    log_path = scratch / "daphne.log"
    process = None
    try:
        setup_django(env)
        print("Building the scratch database…", file=sys.stderr, flush=True)
        sizes = build_data(args.topics, args.links_per_topic, args.snippets_per_topic)
        pages = pick_pages()
        profiles = profile_in_process(pages)
        port = free_port()
        process = start_daphne(port, env, log_path)
        print("Measuring…", file=sys.stderr, flush=True)
        try:
            statuses, results = asyncio.run(measure(process, port, pages, args, log_path))
        except ServerError as error:
            print(error, file=sys.stderr)
            return 1
        print_header(args, sizes, port)
        print_table(pages, profiles, statuses, results)
        if args.show_queries:
            print_queries(pages, profiles)
        failed = len(results) < len(pages) or any(r.errors for r in results.values())
        if failed:
            print(f"\nSome pages failed; the server log ends:\n{tail(log_path)}")
        return 1 if failed else 0
    finally:
        if process is not None:
            stop(process)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
