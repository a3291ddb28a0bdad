"""The compute process of a small sweep, started before the driver's own imports.

A small sweep on the local executor used to pay its start-up in sequence: the driver's imports
(Hydra, pandas, pyarrow), composition and planning, then torch's import where the compute runs,
then the compute. `gdbench` now forks a process at its very first line (`start`), which imports
the engine (torch) while the driver does the rest; the local executor then hands it the plan's
tasks (`take`) and reads the results back over a pipe. The wall time becomes the larger of the two
start-ups plus the compute (README's speed section). With several workers, the process forks
them itself, after torch is loaded, as the local executor did before.

Any path that does not use it — Ray, `plan=true`, a validation error, large datasets (they would
cross the pipe; the old path forks after loading them, sharing their memory) — ends it
(`discard`), so it never runs next to Ray's workers. It and its workers die with the driver
(PR_SET_PDEATHSIG): a killed or exiting `gdbench` leaves none behind. Linux only; elsewhere
`start` does nothing and the local executor imports torch itself.
"""
from __future__ import annotations

import os
import signal
import sys

LARGEST_DATASETS = 64 * 2**20  # bytes of the plan's datasets that go through the pipe; beyond, the old path

_process = None  # the driver's handle on the started process (None: not started, taken or ended)


class Preloaded:
    """The driver's end: the child's pid and the pipe to it."""

    def __init__(self, pid: int, conn):
        self.pid, self.conn = pid, conn

    def run(self, plan, *, workers: int, device: str, compile: bool):
        """Yield first the seconds spent waiting for the process to be ready (its imports), then
        (task index, results) as it finishes the plan's tasks."""
        import time
        start = time.perf_counter()
        self.conn.send((plan.tasks, plan.datasets, workers, device, compile))
        try:
            self.conn.recv()  # "ready"
        except EOFError:
            raise RuntimeError(f"the compute process (pid {self.pid}) could not start; its traceback is above") from None
        yield time.perf_counter() - start
        while True:
            try:
                message = self.conn.recv()
            except EOFError:
                raise RuntimeError(f"the compute process (pid {self.pid}) ended before finishing the plan; "
                                   "its traceback is above") from None
            if message is None:
                return
            yield message

    def end(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        self.conn.close()


def start() -> None:
    """Fork the compute process (once per command; only where the parent's death can kill it)."""
    global _process
    if _process is not None or not sys.platform.startswith("linux") or os.environ.get("GDBENCH_NO_PRELOAD"):
        return
    from multiprocessing.connection import Pipe
    mine, theirs = Pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        mine.close()
        _child(theirs)
    theirs.close()
    _process = Preloaded(pid, mine)


def take(datasets: dict):
    """The started process for the local executor, or None (not started, or datasets too large to
    send, in which case it is ended)."""
    global _process
    proc, _process = _process, None
    if proc is not None and sum(x.nbytes + y.nbytes for x, y in datasets.values()) > LARGEST_DATASETS:
        proc.end()
        return None
    return proc


def discard() -> None:
    """End the started process, if any: this command does not compute here."""
    global _process
    if _process is not None:
        _process.end()
        _process = None


def die_with_parent() -> None:
    """This process gets SIGKILL when its parent dies (Linux; elsewhere nothing)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _child(conn) -> None:
    """Import the engine, run the one plan the driver sends, stream the results back, exit."""
    code = 0
    try:
        die_with_parent()
        if os.getppid() == 1:  # the driver died before prctl took effect
            os._exit(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle: it ends us
        from gdbench import engine, worker  # noqa: F401  # the import this process exists for
        try:
            tasks, datasets, workers, device, compile = conn.recv()
        except EOFError:  # the driver went another way (Ray, plan=true, an error)
            os._exit(0)
        conn.send("ready")
        for message in _results(tasks, datasets, workers, device, compile):
            conn.send(message)
        conn.send(None)
    except BaseException:  # the driver sees the pipe close and reports it
        import traceback
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _results(tasks, datasets, workers, device, compile):
    from gdbench import executors, worker
    if workers == 1 or len(tasks) <= 1:
        for i, task in enumerate(tasks):
            yield i, worker.run_task(task, datasets, device=device, compile=compile)
        return
    yield from executors.forked_results(tasks, datasets, workers, device, compile, die_with_parent)
