"""Where a plan's tasks run: one small interface, two executors (docs/design.md §3).

    with executor:                       # starts what it needs (nothing, or Ray)
        for task, results in executor.map(plan):
            ...                          # one result dict per chunk (worker.run_task's format)

`LocalExecutor` runs tasks on this machine without Ray: in this process for one worker, else in
processes forked from it (one per worker, each with one torch thread), which inherit the loaded
modules and the datasets, so nothing is imported or shipped again. `RayExecutor` runs them on the
embedded Ray instance or on a cluster (`gdbench.scheduler`, the only Ray import). `choose` picks
one for `executor=auto`: Ray when a cluster address is given, or when the compute would outlast
Ray's own start; this machine's processes otherwise.
"""
from __future__ import annotations

import multiprocessing
import os
import time

from gdbench import cells, worker

# Ray's start plus its workers' first torch import on a small machine, the fixed cost `auto`
# weighs a sweep's compute against (benchmarks/sweep.py prints the measured overheads).
RAY_START_S = 7.0
EXECUTORS = ("auto", "local", "ray")


class ClusterUnreachable(RuntimeError):
    """Nothing answers at cluster.address (raised by the scheduler before ray.init)."""


def choose(settings: dict, plan: cells.Plan, slots: int) -> tuple[str, str]:
    """(executor name, why) for settings["executor"] ∈ auto | local | ray."""
    wanted = settings.get("executor") or "auto"
    if wanted not in EXECUTORS:
        raise ValueError(f"executor={wanted!r}: choose auto, local or ray")
    address = (settings.get("cluster") or {}).get("address")
    wall = estimated_wall_s(plan, slots)
    if wanted == "local":
        if address:
            raise ValueError(f"executor=local with cluster.address={address}: local runs on this machine only; "
                             "drop cluster.address or use executor=ray")
        return "local", "executor=local"
    if wanted == "ray":
        return "ray", "executor=ray"
    if address:
        return "ray", f"cluster.address={address}"
    if wall < RAY_START_S:
        return "local", f"estimated compute ≈ {wall:.1f} s on {slots} worker(s) is below Ray's start (≈ {RAY_START_S:g} s)"
    return "ray", f"estimated compute ≈ {wall:.1f} s on {slots} worker(s) outlasts Ray's start (≈ {RAY_START_S:g} s)"


def estimated_wall_s(plan: cells.Plan, slots: int) -> float:
    """The plan's compute spread over `slots` workers: the larger of the even share and the
    longest task (a task runs on one worker)."""
    costs = [t.cost_s for t in plan.tasks]
    return max(sum(costs) / max(1, slots), max(costs, default=0.0))


class LocalExecutor:
    """Tasks on this machine, without Ray. `workers` processes (1 = this process)."""

    name = "local"

    def __init__(self, *, workers: int, device: str = "cpu", compile: bool = False):
        if str(device).startswith("cuda"):
            workers = 1  # CUDA does not survive a fork: one process drives the GPU
        self.workers, self.device, self.compile = max(1, int(workers)), device, compile
        self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.terminate()  # an interrupt or error: stop the children now
            self._pool.join()
            self._pool = None
        return False

    def map(self, plan: cells.Plan):
        if self.workers == 1 or len(plan.tasks) <= 1:  # (none: a finished sweep run again)
            for task in plan.tasks:
                yield task, worker.run_task(task, plan.datasets, device=self.device, compile=self.compile)
            return
        global _DATASETS
        _DATASETS = plan.datasets  # read by the forked children (copy-on-write), never pickled
        from gdbench import engine  # noqa: F401  # torch loaded once, before the fork, for every child
        ctx = multiprocessing.get_context("fork")
        self._pool = ctx.Pool(min(self.workers, len(plan.tasks)), initializer=_child_start)
        args = [(i, task, self.device, self.compile) for i, task in enumerate(plan.tasks)]
        for i, results in self._pool.imap_unordered(_child_run, args):
            yield plan.tasks[i], results
        self._pool.close()
        self._pool.join()
        self._pool = None


_DATASETS: dict = {}


def _child_start() -> None:
    import torch
    torch.set_num_threads(1)  # one core per process: the processes are the parallelism


def _child_run(args):
    i, task, device, compile = args
    return i, worker.run_task(task, _DATASETS, device=device, compile=compile)


class RayExecutor:
    """Tasks on Ray: the embedded instance (started on enter, stopped on exit in the background)
    or an existing cluster."""

    name = "ray"

    def __init__(self, settings: dict):
        self.settings = settings
        self.resources = None
        self.start_s = 0.0

    def __enter__(self):
        from gdbench import scheduler  # Ray is imported only when a sweep goes to Ray
        s, cluster, res = self.settings, self.settings["cluster"], self.settings["resources"]
        t0 = time.perf_counter()
        self.resources, self.num_gpus = scheduler.connect(
            cluster.get("address"), num_cpus=res["num_cpus"], num_gpus=res["num_gpus"], device=s["device"],
            local_num_cpus=cluster.get("num_cpus"), object_store_mb=cluster["object_store_mb"],
            ship_code=cluster.get("ship_code", False), connect_timeout_s=cluster.get("connect_timeout_s") or 30)
        self.start_s = time.perf_counter() - t0
        return self

    def __exit__(self, exc_type, exc, tb):
        from gdbench import scheduler
        scheduler.disconnect(background=exc_type is None)
        return False

    def map(self, plan: cells.Plan):
        from gdbench import scheduler
        s = self.settings
        yield from scheduler.results(plan, self.resources, num_cpus=s["resources"]["num_cpus"],
                                     num_gpus=self.num_gpus, device=s["device"], compile=bool(s.get("compile")))


def make(name: str, settings: dict, slots: int):
    if name == "local":
        return LocalExecutor(workers=slots, device=settings["device"], compile=bool(settings.get("compile")))
    return RayExecutor(settings)


def local_slots() -> int:
    """Worker processes of the local executor: this machine's usable cores."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
