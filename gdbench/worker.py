"""The worker side of a sweep: run a task's chunks with the engine (docs/design.md §3).

Every executor calls `run_task` where the compute happens — in the driver's process, in a
forked local worker or in a Ray task — and gets back plain data (rows and long-format trajectory
arrays) that crosses a process boundary as it is. The planning side is `gdbench.cells`.
"""
from __future__ import annotations

import os
import socket
import time
import traceback

import numpy as np

from gdbench.cells import Task


def run_task(task: Task, datasets: dict, *, device: str = "cpu", compile: bool = False) -> list[dict]:
    """Run every chunk of a task; one result dict per chunk. A chunk that raises is returned as
    a failure record (error + traceback) so that the other chunks and the sweep go on."""
    from gdbench import engine  # torch: loaded where the compute happens, never in the planner
    from gdbench.sharpness import SharpnessSettings
    out = []
    host = socket.gethostname()
    for ch in task.chunks:
        start = time.perf_counter()
        try:
            model, loss, algorithm = ch.objects
            c = ch.runs[0].config
            x, y = datasets[ch.data_key]
            res = engine.run_cell(
                x, y, model=model, loss=loss, algorithm=algorithm,
                lrs=[r.lr for r in ch.runs], seeds=[r.seed for r in ch.runs], iterations=c["iterations"],
                eps=tuple(c["eps"]), record=engine.RecordSchedule(**c["record"]), companion=c["companion"],
                stop_loss=c["stop_loss"], device=device, dtype=c["dtype"], direction=ch.direction,
                compile=compile, sharpness=SharpnessSettings(**c.get("sharpness", {})))
            rows = []
            for cols, metrics in zip(ch.columns, res.run_rows()):
                metrics.pop("lr"), metrics.pop("seed")
                rows.append({**cols, **metrics, "error": None, "wall_time_s": res.wall_time_s / len(ch.runs)})
            traj = res.trajectory_columns()
            run_ids = np.array([r.run_id for r in ch.runs], dtype=object)
            traj["run_id"] = run_ids[traj.pop("replica")]
            out.append({"chunk_id": ch.chunk_id, "ok": True, "rows": rows, "trajectory": traj,
                        "host": host, "pid": os.getpid(), "wall_time_s": time.perf_counter() - start})
        except Exception as e:  # recorded, never fatal to the sweep
            out.append({"chunk_id": ch.chunk_id, "ok": False, "run_ids": [r.run_id for r in ch.runs],
                        "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(),
                        "host": host, "pid": os.getpid(), "wall_time_s": time.perf_counter() - start})
    return out


def forked_results(tasks: list, datasets: dict, workers: int, device: str, compile: bool, on_start=None):
    """(index, results) of each task, in the order they finish, from `workers` processes forked
    from this one, each with one torch thread (the processes are the parallelism). They inherit
    the loaded modules and the datasets (copy-on-write), so nothing is imported or shipped again.
    on_start: called first in each of them."""
    global _DATASETS
    _DATASETS = datasets  # read by the forked children, never pickled
    from gdbench import engine  # noqa: F401  # torch loaded once, before the fork, for every child
    import multiprocessing
    pool = multiprocessing.get_context("fork").Pool(min(workers, len(tasks)), initializer=_child_start,
                                                    initargs=(on_start,))
    try:
        yield from pool.imap_unordered(_child_run, [(i, task, device, compile) for i, task in enumerate(tasks)])
    except BaseException:  # an interrupt, an error, or the consumer stopped: stop the children now
        pool.terminate()
        pool.join()
        raise
    pool.close()
    pool.join()


_DATASETS: dict = {}


def _child_start(on_start) -> None:
    import torch
    torch.set_num_threads(1)
    if on_start is not None:
        on_start()


def _child_run(args):
    i, task, device, compile = args
    return i, run_task(task, _DATASETS, device=device, compile=compile)
