"""A warm Jupyter kernel answering print(1): the yardstick of bench/runs.py's first output.

Runs under .bench-venv's Python (requirements/bench.txt; `make bench` builds it). It
starts an ipykernel on Unix sockets, lets it answer once, then for each line "go" on stdin sends an
execute request for print(1) and writes the seconds until the first stream message on
the kernel's iopub channel, then waits for the kernel to be idle again.
"""

import sys
import tempfile
import time
from pathlib import Path

from jupyter_client.manager import KernelManager

TIMEOUT = 30


def first_stream_seconds(client):
    started = time.perf_counter()
    message_id = client.execute("print(1)")
    first = None
    while True:
        message = client.get_iopub_msg(timeout=TIMEOUT)
        if message["parent_header"].get("msg_id") != message_id:
            continue
        if message["msg_type"] == "stream" and first is None:
            first = time.perf_counter() - started
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            return first


def main():
    # Unix sockets, as the runner's pipes are local too (and no unencrypted TCP port).
    sockets = tempfile.mkdtemp(prefix="bench-kernel-")
    manager = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(sockets) / "k"))
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=TIMEOUT)
    try:
        first_stream_seconds(client)
        print("ready", flush=True)
        for line in sys.stdin:
            if line.strip() == "go":
                print(first_stream_seconds(client), flush=True)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


if __name__ == "__main__":
    main()
