"""One sweep, top to bottom (docs/design.md §3): validated runs → plan → executor → the store,
one chunk at a time → collect → provenance → report.

`execute(runs, settings, sweep_dir)` is the whole pipeline, used by the Hydra launcher (a
multirun) and by the CLI's single run alike. Where the tasks run is the executor's business
(`gdbench.executors`): this process and its forks, or Ray. Nothing is written before every run
has been validated and planned, and `plan=true` writes nothing at all.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import platform
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

import gdbench
from gdbench import cells, executors, preload
from gdbench.errors import ClusterUnreachable, SweepFailed, SweepLocked
from gdbench.store import Store, check_unlocked, writer_lock, writer_lock_if_free

log = logging.getLogger("gdbench")

SWEEP_LEVEL = ("cluster", "resources", "device", "compile", "plan", "report", "task_seconds",
               "max_replicas", "progress", "grid", "executor")


@contextlib.contextmanager
def user_errors_exit():
    """A user's mistake (a bad key or value, a locked or unreachable target, failed chunks) ends
    the command with its one message and exit code 1, no traceback; HYDRA_FULL_ERROR=1 shows
    the traceback (Hydra's convention)."""
    try:
        yield
    except (ValueError, SweepLocked, ClusterUnreachable, SweepFailed) as e:
        # a JSON or Unicode decode error is a ValueError but not a message written for the user
        if os.environ.get("HYDRA_FULL_ERROR") == "1" or isinstance(e, (json.JSONDecodeError, UnicodeError)):
            raise
        print(f"gdbench: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None


def settings_of(cfg: dict) -> dict:
    return {k: cfg.get(k) for k in SWEEP_LEVEL}


def execute(runs: list, settings: dict, sweep_dir, overrides=()) -> dict:
    """Validate and plan every run, then run what is not finished yet, into `sweep_dir`."""
    t0 = time.perf_counter()
    check_unlocked(sweep_dir)  # another gdbench writes there: say so now, not after planning
    validate_settings(settings)
    slots = _slots(settings)
    def plan(done):
        return cells.plan(runs, done_run_ids=done, task_seconds=settings["task_seconds"],
                          max_replicas=settings["max_replicas"], min_tasks=slots)

    done = Store.finished_run_ids_of(sweep_dir)  # read only: a dry run or a bad grid creates nothing
    p = plan(done)
    name, why = executors.choose(settings, p, slots) if p.tasks else ("local", "nothing to run")
    if name == "local" and p.tasks and settings["device"].startswith("cuda"):
        executors.require_local_gpu(settings["device"])
    if name == "ray" and settings["device"].startswith("cuda:"):  # CUDA_VISIBLE_DEVICES: a task sees its GPUs only
        raise ValueError(f"device={settings['device']!r} with executor {name} ({why}): a Ray task sees only the "
                         "GPU(s) Ray assigned it, as cuda:0; use device=cuda")
    print(describe(p, executor=name, why=why, slots=slots, address=settings["cluster"].get("address")))
    if name != "local" or settings["plan"] or not p.tasks:
        preload.discard()  # the compute process the command started is not needed: end it before Ray starts
    if settings["plan"]:
        return {"planned": len(p.runs), "executor": name}
    planning_s = time.perf_counter() - t0
    try:
        with writer_lock(sweep_dir) as left:  # one writer per sweep directory, for the whole sweep
            if left:
                print(f"note: the last gdbench on {sweep_dir} ({left}) stopped without finishing; "
                      "resuming what it left", file=sys.stderr)
            store = Store(sweep_dir)
            now = store.finished_run_ids()  # under the lock: damaged chunks are quarantined here
            if now != done:  # …or another writer finished runs meanwhile: plan what is left
                p = plan(now)
            return _run(p, store, settings, overrides, name, slots, planning_s)
    finally:  # Ray is stopped in the background while the store and the summary are written
        executors.wait_background()


def _run(p, store, settings, overrides, name, slots, planning_s) -> dict:
    store.write_plan([r.run_id for r in p.runs])
    try:
        res = _drain(p, store, executors.make(name, settings, slots), progress=settings["progress"],
                     while_waiting=_import_report if (settings.get("report") or {}).get("enabled") else None)
    except KeyboardInterrupt:  # Ctrl-C: what finished is on disk (atomic files); say so, then stop
        kept = len(store.finished_run_ids() & {r.run_id for r in p.runs})
        print(f"\ninterrupted: {kept} of {len(p.runs)} runs are finished and kept in {store.root}; run the same "
              "command again to resume" if kept else "\ninterrupted before any run finished: nothing kept",
              file=sys.stderr)
        raise
    runs_df = store.collect()
    res["timings"]["planning_s"] = planning_s
    store.write_provenance(_provenance(settings, overrides, res, len(p.runs), p.skipped))
    print(f"\nresults: {store.root}  ({len(runs_df)} of {len(p.runs)} runs finished)")
    _report(store, runs_df, settings.get("report") or {})
    if res["failed_chunks"]:
        raise SweepFailed(f"{res['failed_chunks']} chunk(s) failed in this session ({res['failed_runs']} runs); "
                          f"see {store.root / 'failures.jsonl'}. Re-run the same command to retry them.")
    return res


# what a results folder holds when the command wrote no results: Hydra's own files, and the
# store's empty skeleton when the failure came after the writer lock (a cluster that cannot run the tasks)
_NO_RESULTS = {".hydra", "multirun.yaml", ".writer.lock", "plan.json", "runs", "trajectory", "checksums"}


def remove_if_unused(folder) -> None:
    """Remove a results folder this command wrote no results into (a validation error, plan=true,
    a cluster that cannot run the tasks), then its parents up to the working directory if that
    left them empty (Hydra's default `results/`). A folder with anything else in it, or one that
    another gdbench is writing, stays."""
    folder, cwd = Path(folder).absolute(), Path.cwd().absolute()
    if not folder.is_dir() or folder == cwd or folder in cwd.parents:  # e.g. hydra.run.dir=.
        return
    with writer_lock_if_free(folder) as free:  # held across the check and the removal
        if not free:
            return
        for p in folder.iterdir():
            if not (p.name in _NO_RESULTS or p.suffix == ".log") or (p.is_dir() and p.name != ".hydra" and any(p.iterdir())):
                return
        import shutil
        shutil.rmtree(folder, ignore_errors=True)
    for parent in folder.parents:
        if parent == cwd or cwd not in parent.parents:
            break
        try:
            parent.rmdir()  # only if empty
        except OSError:
            break


def _import_report() -> None:
    """The report stage's imports (matplotlib, …), done while the compute process still imports
    torch, instead of after the compute. A failure here is the report's: said, never fatal to
    the sweep (the report stage says it again, after the results are on disk)."""
    try:
        from gdbench import report  # noqa: F401
    except Exception as e:
        log.warning(f"the report stage cannot be imported ({type(e).__name__}: {e})")


def _drain(p, store, executor, *, progress: bool, while_waiting=None) -> dict:
    """The one loop that writes results: each finished chunk to the store as it arrives."""
    t0 = time.perf_counter()
    counts = {"done_runs": 0, "failed_chunks": 0, "failed_runs": 0}
    store_s = compute_s = 0.0
    nodes, pids = set(), set()
    bar = None
    try:
        with executor:  # the bar appears once the executor has started (Ray may refuse to)
            bar = tqdm(total=sum(t.n_runs for t in p.tasks), unit="run", disable=not progress, desc="gdbench",
                       dynamic_ncols=True)
            for task, results in executor.map(p, while_waiting=while_waiting):
                s = time.perf_counter()
                columns_of = {c.chunk_id: c.columns for c in task.chunks}
                for r in results:
                    extra = {"node_id": r.get("node_id"), "host": r.get("host"), "task_id": task.task_id}
                    compute_s += r["wall_time_s"]
                    pids.add(r.get("pid"))
                    if r["ok"]:
                        store.write_chunk(r, extra)
                        counts["done_runs"] += len(r["rows"])
                        nodes.add(r.get("node_id"))
                    else:
                        store.write_failure(r, extra, columns=columns_of[r["chunk_id"]])
                        counts["failed_chunks"] += 1
                        counts["failed_runs"] += len(r["run_ids"])
                    bar.update(len(r["rows"]) if r["ok"] else len(r["run_ids"]))
                store_s += time.perf_counter() - s
                bar.set_postfix(failed=counts["failed_chunks"])
    finally:
        if bar is not None:
            bar.close()
    start_s = getattr(executor, "start_s", 0.0)
    timings = {"executor_start_s": start_s, "store_s": store_s, "worker_compute_s": compute_s,
               "schedule_and_compute_wall_s": time.perf_counter() - t0 - start_s}
    return {"timings": timings, "executor": executor.name, **counts, "nodes": sorted(n for n in nodes if n),
            "worker_pids": sorted(p for p in pids if p is not None),
            "preloaded_pid": getattr(executor, "preloaded_pid", None),
            "resources": dict(getattr(executor, "resources", None) or {})}


def _report(store, runs_df, rep: dict) -> None:
    if len(runs_df) and not rep.get("enabled"):  # the report prints the same summary
        from gdbench import analysis
        print(analysis.summary_text(runs_df))
    if rep.get("enabled") and len(runs_df):
        executors.wait_background()  # a short wait, after which the report may fork workers to draw its figures
        from gdbench import report  # pandas/matplotlib stage, imported only when used
        try:
            report.build(store.root, **report_options(rep), echo=True)
        except Exception as e:  # a report problem never loses the results: they are on disk
            log.error(f"report failed ({type(e).__name__}: {e}); the results are intact — "
                      f"rerun with `gdbench-report {store.root}`")


def describe(p: cells.Plan, *, executor: str | None = None, why: str = "", slots: int = 1,
             address: str | None = None) -> str:
    """The plan text: grid size, cells, tasks, where they will run and the estimated wall time."""
    total = sum(t.cost_s for t in p.tasks)
    lines = [f"runs: {len(p.runs)} ({p.skipped} already finished, {len(p.runs) - p.skipped} to run)",
             f"cells: {p.n_cells}   tasks: {len(p.tasks)}   datasets: {len(p.datasets)}",
             f"estimated compute: {total:.1f} s (sum over tasks)"]
    if executor == "ray" and address:  # an existing cluster: its size is known only once connected
        lines.append(f"executor: ray ({why}); estimated wall time ≤ {total:.1f} s (the compute on one worker; "
                     "less on the cluster's workers)")
    elif executor:
        start = executors.RAY_START_S if executor == "ray" else executors.LOCAL_START_S
        wall = executors.estimated_wall_s(p, slots) + start
        lines.append(f"executor: {executor} ({why}); estimated wall time ≈ {wall:.1f} s on {slots} worker(s), "
                     f"≈ {start:g} s of it start-up")
    for t in p.tasks[:20]:
        lines.append(f"  task {t.task_id}: {len(t.chunks)} chunk(s), {t.n_runs} runs, ~{t.cost_s:.2f} s")
    if len(p.tasks) > 20:
        lines.append(f"  … {len(p.tasks) - 20} more tasks")
    return "\n".join(lines)


def _slots(settings: dict) -> int:
    """How many tasks run at once on this machine (its CPUs ÷ CPUs per task); 1 for an existing
    cluster, whose size is only known once connected."""
    cluster, resources = settings["cluster"], settings["resources"]
    if cluster.get("address"):
        return 1
    cpus = cluster.get("num_cpus") or executors.local_slots()
    return max(1, int(cpus // max(float(resources["num_cpus"]), 1e-9)))


def validate_settings(settings: dict) -> None:
    """The sweep-level settings, checked before anything is planned or written; one message that
    names the key. The executors, the scheduler and the report then trust them."""
    cluster, resources, rep = settings["cluster"] or {}, settings["resources"] or {}, settings.get("report") or {}
    checks = [  # (key, value, ok, what was expected)
        ("compile", settings.get("compile", False), _is_bool, "true or false"),
        ("plan", settings.get("plan", False), _is_bool, "true or false"),
        ("progress", settings.get("progress", True), _is_bool, "true or false"),
        ("device", settings.get("device"), lambda v: isinstance(v, str) and re.fullmatch(r"cpu|cuda(:\d+)?", v),
         "cpu, cuda or cuda:N"),
        ("executor", settings.get("executor") or "auto", lambda v: v in executors.EXECUTORS, "auto, local or ray"),
        ("task_seconds", settings.get("task_seconds"), lambda v: _is_number(v) and v > 0, "a number of seconds > 0"),
        ("max_replicas", settings.get("max_replicas"), lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        ("resources.num_cpus", resources.get("num_cpus"), lambda v: _is_number(v) and v > 0, "a number > 0"),
        ("resources.num_gpus", resources.get("num_gpus", 0), lambda v: _is_number(v) and v >= 0, "a number >= 0"),
        ("cluster.address", cluster.get("address"), lambda v: v is None or isinstance(v, str) and v.strip(),
         "null or an address (auto, host:port, ray://host:port)"),
        ("cluster.num_cpus", cluster.get("num_cpus"), lambda v: v is None or _is_int(v) and v >= 1,
         "null or an integer >= 1"),
        ("cluster.object_store_mb", cluster.get("object_store_mb", 512), lambda v: _is_int(v) and v >= 75,
         "an integer >= 75 (Ray's smallest object store, MiB)"),
        ("cluster.connect_timeout_s", cluster.get("connect_timeout_s", 30), lambda v: _is_number(v) and v > 0,
         "a number of seconds > 0"),
        ("cluster.ship_code", cluster.get("ship_code", False), _is_bool, "true or false"),
        ("report.enabled", rep.get("enabled", False), _is_bool, "true or false"),
        ("report.figures", rep.get("figures", True), _is_bool, "true or false"),
        ("report.bootstrap", rep.get("bootstrap", 1000), lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
        ("report.rate_t0", rep.get("rate_t0", 10), lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
        ("report.figure_width", rep.get("figure_width", "single"), lambda v: v in ("single", "double"),
         "single (3.3 in) or double (6.75 in)"),
    ]
    for key, value, ok, expected in checks:
        if not ok(value):
            raise ValueError(f"{key}={value!r}: expected {expected}")
    if not cluster.get("address"):  # the embedded instance: its size is known now
        cpus = cluster.get("num_cpus") or executors.local_slots()
        if resources["num_cpus"] > cpus:
            raise ValueError(f"resources.num_cpus={resources['num_cpus']}: a task cannot have more CPUs than this "
                             f"machine gives the sweep ({cpus}; cluster.num_cpus={cluster.get('num_cpus')})")
    if resources.get("num_gpus", 0) > 0 and not settings["device"].startswith("cuda"):
        raise ValueError(f"resources.num_gpus={resources['num_gpus']} with device={settings['device']!r}: "
                         "GPUs are only requested for device=cuda")
    from gdbench import declarations  # the schema only: the driver does not load matplotlib
    declarations.validate(rep.get("headline"), where="report.headline")


def _is_bool(v) -> bool:
    return isinstance(v, bool)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def report_options(rep: dict) -> dict:
    """The `report` config node → keyword arguments of report.build."""
    return {"by": rep.get("group_by"), "t0": rep.get("rate_t0", 10), "n_boot": rep.get("bootstrap", 1000),
            "columns": rep.get("columns") or {}, "make_figures": rep.get("figures", True),
            "headline_specs": rep.get("headline") or [], "figure_width": rep.get("figure_width", "single")}


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(gdbench.__file__).parent,
                              capture_output=True, text=True, timeout=5).stdout.strip() or None
    except Exception:
        return None


def _version(package: str) -> str | None:
    # from the installed metadata: asking the module would import torch into a driver that never
    # computes (see gdbench/_lazy.py)
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _provenance(settings, overrides, res, n_runs, skipped) -> dict:
    cuda = None
    if str(settings["device"]).startswith("cuda"):  # the driver's GPU, when the sweep asked for one
        import torch
        cuda = torch.cuda.is_available() and torch.cuda.get_device_name(0)
    return {"gdbench": gdbench.__version__, "git_commit": _git_commit(), "python": sys.version,
            "torch": _version("torch"), "ray": _version("ray"), "numpy": _version("numpy"),
            "pandas": _version("pandas"), "host": socket.gethostname(), "platform": platform.platform(),
            "device": settings["device"], "cuda": cuda,
            "argv": sys.argv, "overrides": list(overrides), "settings": settings, "n_runs": n_runs,
            "skipped_finished": skipped, "result": res, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
