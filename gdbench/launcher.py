"""Hydra's multirun → one batched sweep (docs/design.md §3).

`GdbenchLauncher` is a Hydra launcher (registered as `hydra/launcher=gdbench` by the plugin in
hydra_plugins/): instead of running N jobs, it composes each job's config, turns them into runs,
validates the whole grid, and executes it as one sweep — cells, Ray tasks, one results directory
(`hydra.sweep.dir`). `execute` is the sweep itself, shared with the single-run path of the CLI.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from omegaconf import OmegaConf, open_dict

import gdbench
from gdbench import cells, grid
from gdbench.store import Store, writer_lock

log = logging.getLogger("gdbench")

SWEEP_LEVEL = ("cluster", "resources", "device", "compile", "plan", "report", "task_seconds",
               "max_replicas", "progress", "grid")


class SweepFailed(RuntimeError):
    pass


def job_config(cfg) -> dict:
    """A job's resolved config as plain data, without the `hydra` node."""
    with open_dict(cfg):
        return {k: (OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k])
                for k in cfg if k != "hydra"}


def execute(runs: list, settings: dict, sweep_dir, overrides=(), in_process: bool = False) -> dict:
    """Validate and plan every run, then run what is not finished yet, into `sweep_dir`."""
    try:
        if settings.get("plan"):  # a dry run writes no results: no lock needed
            return _execute(runs, settings, sweep_dir, overrides, in_process)
        with writer_lock(sweep_dir) as left:  # one writer per sweep directory, for the whole sweep
            if left:
                print(f"note: the last gdbench on {sweep_dir} ({left}) stopped without finishing; "
                      "resuming what it left", file=sys.stderr)
            return _execute(runs, settings, sweep_dir, overrides, in_process)
    finally:  # Ray is stopped in the background while the store and the summary are written
        _wait_for_ray()


def _wait_for_ray() -> None:
    """Join the scheduler's background Ray shutdown, if this process scheduled a sweep (the
    scheduler module, the only Ray import, is loaded only then)."""
    if "gdbench.scheduler" in sys.modules:
        sys.modules["gdbench.scheduler"].wait_shutdown()


def _execute(runs, settings, sweep_dir, overrides, in_process) -> dict:
    t0 = time.perf_counter()
    if not isinstance(settings.get("compile", False), bool):
        raise ValueError(f"compile={settings['compile']!r}: expected true or false")
    _validate_report(settings.get("report") or {})
    store = Store(sweep_dir)
    p = cells.plan(runs, done_run_ids=store.finished_run_ids(), task_seconds=settings["task_seconds"],
                   max_replicas=settings["max_replicas"], min_tasks=_local_slots(settings, in_process))
    planning_s = time.perf_counter() - t0
    print(cells.describe(p))
    if settings["plan"]:
        return {"planned": len(p.runs)}
    store.write_plan([r.run_id for r in p.runs])
    try:
        res = _run_plan(p, store, settings, in_process)
    except KeyboardInterrupt:  # Ctrl-C: what finished is on disk (atomic files); say so, then stop
        kept = len(store.finished_run_ids() & {r.run_id for r in p.runs})
        print(f"\ninterrupted: {kept} of {len(p.runs)} runs are finished and kept in {store.root}; "
              f"run the same command again to resume", file=sys.stderr)
        raise
    runs_df = store.collect()
    failures = [f for f in store.failures() if not set(f["run_ids"]) <= set(runs_df.get("run_id", []))]
    res["timings"]["planning_s"] = planning_s
    store.write_provenance(_provenance(settings, overrides, res, len(p.runs), p.skipped))
    print(f"\nresults: {store.root}  ({len(runs_df)} of {len(p.runs)} runs finished)")
    rep = settings.get("report") or {}
    if len(runs_df) and not rep.get("enabled"):  # the report prints the same summary
        print(summary_table(runs_df))
    if rep.get("enabled") and len(runs_df):
        _wait_for_ray()  # a short wait, after which the report may fork workers to draw its figures
        from gdbench import report  # pandas/matplotlib stage, imported only when used
        try:
            report.build(store.root, **report_options(rep), echo=True)
        except Exception as e:  # a report problem never loses the results: they are on disk
            log.error(f"report failed ({type(e).__name__}: {e}); the results are intact — "
                      f"rerun with `gdbench-report {store.root}`")
    if failures:
        raise SweepFailed(f"{len(failures)} chunk(s) failed ({sum(len(f['run_ids']) for f in failures)} runs); "
                          f"see {store.root / 'failures.jsonl'}. Re-run the same command to retry them.")
    return res


