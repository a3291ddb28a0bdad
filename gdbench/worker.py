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
