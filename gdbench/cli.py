"""Command-line entry points (the only place with @hydra.main).

    gdbench [overrides]             one run, in this process (no Ray), into hydra.run.dir
    gdbench -m [sweep overrides]    one batched sweep on Ray (GdbenchLauncher), into hydra.sweep.dir
    gdbench experiment=<name>       a named study from conf/experiment/ (they declare their grid)
    gdbench-collect <sweep_dir>     rebuild runs.parquet from the finished chunks and summarize
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig

from gdbench import grid
from gdbench.launcher import execute, job_config, settings_of, summary_table

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def main(cfg) -> None:
    # Reached only for a single run: a multirun goes through GdbenchLauncher, which batches.
    c = job_config(cfg)
    hc = HydraConfig.get()
    run = grid.run_from_config(c, list(hc.overrides.task))
    execute([run], settings_of(c), hc.runtime.output_dir, overrides=sys.argv[1:],
            in_process=not (c["cluster"] or {}).get("address"))


def collect(argv=None) -> None:
    from gdbench.store import Store
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        sys.exit("usage: gdbench-collect <sweep_dir>  (an existing gdbench sweep directory)")
    runs = Store(args[0]).collect()
    print(f"{args[0]}: {len(runs)} finished runs")
    if len(runs):
        print(summary_table(runs))