def _run_plan(p, store, settings: dict, in_process: bool) -> dict:
    """Run the plan's tasks (on Ray, or in this process for the single-run path), writing each
    finished chunk to the store as it arrives; returns the timings."""
    resources = settings["resources"]
    cluster = settings["cluster"]
    if p.tasks and not in_process:
        from gdbench import scheduler  # Ray is imported only when a sweep is scheduled
        return scheduler.run(p, store, address=cluster.get("address"), num_cpus=resources["num_cpus"],
                             num_gpus=resources["num_gpus"], device=settings["device"],
                             compile=bool(settings.get("compile")),
                             local_num_cpus=cluster.get("num_cpus"), object_store_mb=cluster["object_store_mb"],
                             ship_code=cluster.get("ship_code", False), progress=settings["progress"],
                             background_shutdown=True, connect_timeout_s=cluster.get("connect_timeout_s") or 30)
    if p.tasks:  # the single-run path: no Ray, the engine in this process
        s = time.perf_counter()
        for task in p.tasks:
            columns_of = {c.chunk_id: c.columns for c in task.chunks}
            for r in cells.run_task(task, p.datasets, device=settings["device"],
                                    compile=bool(settings.get("compile"))):
                extra = {"node_id": None, "host": r["host"], "task_id": task.task_id}
                if r["ok"]:
                    store.write_chunk(r, extra)
                else:
                    store.write_failure(r, extra, columns=columns_of[r["chunk_id"]])
        return {"timings": {"compute_s": time.perf_counter() - s}, "nodes": []}
    return {"timings": {}, "nodes": []}


