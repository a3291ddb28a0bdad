"""The compute process of a small sweep, started before the driver's own imports.

A small sweep on the local executor used to pay its start-up in sequence: the driver's imports
(Hydra, pandas, pyarrow), composition and planning, then torch's import where the compute runs,
then the compute. `gdbench` now forks a process at its very first line (`start`), which imports
the engine (torch) while the driver does the rest; the local executor then hands it the plan's
tasks (`take`) and reads the results back over a pipe. The wall time becomes the larger of the two
start-ups plus the compute (README's speed section). With several workers, the process forks
them itself, after torch is loaded, as the local executor did before.

It is not started for commands that will not compute (`--help`, `--cfg`, … and `plan=true`) or
on a single core (nothing to overlap). A sweep that goes to Ray or has nothing to run ends it
(`discard`) before going on; so does a local sweep whose process no longer matches the one it
was forked from (an environment variable or working directory that Hydra's `hydra.job.env_set`
or `hydra.job.chdir` changed since), or whose datasets are too large to send through the pipe:
those run as before, in the driver or in workers it forks after loading the data. It and its
workers die with the driver (PR_SET_PDEATHSIG), also when the driver is killed. Linux only;
elsewhere nothing is started. `GDBENCH_NO_PRELOAD=1` turns it off.
"""
from __future__ import annotations

import os
import signal
import sys
import time

LARGEST_DATASETS = 64 * 2**20  # bytes of the plan's datasets that go through the pipe; beyond, the old path

_process = None  # the driver's handle on the started process (None: not started, taken or ended)


class Preloaded:
    """The driver's end: the child's pid, the pipe to it, and the process state it was forked in."""

    def __init__(self, pid: int, conn):
        self.pid, self.conn = pid, conn
        self.environ, self.cwd = dict(os.environ), os.getcwd()

    def send_plan(self, plan, *, workers: int, device: str, compile: bool) -> None:
        """Send the plan, after this process's import path (which the user's data function may
        have extended)."""
        try:
            self.conn.send(list(sys.path))
            self.conn.send((plan.tasks, plan.datasets, workers, device, compile))
        except OSError:
            raise RuntimeError(f"the compute process {self._ended()}") from None

    def wait_ready(self) -> float:
        """The seconds spent waiting for the child's imports to finish."""
        start = time.perf_counter()
        try:
            self.conn.recv()  # "ready"
        except (EOFError, OSError):
            raise RuntimeError(f"the compute process {self._ended()}") from None
        return time.perf_counter() - start

    def results(self):
        """(task index, results) as the child finishes the plan's tasks."""
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                raise RuntimeError(f"the compute process {self._ended()} before finishing the plan") from None
            if message is None:
                return
            yield message

    def _ended(self) -> str:
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            return f"(pid {self.pid}) ended"
        if os.WIFSIGNALED(status):
            sig = signal.Signals(os.WTERMSIG(status)).name
            return f"(pid {self.pid}) was killed by {sig}" + (" (out of memory?)" if sig == "SIGKILL" else "")
        return f"(pid {self.pid}) exited with code {os.WEXITSTATUS(status)}; its traceback is above"

    def end(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        self.conn.close()


def start(argv: list[str]) -> None:
    """Fork the compute process, unless this command will not compute or cannot profit from it."""
    global _process
    if (_process is not None or not sys.platform.startswith("linux") or os.environ.get("GDBENCH_NO_PRELOAD")
            or len(os.sched_getaffinity(0)) < 2
            or any(a.startswith("-") and a not in ("-m", "--multirun") or a == "plan=true" for a in argv)):
        return
    from multiprocessing.connection import Pipe
    mine, theirs = Pipe()
    driver = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        mine.close()
        _child(theirs, driver)
    theirs.close()
    _process = Preloaded(pid, mine)


def take(datasets: dict):
    """The started process for the local executor, or None: not started, or no longer fit (it is
    then ended)."""
    global _process
    proc, _process = _process, None
    if proc is not None and (sum(x.nbytes + y.nbytes for x, y in datasets.values()) > LARGEST_DATASETS
                             or dict(os.environ) != proc.environ or os.getcwd() != proc.cwd):
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


def _child(conn, driver: int) -> None:
    """Import the engine, run the one plan the driver sends, stream the results back, exit."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle: it ends us
        die_with_parent()
        if os.getppid() != driver:  # the driver died before prctl took effect
            os._exit(0)
        from gdbench import engine, worker  # noqa: F401  # the import this process exists for
        try:
            sys.path[:] = conn.recv()  # before the plan: unpickling it may import the user's modules
            tasks, datasets, workers, device, compile = conn.recv()
        except EOFError:  # the driver went another way (Ray, nothing to run, an error)
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
    from gdbench import worker
    if workers == 1 or len(tasks) <= 1:
        for i, task in enumerate(tasks):
            yield i, worker.run_task(task, datasets, device=device, compile=compile)
        return
    yield from worker.forked_results(tasks, datasets, workers, device, compile, die_with_parent)
