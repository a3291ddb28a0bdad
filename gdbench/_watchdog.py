"""Reaps an embedded Ray instance whose driver was killed
(`python -m gdbench._watchdog DRIVER_PID SESSION_DIR [RAY_PID ...]`).

A driver stops its embedded Ray itself, except when it is killed outright (SIGKILL, OOM): the
raylet and the GCS then go with it, but Ray's agents (ray::DashboardAgent, ray::RuntimeEnvAgent)
stay behind as orphans. The scheduler starts this watchdog, in a session of its own, right after
`ray.init` of an embedded instance: it waits for the driver's PID to end, then kills every process
that still holds a file open in that instance's session folder — which only that instance's
processes do — and exits. When the instance stops normally first (its raylet and GCS, RAY_PID,
are gone while the driver lives on: a process that starts several sweeps), it just exits. It
never touches another instance (no `ray stop`)."""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def holders(folder: str) -> list[int]:
    """PIDs (other than this one) with a file descriptor open under `folder`."""
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            if any(os.readlink(fd).startswith(folder) for fd in (p / "fd").iterdir()):
                found.append(int(p.name))
        except OSError:  # gone, or not ours to inspect
            pass
    return found


def main(pid: int, folder: str, ray_pids=(), poll_s: float = 0.5) -> None:
    while alive(pid):
        if ray_pids and not any(alive(p) for p in ray_pids):
            return  # stopped normally: nothing to reap
        time.sleep(poll_s)
    deadline = time.time() + 10  # Ray's own processes wind down first; what is left is orphaned
    while time.time() < deadline:
        left = holders(folder)
        if not left:
            return
        time.sleep(1.0)
    for p in holders(folder):
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2].rstrip("/") + "/", [int(p) for p in sys.argv[3:]])