def _local_slots(settings: dict, in_process: bool) -> int:
    """How many tasks the embedded Ray runs at once (its CPUs ÷ CPUs per task); 1 for the
    single-run path and for an existing cluster, whose size is only known once connected."""
    cluster, resources = settings["cluster"], settings["resources"]
    if in_process or cluster.get("address"):
        return 1
    cpus = cluster.get("num_cpus") or os.cpu_count() or 1
    return max(1, int(cpus // max(float(resources["num_cpus"]), 1e-9)))


def report_options(rep: dict) -> dict:
    """The `report` config node → keyword arguments of report.build."""
    return {"by": rep.get("group_by"), "t0": rep.get("rate_t0", 10), "n_boot": rep.get("bootstrap", 1000),
            "columns": rep.get("columns") or {}, "make_figures": rep.get("figures", True),
            "headline_specs": rep.get("headline") or [], "figure_width": rep.get("figure_width", "single")}


def _validate_report(rep: dict) -> None:
    """The report's settings, checked before anything is scheduled (a typo in a study's figure
    declarations must not surface only after the compute)."""
    from gdbench import declarations  # the schema only: the driver does not load matplotlib
    declarations.validate(rep.get("headline"), where="report.headline")
    if rep.get("figure_width", "single") not in ("single", "double"):
        raise ValueError(f"report.figure_width={rep.get('figure_width')!r}: choose single (3.3 in) or double (6.75 in)")


def summary_table(runs) -> str:
    """The terminal summary (`analysis.summary_table`): per group of runs that differ only in
    their seed, separation next to oscillation."""
    from gdbench import analysis, render
    return render.to_markdown(analysis.summary_table(analysis.numeric_keys(runs)))


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


def settings_of(cfg: dict) -> dict:
    return {k: cfg.get(k) for k in SWEEP_LEVEL}


class GdbenchLauncher(Launcher):
    def __init__(self) -> None:
        self.config = self.hydra_context = self.task_function = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function
        self._cache, self._parsed, self._parser = {}, {}, None
        from gdbench.cli import CONF_DIR
        self.config_dir = CONF_DIR

    def _compose(self, overrides: list) -> tuple[dict, object]:
        """A job's resolved config as plain data (without the `hydra` node), and the Hydra config
        it was composed with. Hydra's load_sweep_config re-composes from scratch (expensive per
        job on a large grid), so compose once per distinct set of config-group choices; a job's plain
        `key=value` overrides of existing keys are then set on a copy of that config's plain data
        (what Hydra would do, at a fraction of the cost); any other override (`+key`, `~key`,
        interpolations, unknown keys, hydra.*) goes through Hydra's own override machinery, so
        its behaviour and error messages are Hydra's."""
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.core.override_parser.types import OverrideType
        # Hydra's ANTLR parser costs ~5 ms an override; a grid repeats the same few strings
        if self._parser is None:
            self._parser = OverridesParser.create()
        for o in overrides:
            if o not in self._parsed:
                self._parsed[o] = self._parser.parse_overrides([o])[0]
        parsed = [self._parsed[o] for o in overrides]
        groups = [o for o, p in zip(overrides, parsed) if self._is_group(p.key_or_group)]
        values = [p for p in parsed if not self._is_group(p.key_or_group)]
        key = tuple(groups)
        if key not in self._cache:
            full = self.hydra_context.config_loader.load_sweep_config(self.config, groups)
            raw = json.dumps(OmegaConf.to_container(
                OmegaConf.masked_copy(full, [k for k in full if k != "hydra"]), resolve=False), default=str)
            # with interpolations, a changed value can change other keys: only Hydra's path is right
            self._cache[key] = (full, None if "${" in raw else job_config(full))
        full, plain = self._cache[key]
        c = copy.deepcopy(plain) if plain is not None else None
        for p in values:
            path = p.key_or_group.split(".")
            node = c if c is not None else {}
            for part in path[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            value = p.value()
            simple = (c is not None and p.type == OverrideType.CHANGE and p.package is None and isinstance(node, dict)
                      and path[-1] in node and path[0] != "hydra"
                      and not (isinstance(value, str) and "${" in value)
                      and isinstance(value, (int, float, str, bool, type(None))))
            if not simple:  # Hydra's general path (and its error messages)
                cfg = copy.deepcopy(full)
                ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
                return job_config(cfg), cfg
            node[path[-1]] = value  # the parsed type, as Hydra keeps it (1 stays int, 1.0 float)
        if c is None:  # no value overrides, but interpolations: resolve the composed config
            return job_config(full), full
        return c, full

    def _is_group(self, key: str) -> bool:
        key = key.split("@")[0]
        return "/" in key or (Path(self.config_dir) / key).is_dir()

    def launch(self, job_overrides, initial_job_idx):
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        base = job_config(self.config)
        g = base.get("grid") or {}
        jobs = grid.shape_grid([list(o) for o in job_overrides], tie=g.get("tie") or (),
                               exclude=g.get("exclude") or ())
        runs, returns, settings = [], [], None
        for idx, overrides in enumerate(jobs):
            c, hydra_cfg = self._compose(list(overrides))
            if settings is None:
                settings = settings_of(c)
            for key in SWEEP_LEVEL:  # one sweep = one set of sweep-level settings
                if settings_of(c)[key] != settings[key]:
                    raise ValueError(f"{key}: a sweep-level setting cannot vary within a sweep "
                                     f"({settings[key]!r} vs {settings_of(c)[key]!r}); run separate sweeps")
            runs.append(grid.run_from_config(c, filter_overrides(overrides)))
            # cfg: the job's config as plain data (one batched sweep; no per-job Hydra app runs)
            ret = JobReturn(overrides=list(overrides), cfg=c, hydra_cfg=hydra_cfg, working_dir=str(sweep_dir),
                            task_name=hydra_cfg.hydra.job.name, status=JobStatus.COMPLETED)
            ret.return_value = runs[-1].run_id
            returns.append(ret)
        log.info(f"gdbench: {len(job_overrides)} Hydra jobs → {len(runs)} runs after grid.tie/exclude")
        execute(runs, settings or settings_of(base), sweep_dir, overrides=sys.argv[1:])
        return returns
