"""Command-line entry points (the only place with @hydra.main).

    gdbench [overrides]             one run, into hydra.run.dir
    gdbench -m [sweep overrides]    one batched sweep (GdbenchLauncher), into hydra.sweep.dir
Both go through the same pipeline (gdbench.sweep); `executor` says where the tasks run (auto: on
this machine for small sweeps, on Ray for big ones or with cluster.address).
    gdbench experiment=<name>       a named study from conf/experiment/ (they declare their grid)
    gdbench-collect <sweep_dir>     rebuild runs.parquet from the finished chunks and summarize
    gdbench-report <sweep_dir>      tables, figures and index into <sweep_dir>/report/
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from gdbench import CONF_DIR, preload


def _hydra_app() -> None:
    """Hydra's app. Hydra and the pipeline are imported here, not at the top: `main` first starts
    the compute process (gdbench.preload), which then loads torch while this process loads them."""
    import hydra
    from hydra.core.hydra_config import HydraConfig

    from gdbench import grid
    from gdbench.launcher import job_config
    from gdbench.sweep import execute, remove_if_unused, settings_of, user_errors_exit

    @hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
    def app(cfg) -> None:
        # Reached only for a single run: a multirun goes through GdbenchLauncher, which batches.
        c = job_config(cfg)
        hc = HydraConfig.get()
        out = Path(hc.runtime.output_dir)
        try:
            with user_errors_exit():
                run = grid.run_from_config(c, list(hc.overrides.task))
                execute([run], settings_of(c), out, overrides=sys.argv[1:])
        finally:  # a run that failed validation, or plan=true, leaves no results directory behind
            remove_if_unused(out)
    app()


def main() -> None:
    """The `gdbench` command: Hydra's app (its CLI, errors and exit codes), then an immediate exit.

    By the time Hydra returns, every result is on disk, every message printed and the embedded
    Ray stopped (the launcher waits for it); what is left is the interpreter's teardown of the
    modules it loaded (a noticeable share of a small sweep's time), which os._exit skips. A Ctrl-C
    (KeyboardInterrupt, which Hydra lets through) leaves the same way with 130: by then the
    scheduler has stopped Ray (also when the Ctrl-C came while Ray was starting), the writer lock
    is released and the launcher has said what is kept; an ordinary interpreter exit could meet a
    Ray C++ thread still winding down and abort while finalizing."""
    preload.start(sys.argv[1:])  # first: the compute process imports torch while this one starts (gdbench/preload.py)
    try:
        sys.argv[1:] = custom_data_overrides(sys.argv[1:])
        _hydra_app()
        code = 0
    except KeyboardInterrupt:
        code = 130
    except SystemExit as e:  # Hydra's own exits: errors (1), --help, --cfg (0)
        code = e.code
        if isinstance(code, str):
            print(code, file=sys.stderr)
            code = 1
        code = 0 if code is None else code
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()  # flush Hydra's log files
    os._exit(code)


def custom_data_overrides(args: list[str]) -> list[str]:
    """With data=custom, `data.<key>=…` for a key the custom node does not declare becomes
    `++data.<key>=…` (add or override): the user's function takes keys gdbench cannot know in
    advance, and Hydra's struct mode would reject them. Other datasets keep Hydra's check, so a
    typo in a key of a built-in dataset is still an error naming it."""
    if "data=custom" not in args:
        return args
    from omegaconf import OmegaConf
    conf = Path(CONF_DIR) / "data"
    known = set(OmegaConf.load(conf / "custom.yaml")) | set(OmegaConf.load(conf / "_options.yaml"))
    out = []
    for a in args:
        key = a.partition("=")[0]
        if key.startswith("data.") and key[len("data."):].split(".")[0] not in known:
            a = "++" + a
        out.append(a)
    return out


def collect(argv=None) -> None:
    from gdbench.errors import SweepLocked
    from gdbench.store import Store, writer_lock
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        sys.exit("usage: gdbench-collect <sweep_dir>  (an existing gdbench sweep directory)")
    try:
        with writer_lock(args[0]):  # runs.parquet has one writer: a running sweep rebuilds it itself
            runs = Store(args[0]).collect()
    except SweepLocked as e:
        sys.exit(f"gdbench-collect: {e}")
    print(f"{args[0]}: {len(runs)} finished runs")
    if len(runs):
        from gdbench import analysis
        print(analysis.summary_text(runs))


def report(argv=None) -> None:
    """`gdbench-report <sweep_dir> [options]`: defaults come from the sweep's own `report` settings
    (its provenance), so the report of a sweep rebuilds as it was configured."""
    import argparse

    from gdbench import report as report_stage
    from gdbench.sweep import report_options
    ap = argparse.ArgumentParser(prog="gdbench-report", description=report.__doc__)
    ap.add_argument("sweep_dir", nargs="+", help="a gdbench sweep directory (finished, running or interrupted); "
                    "two: compare them (gdbench/compare.py)")
    ap.add_argument("--labels", help="comparison: two comma-separated names (default: the directory names)")
    ap.add_argument("--out", help="comparison: output folder (default: <first sweep>/compare-<second label>/)")
    ap.add_argument("--group-by", help="comma-separated runs-table columns (default: every swept key)")
    ap.add_argument("--rate-t0", type=int, help="start of the rate-fit window is max(tau, t0)")
    ap.add_argument("--bootstrap", type=int, help="bootstrap resamples for exponent intervals")
    ap.add_argument("--no-figures", action="store_true", help="tables only")
    ap.add_argument("--quiet", action="store_true", help="do not print the tables")
    args = ap.parse_args(argv)
    if len(args.sweep_dir) != 1 or args.labels is not None or args.out is not None:
        from gdbench import compare
        return compare.main(args)
    root = Path(args.sweep_dir[0])
    if not (root / "runs").is_dir():
        sys.exit(f"gdbench-report: {root} is not a gdbench sweep directory (no runs/ folder)")
    from gdbench.store import last_session
    rep = ((last_session(root) or {}).get("settings") or {}).get("report") or {}
    rep = rep if isinstance(rep, dict) else {}
    opts = report_options(rep)
    if args.group_by:
        opts["by"] = [c.strip() for c in args.group_by.split(",") if c.strip()]
    if args.rate_t0 is not None:
        opts["t0"] = args.rate_t0
    if args.bootstrap is not None:
        opts["n_boot"] = args.bootstrap
    if args.no_figures:
        opts["make_figures"] = False
    try:
        report_stage.build(root, **opts, echo=not args.quiet)
    except (KeyError, FileNotFoundError) as e:
        sys.exit(f"gdbench-report: {e}")


def reproduce(argv=None) -> None:
    """`gdbench-reproduce [--scale quick|paper] …`: see gdbench/reproduce.py."""
    from gdbench.reproduce import main as reproduce_main
    sys.exit(reproduce_main(argv))


if __name__ == "__main__":  # `python -m gdbench.cli …` = `gdbench …` (used by gdbench-reproduce)
    main()
