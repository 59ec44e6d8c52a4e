"""Run the production stack in the foreground: nginx, granian (HTTP) and Daphne (WebSockets).

    python deploy/stack.py --port 8080

nginx listens on --host:--port, serves /static/ from STATIC_ROOT (run collectstatic
first), sends /ws/ to Daphne and everything else to granian (WSGI), both on loopback ports of
their own. Settings come from the environment as for any other command
(DJANGO_SETTINGS_MODULE defaults to config.settings.production; TRUSTED_PROXIES defaults
to 127.0.0.1, the proxy this starts). nginx writes its pid file, temporary files and
rendered configuration under --run-dir (a fresh temporary directory by default), so it
needs no root. nginx starts once granian and Daphne answer, and "Serving the glossary at"
is printed once nginx does. Ctrl-C or SIGTERM stops all three; if one of them exits, so
do the others.
"""

import argparse
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TEMPLATE = ROOT / "deploy" / "nginx.conf.template"
sys.path.insert(0, str(ROOT))  # the settings, when run as deploy/stack.py


def free_port(host):
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def all_running(processes):
    return all(process.poll() is None for process in processes.values())


def wait_for(addresses, processes, stopping, within=60):
    """Until each (host, port) accepts connections, while every process runs."""
    deadline = time.monotonic() + within
    for host, port in addresses:
        while not stopping():
            if not all_running(processes):
                return  # the main loop reports which one exited
            try:
                socket.create_connection((host, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit(f"Nothing answered on {host}:{port} within {within} s.")
                time.sleep(0.1)


def static_root():
    """Where collectstatic wrote, as the settings say."""
    import django
    from django.conf import settings

    django.setup()
    return Path(settings.STATIC_ROOT)


def nginx_conf(run_dir, listen, http_port, websocket_port, static):
    return Template(TEMPLATE.read_text()).safe_substitute(
        RUN_DIR=run_dir,
        LISTEN=listen,
        HTTP_UPSTREAM=f"127.0.0.1:{http_port}",
        WEBSOCKET_UPSTREAM=f"127.0.0.1:{websocket_port}",
        STATIC_ROOT=static,
    )


def commands(args, run_dir, http_port, websocket_port):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    directives = "daemon off;"
    if os.geteuid() == 0:
        # Started by root, nginx's workers would become "nobody", who may not read
        # STATIC_ROOT; they run as the starting user, as they do for anyone else.
        directives += f" user {pwd.getpwuid(os.geteuid()).pw_name};"
    return {
        "granian": [
            str(BIN / "granian"), "--interface", "wsgi", "--no-ws",
            "--host", "127.0.0.1", "--port", str(http_port),
            "--workers", str(args.workers),
            # Threads running Django in each worker process (connections are Rust's).
            "--blocking-threads", str(args.threads),
            "--respawn-failed-workers",
            "config.wsgi:application",
        ],
        "daphne": [
            str(BIN / "daphne"),
            "-b", "127.0.0.1",
            "-p", str(websocket_port),
            "--websocket_timeout", "600",
            "--websocket_connect_timeout", "10",
            "config.asgi:application",
        ],
        "nginx": [
            nginx, "-p", str(run_dir), "-c", str(run_dir / "nginx.conf"), "-g", directives,
        ],
    }  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="granian processes (default: one per core)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="running Django, per granian process"
    )
    parser.add_argument("--run-dir", type=Path, help="nginx's files (default: a temporary one)")
    parser.add_argument("--http-port", type=int, help="granian's loopback port (default: free)")
    parser.add_argument("--websocket-port", type=int, help="Daphne's (default: free)")
    args = parser.parse_args()  # fmt: skip

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    os.environ.setdefault("TRUSTED_PROXIES", "127.0.0.1")
    static = static_root()
    if not static.is_dir():
        sys.exit(f"{static} does not exist: run `manage.py collectstatic` first.")

    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="glossary-stack-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    http_port = args.http_port or free_port("127.0.0.1")
    websocket_port = args.websocket_port or free_port("127.0.0.1")
    listen = f"[{args.host}]:{args.port}" if ":" in args.host else f"{args.host}:{args.port}"
    (run_dir / "nginx.conf").write_text(
        nginx_conf(run_dir, listen, http_port, websocket_port, static)
    )

    processes = {}
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        upstreams = [("127.0.0.1", http_port), ("127.0.0.1", websocket_port)]
        for name, argv in commands(args, run_dir, http_port, websocket_port).items():
            if name == "nginx":  # last, once what it proxies to answers: no 502 at start
                wait_for(upstreams, processes, lambda: stopping)
            if stopping or not all_running(processes):
                break
            processes[name] = subprocess.Popen(argv, cwd=ROOT)
        else:
            wait_for([(args.host, args.port)], processes, lambda: stopping)
            if not stopping and all_running(processes):
                print(f"Serving the glossary at http://{listen}/ (Ctrl-C to stop)", flush=True)
        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    print(f"{name} exited ({process.returncode}); stopping.", file=sys.stderr)
                    stopping = True
            if not stopping:
                time.sleep(0.2)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if not args.run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
