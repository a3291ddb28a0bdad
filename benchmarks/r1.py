"""R1: a small sweep end to end, against a plain per-run loop with hand-written gradients.

    .venv/bin/python benchmarks/r1.py [repeats=2]

The workload (96 runs): n = 200, d = 50 (float64) — X ~ N(0, 1), w ~ N(0, 1), u = w/|w|,
y = sign(Xw), then x_i ← x_i + 0.1·y_i·u — on the logistic loss; models {linear from 0, two-layer
ReLU m = 32 with conf/model/two_layer.yaml's defaults} × 12 step sizes logspace(−2, 3.5, 12) ×
seeds 0–3; 2,000 GD iterations.

- baseline: a Python loop over the 96 runs, one at a time, with hand-written gradients in torch,
  recording F_t and the minimum margin every iteration (in a subprocess, like gdbench);
- gdbench: `gdbench -m data=custom data.fn=benchmarks/r1.py:r1_data …` end to end, Python start-up
  included, with executor=auto (this size goes to the local executor), the same without the
  compute process forked at the command's start (GDBENCH_NO_PRELOAD=1), and with executor=ray.
The four are interleaved `repeats` times (this VM's speed drifts over minutes); the best of each
is compared. The data reach gdbench through `data=custom`, the same function as the baseline's.
"""
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LRS = np.logspace(-2, 3.5, 12)
ITERATIONS, SEEDS, WIDTH = 2000, range(4), 32


def r1_data(seed: int = 0):
    """The R1 data (the `seed` of data=custom is not used: the workload fixes its generator)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 50))
    w = rng.standard_normal(50)
    u = w / np.linalg.norm(w)
    y = np.sign(x @ w)
    return x + 0.1 * y[:, None] * u, y


def baseline() -> float:
    """96 runs one at a time; returns the compute seconds (after imports)."""
    import torch
    x_np, y_np = r1_data()
    x, y = torch.tensor(x_np), torch.tensor(y_np)
    n, d = x.shape
    t0 = time.perf_counter()
    for model in ("linear", "two_layer"):
        for lr in LRS:
            for seed in SEEDS:
                g = torch.Generator().manual_seed(seed)
                if model == "linear":
                    w = torch.zeros(d, dtype=torch.float64)
                else:  # inner weights N(0, 1/d), outer ±1 alternating, scale 1/√m, inner layer trained
                    w = torch.randn(WIDTH, d, generator=g, dtype=torch.float64) / math.sqrt(d)
                    a = torch.tensor([(-1.0) ** j for j in range(WIDTH)], dtype=torch.float64) / math.sqrt(WIDTH)
                losses, margins = [], []
                for _ in range(ITERATIONS + 1):
                    if model == "linear":
                        z = y * (x @ w)
                    else:
                        h = x @ w.T
                        z = y * (torch.relu(h) @ a)
                    losses.append(float(torch.nn.functional.softplus(-z).mean()))
                    margins.append(float(z.min()))
                    coef = -torch.sigmoid(-z) * y / n  # dF/dg_i
                    if model == "linear":
                        w = w - lr * (x.T @ coef)
                    else:
                        w = w - lr * (((coef[:, None] * (h > 0)) * a).T @ x)
    return time.perf_counter() - t0


def gdbench(executor: str, out: Path, **env_extra) -> float:
    args = ["-m", "data=custom", f"data.fn={Path(__file__).resolve()}:r1_data", "model=linear,two_layer",
            "algorithm.lr=" + ",".join(f"{v:.6g}" for v in LRS), "seed=range(4)", f"iterations={ITERATIONS}",
            f"executor={executor}", "report.enabled=false", "progress=false", f"hydra.sweep.dir={out}"]
    env = dict(os.environ, RAY_TMPDIR=tempfile.mkdtemp(prefix="gdr1", dir="/tmp"), **env_extra)
    t = time.perf_counter()
    proc = subprocess.run([str(BIN / "gdbench"), *args], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        sys.exit(f"gdbench failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return wall


def timed_baseline() -> tuple[float, float]:
    """(wall end to end in a fresh interpreter, compute only)."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--baseline-only"], capture_output=True, text=True, check=True)
    return time.perf_counter() - t, float(proc.stdout.strip().splitlines()[-1])


def main(repeats: int = 2) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="gdbench-r1-"))
    # "no preload": the local executor without the compute process forked at the command's start
    # (GDBENCH_NO_PRELOAD=1), so the driver imports torch after planning, as before it existed
    variants = {"auto": ("auto", {}), "auto, no preload": ("auto", {"GDBENCH_NO_PRELOAD": "1"}), "ray": ("ray", {})}
    walls = {"baseline": [], **{name: [] for name in variants}}
    for rep in range(repeats):
        wall, compute = timed_baseline()
        walls["baseline"].append(wall)
        print(f"baseline: {wall:.1f} s end to end ({compute:.1f} s in the loop)", flush=True)
        for i, (name, (ex, env)) in enumerate(variants.items()):
            out = tmp / f"{i}-{rep}"
            walls[name].append(gdbench(ex, out, **env))
            t = json.loads((out / "provenance.json").read_text())["sessions"][-1]["result"]
            print(f"gdbench executor={name} ({t['executor']}): {walls[name][-1]:.1f} s end to end; "
                  + ", ".join(f"{k}={v:.2f}" for k, v in t["timings"].items()), flush=True)
    best = {k: min(v) for k, v in walls.items()}
    print(f"R1 (best of {repeats}): baseline {best['baseline']:.1f} s; "
          + "; ".join(f"gdbench {name} {best[name]:.1f} s ({best['baseline'] / best[name]:.1f}x)" for name in variants))


if __name__ == "__main__":
    if "--baseline-only" in sys.argv:
        print(baseline())
    else:
        main(*[int(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("repeats=")])
