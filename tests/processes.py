"""Finding a run's processes on the host, for tests that check none survive."""

import os
import time


def processes_with(marker):
    """Host pids whose command line contains marker."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if marker.encode() in cmdline.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def until_gone(marker, within=1.0):
    deadline = time.monotonic() + within
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.02)
    return processes_with(marker)


def exec_with_marker(marker, program):
    """A snippet that re-executes Python on program with marker in its command line."""
    return (
        "import os, sys\n"
        f"os.execv(sys.executable, [sys.executable, '-u', '-c', {program!r}, {marker!r}])\n"
    )
