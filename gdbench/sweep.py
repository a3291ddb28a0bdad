"""One sweep, top to bottom (docs/design.md §3): validated runs → plan → executor → the store,
one chunk at a time → collect → provenance → report.

`execute(runs, settings, sweep_dir)` is the whole pipeline, used by the Hydra launcher (a
multirun) and by the CLI's single run alike. Where the tasks run is the executor's business
(`gdbench.executors`): this process and its forks, or Ray. Nothing is written before every run
has been validated and planned, and `plan=true` writes nothing at all.
"""
from __future__ import annotations

import contextlib
import logging
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

import gdbench
from gdbench import cells, executors, preload
from gdbench.store import Store, writer_lock

log = logging.getLogger("gdbench")

SWEEP_LEVEL = ("cluster", "resources", "device", "compile", "plan", "report", "task_seconds",
               "max_replicas", "progress", "grid", "executor")


class SweepFailed(RuntimeError):
    pass


@contextlib.contextmanager
def user_errors_exit():
    """A user's mistake (a bad key or value, a locked or unreachable target, failed chunks) ends
    the command with its one message and exit code 1, no traceback; HYDRA_FULL_ERROR=1 shows
    the traceback (Hydra's convention)."""
    from gdbench.store import SweepLocked
    try:
        yield
    except (ValueError, SweepLocked, executors.ClusterUnreachable, SweepFailed) as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"gdbench: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None


def settings_of(cfg: dict) -> dict:
    return {k: cfg.get(k) for k in SWEEP_LEVEL}


def execute(runs: list, settings: dict, sweep_dir, overrides=()) -> dict:
    """Validate and plan every run, then run what is not finished yet, into `sweep_dir`."""
    t0 = time.perf_counter()
    validate_settings(settings)
    slots = _slots(settings)
    def plan(done):
        return cells.plan(runs, done_run_ids=done, task_seconds=settings["task_seconds"],
                          max_replicas=settings["max_replicas"], min_tasks=slots)

    done = Store.finished_run_ids_of(sweep_dir)  # read only: a dry run or a bad grid creates nothing
    p = plan(done)
    name, why = executors.choose(settings, p, slots) if p.tasks else ("local", "nothing to run")
    print(cells.describe(p, executor=name, why=why, slots=slots))
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
        _wait_for_ray()


def _run(p, store, settings, overrides, name, slots, planning_s) -> dict:
    store.write_plan([r.run_id for r in p.runs])
    try:
        res = _drain(p, store, executors.make(name, settings, slots), progress=settings["progress"])
    except KeyboardInterrupt:  # Ctrl-C: what finished is on disk (atomic files); say so, then stop
        kept = len(store.finished_run_ids() & {r.run_id for r in p.runs})
        print(f"\ninterrupted: {kept} of {len(p.runs)} runs are finished and kept in {store.root}; "
              f"run the same command again to resume", file=sys.stderr)
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


def remove_if_unused(folder: Path, keep_if_any_of=("runs", "failed", "failures.jsonl")) -> None:
    """Remove a results folder Hydra created for a command that then wrote no results (a
    validation error, plan=true): it holds only Hydra's own files (.hydra/, multirun.yaml, the
    job log)."""
    folder = Path(folder)
    if folder.is_dir() and not any((folder / k).exists() for k in keep_if_any_of):
        hydra_files = {".hydra", "multirun.yaml"} | {p.name for p in folder.glob("*.log")}
        if {p.name for p in folder.iterdir()} <= hydra_files:
            import shutil
            shutil.rmtree(folder, ignore_errors=True)


def _drain(p, store, executor, *, progress: bool) -> dict:
    """The one loop that writes results: each finished chunk to the store as it arrives."""
    t0 = time.perf_counter()
    counts = {"done_runs": 0, "failed_chunks": 0, "failed_runs": 0}
    store_s = compute_s = 0.0
    nodes, pids = set(), set()
    bar = tqdm(total=sum(t.n_runs for t in p.tasks), unit="run", disable=not progress, desc="gdbench",
               dynamic_ncols=True)
    try:
        with executor:
            for task, results in executor.map(p):
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
        _wait_for_ray()  # a short wait, after which the report may fork workers to draw its figures
        from gdbench import report  # pandas/matplotlib stage, imported only when used
        try:
            report.build(store.root, **report_options(rep), echo=True)
        except Exception as e:  # a report problem never loses the results: they are on disk
            log.error(f"report failed ({type(e).__name__}: {e}); the results are intact — "
                      f"rerun with `gdbench-report {store.root}`")


def _wait_for_ray() -> None:
    """Join the background Ray shutdown, if this process used Ray (the scheduler module, the only
    Ray import, is loaded only then)."""
    if "gdbench.scheduler" in sys.modules:
        from gdbench import scheduler
        scheduler.wait_shutdown()


def _slots(settings: dict) -> int:
    """How many tasks run at once on this machine (its CPUs ÷ CPUs per task); 1 for an existing
    cluster, whose size is only known once connected."""
    cluster, resources = settings["cluster"], settings["resources"]
    if cluster.get("address"):
        return 1
    cpus = cluster.get("num_cpus") or executors.local_slots()
    return max(1, int(cpus // max(float(resources["num_cpus"]), 1e-9)))


def validate_settings(settings: dict) -> None:
    """The sweep-level settings, checked before anything is planned or written."""
    if not isinstance(settings.get("compile", False), bool):
        raise ValueError(f"compile={settings['compile']!r}: expected true or false")
    if (settings.get("executor") or "auto") not in executors.EXECUTORS:
        raise ValueError(f"executor={settings['executor']!r}: choose auto, local or ray")
    rep = settings.get("report") or {}
    from gdbench import declarations  # the schema only: the driver does not load matplotlib
    declarations.validate(rep.get("headline"), where="report.headline")
    if rep.get("figure_width", "single") not in ("single", "double"):
        raise ValueError(f"report.figure_width={rep.get('figure_width')!r}: choose single (3.3 in) or double (6.75 in)")


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
