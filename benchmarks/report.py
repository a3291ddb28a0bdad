"""Benchmark of the report stage: load a synthetic store and build every table and figure.

    .venv/bin/python benchmarks/report.py            # 10^6 and 10^7 trajectory rows, then the default study
    .venv/bin/python benchmarks/report.py rows=1e6   # one size
    .venv/bin/python benchmarks/report.py rows=0     # the default study's report only

The store is written with gdbench's own Store (runs/ and trajectory/ chunk files, plan.json):
4 models × 25 step sizes × 5 dimensions × seeds, 1,000 recorded iterations per run, loss curves
of the form log F_t = −a·log t + noise after a noisy unstable phase. Each size is measured in a
fresh child process (wall time of `report.build`, which includes loading, and the child's peak RSS).
Targets: ≤ 60 s and ≤ 4 GB at 10^7 rows, no worse than linear growth. Figures are drawn by
forked workers, so the peak memory is the driver's plus its largest worker's.

The default study (`gdbench experiment=default`, its own sweep with report.enabled=false, on the
embedded Ray) is then reported on three times, each in a fresh process; target ≤ 5 s for
`report.build` on 2 cores. The `gdbench-report` command is timed end to end as well (that adds
Python, pandas and matplotlib start-up).
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ITERS = 1000
MODELS = [("linear", "identity", None), ("two_layer", "relu", 32), ("two_layer", "quadratic", 32),
          ("two_layer", "tanh", 32)]
LRS = np.logspace(-2, 4, 25)
DIMS = [8, 16, 32, 64, 128]


def make_store(root: Path, n_runs: int) -> None:
    from gdbench.store import Store
    store = Store(root)
    seeds = max(1, n_runs // (len(MODELS) * len(LRS) * len(DIMS)))
    rng = np.random.default_rng(0)
    recorded = np.unique(np.concatenate([np.arange(100), np.geomspace(100, 10 * ITERS, ITERS - 100).astype(int)]))
    recorded = np.concatenate([recorded, np.arange(recorded[-1] + 1, recorded[-1] + 1 + ITERS - len(recorded))])
    assert len(recorded) == ITERS
    ids = []
    chunk = 0
    for model, act, width in MODELS:
        for d in DIMS:
            rows, traj = [], {k: [] for k in ("run_id", "iter", "log_loss", "accuracy", "n_misclassified",
                                              "min_margin", "param_norm", "grad_norm")}
            for lr in LRS:
                for seed in range(seeds):
                    rid = f"{model}-{act}-{d}-{lr:.3g}-{seed}"
                    ids.append(rid)
                    tau = int(min(ITERS, 5 * np.log10(lr) ** 2)) if lr > 1 else 0
                    t_sep = int(d * (1 + rng.random()) / (1 + np.log10(lr + 1)))
                    a = rng.uniform(0.8, 1.2)
                    log_loss = -a * np.log1p(recorded) + rng.normal(0, 0.05, ITERS)
                    log_loss[:tau] += rng.normal(0, 2, min(tau, ITERS))
                    rows.append({"run_id": rid, "cell_id": f"{model}-{act}-{d}", "dataset": "gaussian",
                                 "model": model, "activation": act, "width": width, "loss": "logistic",
                                 "algorithm": "gd", "n": 200, "d": d, "lr": float(lr), "seed": seed,
                                 "iterations": int(recorded[-1]), "iterations_run": int(recorded[-1]),
                                 "t_sep": t_sep, "t_sep_stay": t_sep, "n_increases": int(tau // 3),
                                 "transition_time": tau, "n_misclassified_increases": int(tau // 5),
                                 "peak_loss": 1.0, "peak_log_loss": 0.0, "peak_ratio": 1.0 + tau,
                                 "max_jump": 0.1, "t_eps_1e-04": None, "final_log_loss": float(log_loss[-1]),
                                 "final_loss": float(np.exp(log_loss[-1])), "final_accuracy": 1.0,
                                 "final_min_margin": 1.0, "final_param_norm": 1.0, "final_grad_norm": 1e-3,
                                 "final_normalized_margin": 0.1, "diverged_at": None, "status": "ok",
                                 "error": None, "wall_time_s": 0.01})
                    traj["run_id"].append(np.full(ITERS, rid, dtype=object))
                    traj["iter"].append(recorded)
                    traj["log_loss"].append(log_loss)
                    traj["accuracy"].append(np.minimum(1.0, recorded / max(t_sep, 1)))
                    for k in ("n_misclassified", "min_margin", "param_norm", "grad_norm"):
                        traj[k].append(rng.random(ITERS))
            store.write_chunk({"chunk_id": f"c{chunk:04d}", "rows": rows,
                               "trajectory": {k: np.concatenate(v) for k, v in traj.items()}},
                              {"node_id": "synthetic", "host": "synthetic", "task_id": f"c{chunk:04d}"})
            chunk += 1
    store.write_plan(ids)


def measure(root: Path) -> dict:
    """In a fresh child process: time report.build on an existing store and read the peak RSS."""
    from gdbench import report
    s = time.perf_counter()
    out = report.build(root, echo=False, n_boot=1000)
    wall = time.perf_counter() - s
    import pyarrow.parquet as pq
    n_traj = sum(pq.read_metadata(f).num_rows for f in (root / "trajectory").glob("*.parquet"))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"rows": n_traj, "runs": out["finished"], "report_s": wall, "peak_rss_gib": peak_kib / 2**20,
            "figures": len(out["figures"]), "tables": len(out["tables"])}


def _child(*args) -> str:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def main() -> None:
    args = dict(a.split("=", 1) for a in sys.argv[1:])
    if "make" in args:
        make_store(Path(args["dir"]), int(float(args["make"])) // ITERS)
        return
    if "measure" in args:
        print(json.dumps(measure(Path(args["measure"]))))
        return
    sizes = [int(float(args["rows"]))] if "rows" in args else [10**6, 10**7]
    sizes = [r for r in sizes if r > 0]
    print(f"report benchmark: {ITERS} recorded iterations per run; each size in a fresh process")
    results = []
    for rows in sizes:
        with tempfile.TemporaryDirectory(prefix="gdrep") as tmp:
            s = time.perf_counter()
            _child(f"make={rows}", f"dir={tmp}/sweep")
            made = time.perf_counter() - s
            r = json.loads(_child(f"measure={tmp}/sweep"))
        r["store_build_s"] = made
        results.append(r)
        print(f"  {r['rows']:>10,} trajectory rows ({r['runs']:,} runs): report {r['report_s']:6.1f} s "
              f"(load + {r['tables']} tables + {r['figures']} figure files), peak RSS {r['peak_rss_gib']:.2f} GiB "
              f"(store synthesis {r['store_build_s']:.0f} s, not counted)")
    if len(results) == 2:
        a, b = results
        growth = (b["report_s"] / a["report_s"]) / (b["rows"] / a["rows"])
        print(f"  time per row at the large size / at the small size: {growth:.2f} (≤ 1 = no worse than linear)")
        print(f"  targets at 10^7 rows: ≤ 60 s → {'met' if b['report_s'] <= 60 else 'NOT MET'}; "
              f"≤ 4 GB → {'met' if b['peak_rss_gib'] * 2**30 <= 4e9 else 'NOT MET'}")


    default_study()


def default_study() -> None:
    """The default study's report: the sweep once (report off), then report.build three times
    and the gdbench-report command once, each in a fresh process."""
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="gddef") as tmp:
        sweep = Path(tmp) / "default"
        proc = subprocess.run([str(bin_dir / "gdbench"), "experiment=default", f"hydra.sweep.dir={sweep}",
                               "progress=false", "report.enabled=false"], capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(proc.stderr[-3000:])
        builds = [json.loads(_child(f"measure={sweep}"))["report_s"] for _ in range(3)]
        s = time.perf_counter()
        subprocess.run([str(bin_dir / "gdbench-report"), str(sweep), "--quiet"], check=True, capture_output=True)
        cli = time.perf_counter() - s
    print(f"  default study: report.build {min(builds):.1f} s (best of {', '.join(f'{b:.1f}' for b in builds)}; "
          f"target ≤ 5 s → {'met' if min(builds) <= 5 else 'NOT MET'}); gdbench-report end to end {cli:.1f} s")


if __name__ == "__main__":
    main()
