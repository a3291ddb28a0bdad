"""Runs → cells → tasks (docs/design.md §3): the planning side of a sweep. No Ray, no torch here.

`plan(runs)` validates every run (instantiating its catalogue objects; nothing is scheduled before
the whole grid passes), loads each distinct dataset once, groups runs into cells (equal
`cell_key`), splits cells into chunks and packs chunks into tasks.

Task sizing rule (documented, testable): the cost of a chunk of R replicas of a cell is estimated as

    seconds ≈ (T + 1) · (OVERHEAD_S + R · model.matmul_flops(1, n, d) / FLOPS)

(OVERHEAD_S: the per-iteration interpreter cost of the engine, FLOPS: a conservative achieved
matmul rate; both constants below, set from benchmarks/engine.py on a small CPU machine). A cell is split into chunks of at
most `max_replicas` replicas and at most ≈ 4·task_seconds each (consecutive runs, so neighbouring
step sizes share a batch); consecutive chunks are then packed
into one task until it reaches ≈ task_seconds, so tiny cells share a task and big ones are split.
`min_tasks` (the number of worker slots, when known) lowers that target to total/min_tasks and
splits each cell into at least its share of the slots, so a grid smaller than
min_tasks · task_seconds still keeps every worker busy.

What a worker does with a task (run its chunks with the engine) is `gdbench.worker.run_task`.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from gdbench import grid

OVERHEAD_S = 6e-4  # seconds per engine iteration independent of the batch size
FLOPS = 2e10  # achieved float64 matmul FLOP/s per task (one core, conservative)


@dataclass
class Chunk:
    """Replicas of one cell executed as one batched tensor program."""

    cell_key: str
    data_key: str
    runs: list  # grid.Run
    objects: tuple  # (model, loss, algorithm) instances of the cell
    names: list  # per run: the short names and sizes that open its row of the runs table
    cost_s: float
    direction: object = None  # reference direction (d,) for direction_error, or None
    flat_cache: dict | None = field(default=None, repr=False, compare=False)  # grid.Run.columns' cache

    @property
    def chunk_id(self) -> str:
        return grid.stable_hash(sorted(r.run_id for r in self.runs))

    @functools.cached_property
    def columns(self) -> list:
        """Per-run configuration columns (grid.Run.columns), formed on first use: a plan that is
        only printed (plan=true) never needs them."""
        return [r.columns(n, self.flat_cache) for r, n in zip(self.runs, self.names)]

    def __getstate__(self) -> dict:  # shipped to a worker: with its columns, without the grid-wide cache
        state = dict(self.__dict__, flat_cache=None)
        state["columns"] = self.columns
        return state


@dataclass
class Task:
    chunks: list
    task_id: str = ""

    @property
    def cost_s(self) -> float:
        return sum(c.cost_s for c in self.chunks)

    @property
    def n_runs(self) -> int:
        return sum(len(c.runs) for c in self.chunks)


@dataclass
class Plan:
    runs: list
    datasets: dict  # data_key → (x, y)
    tasks: list
    n_cells: int
    skipped: int = 0  # runs already finished (resume)
    info: dict = field(default_factory=dict)


# One sharpness estimate costs about this many engine iterations: a few Lanczos steps (warm
# started), each a Hessian-vector product of about one gradient (benchmarks/engine.py measures it).
SHARPNESS_ESTIMATE_ITERATIONS = 6


def effective_iterations(config: dict) -> int:
    """A run's budget in iterations, counting its sharpness estimates at their cost."""
    T = config["iterations"]
    every = (config.get("sharpness") or {}).get("every", 0)
    return T + (SHARPNESS_ESTIMATE_ITERATIONS * (T // every + 2) if every else 0)


def estimate_seconds(model, n: int, d: int, replicas: int, iterations: int) -> float:
    return (iterations + 1) * (OVERHEAD_S + replicas * model.matmul_flops(1, n, d) / FLOPS)


def plan(runs: list, *, done_run_ids=frozenset(), task_seconds: float = 2.0, max_replicas: int = 256,
         min_tasks: int = 1) -> Plan:
    if not runs:
        raise ValueError("the grid is empty (check grid.tie / grid.exclude)")
    grid.assign_keys(runs)
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        seen, dup = set(), None
        for r in runs:
            if r.run_id in seen:
                dup = r
                break
            seen.add(r.run_id)
        raise ValueError(f"two jobs define the same run ({' '.join(dup.overrides)}): remove the duplicate "
                         f"sweep values")
    datasets, names, cells, directions, built = {}, {}, {}, {}, {}
    for run in runs:  # validation of the whole grid first: errors name the key and the run
        ds, model, loss, algorithm = grid.build(run, cache=built)
        datasets.setdefault(run.data_key, (ds.x, ds.y))
        if run.config.get("direction") == "svm" and run.data_key not in directions:
            from gdbench.data import max_margin_direction
            try:
                u = max_margin_direction(ds.x, ds.y)
            except ValueError as e:
                raise ValueError(f"{e} (in run {' '.join(run.overrides) or run.run_id})") from e
            # once per dataset: u, and the data's margin μ = min_i y_i x_iᵀu and radius max_i ‖x_i‖
            directions[run.data_key] = (u, {"data_margin": float(np.min(ds.y * (ds.x @ u))),
                                            "data_radius": float(np.max(np.linalg.norm(ds.x, axis=1)))})
        names[run.run_id] = {"dataset": ds.name, "model": model.name, "loss": loss.name,
                             "algorithm": algorithm.name, "n": ds.n, "d": ds.d}
        if run.config.get("direction"):
            names[run.run_id].update(directions[run.data_key][1])
        cells.setdefault(run.cell_key, (run, (model, loss, algorithm), []))[2].append(run)
    todo = []  # (first run, objects, runs still to do, estimated seconds) per cell
    for key, (first, objects, members) in cells.items():
        members = [r for r in members if r.run_id not in done_run_ids]
        if members:
            x, _ = datasets[first.data_key]
            todo.append((first, objects, members,
                         estimate_seconds(objects[0], *x.shape, len(members), effective_iterations(first.config))))
    total_s = sum(c[3] for c in todo)
    slots = max(1, int(min_tasks))
    # a task is ≈ task_seconds, or less when the whole grid would otherwise leave workers idle
    target_s = min(task_seconds, total_s / slots)
    chunks, flat = [], {}
    for first, objects, members, cell_s in todo:
        x, _ = datasets[first.data_key]
        T = effective_iterations(first.config)
        per_replica = estimate_seconds(objects[0], *x.shape, 1, T) - estimate_seconds(objects[0], *x.shape, 0, T)
        by_time = max(1, int((4 * task_seconds) / max(per_replica, 1e-12)))
        size = max(1, min(max_replicas, by_time))
        if slots > 1:  # this cell's share of the worker slots, so that a small grid uses them all
            share = max(1, math.ceil(slots * cell_s / max(total_s, 1e-12)))
            size = min(size, math.ceil(len(members) / share))
        for i in range(0, len(members), size):
            part = members[i:i + size]
            chunks.append(Chunk(first.cell_key, first.data_key, part, objects, [names[r.run_id] for r in part],
                                estimate_seconds(objects[0], *x.shape, len(part), T),
                                directions[first.data_key][0] if first.config.get("direction") else None,
                                flat_cache=flat))
    tasks, current = [], []
    for ch in chunks:
        current.append(ch)
        if sum(c.cost_s for c in current) >= target_s:
            tasks.append(Task(current))
            current = []
    if current:
        tasks.append(Task(current))
    for t in tasks:
        t.task_id = grid.stable_hash([c.chunk_id for c in t.chunks])
    return Plan(runs=runs, datasets=datasets, tasks=tasks, n_cells=len(todo),
                skipped=sum(1 for r in runs if r.run_id in done_run_ids))
