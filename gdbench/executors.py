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

import os
import time

from gdbench import cells, worker

# The fixed cost `auto` weighs a sweep's compute against: Ray's start plus its workers' first
# torch import, on a small machine. A planning constant, not a measurement: benchmarks/ray_start.py
# and benchmarks/sweep.py print what they cost on the machine at hand (README's speed section).
RAY_START_S = 7.0
LOCAL_START_S = 1.5  # likewise for the local executor: torch's import in the compute process
EXECUTORS = ("auto", "local", "ray")


def choose(settings: dict, plan: cells.Plan, slots: int) -> tuple[str, str]:
    """(executor name, why) for settings["executor"] ∈ auto | local | ray."""
    wanted = settings.get("executor") or "auto"  # validated by sweep.validate_settings
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


def require_local_gpu(device: str) -> None:
    """A ValueError before anything is written when this machine cannot run device=cuda[:N]."""
    import torch
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    if not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: this machine has no usable CUDA GPU (torch {torch.__version__}, "
                         f"{'CUDA ' + torch.version.cuda if torch.version.cuda else 'a CPU-only build'}); "
                         "use device=cpu, or executor=ray with cluster.address of a GPU cluster")
    if index >= torch.cuda.device_count():
        raise ValueError(f"device={device!r}: this machine has {torch.cuda.device_count()} GPU(s)")


def estimated_wall_s(plan: cells.Plan, slots: int) -> float:
    """The plan's compute spread over `slots` workers: the larger of the even share and the
    longest task (a task runs on one worker)."""
    costs = [t.cost_s for t in plan.tasks]
    return max(sum(costs) / max(1, slots), max(costs, default=0.0))


class LocalExecutor:
    """Tasks on this machine, without Ray, on `workers` cores: in the compute process that the
    `gdbench` command started at its first line (gdbench.preload), which has loaded torch while
    this process planned; else in this process (one worker) or in processes forked from it."""

    name = "local"

    def __init__(self, *, workers: int, device: str = "cpu", compile: bool = False):
        if str(device).startswith("cuda"):
            workers = 1  # CUDA does not survive a fork: one process drives the GPU
        self.workers, self.device, self.compile = max(1, int(workers)), device, compile
        self._preloaded = self._forked = None
        self.start_s = 0.0  # how long the plan waited for the preloaded process to finish its imports
        self.preloaded_pid = None  # the preloaded process, once it ran the plan

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._preloaded is not None:  # an interrupt or error: stop it (its workers die with it)
            self._preloaded.end()
            self._preloaded = None
        if self._forked is not None:  # likewise the workers forked here (closing terminates them)
            self._forked.close()
            self._forked = None
        return False

    def map(self, plan: cells.Plan, while_waiting=None):
        """(task, results) as tasks finish. while_waiting: called once while the preloaded
        process finishes its imports, for the caller's own start-up (the report's imports)."""
        if not plan.tasks:  # a finished sweep run again
            return
        workers = min(self.workers, len(plan.tasks))
        from gdbench import preload
        self._preloaded = preload.take(plan.datasets)
        if self._preloaded is not None:
            self.preloaded_pid = self._preloaded.pid
            self._preloaded.send_plan(plan, workers=workers, device=self.device, compile=self.compile)
            if while_waiting is not None:
                while_waiting()
            self.start_s = self._preloaded.wait_ready()
            for i, out in self._preloaded.results():
                yield plan.tasks[i], out
            self._preloaded.end()
            self._preloaded = None
        elif workers == 1:
            for task in plan.tasks:
                yield task, worker.run_task(task, plan.datasets, device=self.device, compile=self.compile)
        else:
            self._forked = worker.forked_results(plan.tasks, plan.datasets, workers, self.device, self.compile,
                                          preload.die_with_parent)
            for i, out in self._forked:
                yield plan.tasks[i], out
            self._forked = None


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
        _background.append(scheduler.wait_shutdown)
        return False

    def map(self, plan: cells.Plan, while_waiting=None):
        from gdbench import scheduler  # (nothing waits on a start-up here: while_waiting is not called)
        s = self.settings
        yield from scheduler.results(plan, self.resources, num_cpus=s["resources"]["num_cpus"],
                                     num_gpus=self.num_gpus, device=s["device"], compile=bool(s.get("compile")))


_background: list = []  # joins of what an executor left running after its exit (Ray's stop)


def wait_background() -> None:
    """Join what the executors left running in the background (the embedded Ray's stop, which
    overlaps with writing the store and the summary): before the report forks its figure workers,
    and before the command exits."""
    while _background:
        _background.pop()()


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
