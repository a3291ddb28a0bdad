"""Engine throughput against the naive loop (autograd, one run at a time, same runs, same dtype).

    .venv/bin/python benchmarks/engine.py [device=cpu|cuda] [scale=1.0] [part=all|engine|sharpness]

Prints, per case: replica-iterations per second of the engine and of the naive loop, the speed-up,
achieved GFLOP/s (2·multiply-adds of the matrix products only) against the float64 matmul peak
measured here, peak memory, and the largest relative difference between engine and naive results
(final parameters). The cases are run eager (the default) and, except the medium linear one,
also with `compile=True` (torch.compile; its one-off compilation time is printed beside it).
The engine's and the naive loop's times are each the better of two runs; each case's peak is the
best of six matmul timings taken right before and after its engine runs. `scale` < 1 shortens
the naive loop (it times a fraction of the runs).

part=sharpness (also part of `all`): the cost of the sharpness estimates, each two-layer cell run
with sharpness.every = 0 (the baseline), 100 and 10 back to back, in five rounds: the extra wall
time over the same round's baseline, the time inside the estimates against the rest of the same
run (the engine's `sharpness_s`, which no drift between runs can skew), both as medians over the
rounds, and the Hessian-vector products per estimate; then one Hessian-vector product of the
closed form (the engine's) against torch.func's jvp of grad, vmapped over the replicas, on the
same cell (best of five alternating batches each).
Sets the glibc allocator variables of docs/design.md §8 by re-executing itself (as the Ray workers do).
"""
import math
import os
import resource
import sys
import time

if "MALLOC_MMAP_THRESHOLD_" not in os.environ:  # as the scheduler's workers: set at process start
    from gdbench.scheduler import WORKER_ENV
    os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, **WORKER_ENV})

import numpy as np
import torch

from gdbench import algorithms, data, engine, losses, models, reference
from gdbench.sharpness import SharpnessEstimator, SharpnessSettings

args = dict(a.split("=", 1) for a in sys.argv[1:])
DEVICE = args.get("device", "cpu")
SCALE = float(args.get("scale", "1.0"))
PART = args.get("part", "all")


def matmul_peak(device, blocks=3):
    """float64 GFLOP/s of a 2048² matmul: the best of `blocks` timings of 2 products each, since
    a peak is what the machine can do (a shared VM's throughput drifts by ±20% over seconds, and
    one low timing would flatter every "% of peak" below)."""
    a = torch.randn(2048, 2048, dtype=torch.float64, device=device)
    a @ a
    best = 0.0
    for _ in range(blocks):
        sync(device)
        t = time.perf_counter()
        for _ in range(2):
            a @ a
        sync(device)
        best = max(best, 2 * 2 * 2048**3 / (time.perf_counter() - t) / 1e9)
    return best


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


_naive_cache = {}


def case(name, ds, model, R, T, compile=False):
    """Engine vs naive loop on R runs (step sizes × seeds). With compile=True the engine runs
    through torch.compile; its one-off compilation is timed separately (`compile_s`), and the
    naive loop of the same runs is not re-timed."""
    lrs = np.repeat(np.logspace(-2, 3, max(R // 8, 1)), 8)[:R]
    seeds = np.tile(np.arange(8), R // 8 + 1)[:R]
    kw = dict(model=model, loss=losses.Logistic(), algorithm=algorithms.GD())
    t = time.perf_counter()
    # warm-up (and, with compile, the compilation: the same shapes as the timed run)
    engine.run_cell(ds.x, ds.y, lrs=lrs, seeds=seeds, iterations=5, device=DEVICE, compile=compile, **kw)
    sync(DEVICE)
    compile_s = time.perf_counter() - t
    # The peak this case is compared with is measured right before and after its engine runs
    # (the better of the two), so that the VM's drift does not land between the two figures.
    peak_before = matmul_peak(DEVICE)
    t_engine = math.inf
    for _ in range(2):  # the better of two runs, as the peak is the best of several timings
        t = time.perf_counter()
        res = engine.run_cell(ds.x, ds.y, lrs=lrs, seeds=seeds, iterations=T, device=DEVICE, keep_params=True,
                              record=engine.RecordSchedule(dense=100, log_points=100), compile=compile, **kw)
        sync(DEVICE)
        t_engine = min(t_engine, time.perf_counter() - t)
    peak = max(peak_before, matmul_peak(DEVICE))
    key = (id(ds), model, R, T)
    if key not in _naive_cache:
        # the first n_naive runs, timed twice (the better time, as for the engine) and scaled to R
        n_naive = max(1, int(round(R * SCALE)))
        t_naive = math.inf
        for _ in range(2):
            t = time.perf_counter()
            refs = [reference.run_one(ds.x, ds.y, lr=lrs[r], seed=int(seeds[r]), iterations=T, **kw)
                    for r in range(n_naive)]
            t_naive = min(t_naive, (time.perf_counter() - t) * R / n_naive)
        _naive_cache[key] = refs, t_naive
    refs, t_naive = _naive_cache[key]
    worst = 0.0
    for r, ref in enumerate(refs):
        for k, v in ref["params"].items():
            e = res.final_params[k][r]
            worst = max(worst, float(np.max(np.abs(e - v)) / max(np.max(np.abs(v)), 1e-300)))
    n, d = ds.x.shape
    gflops = model.matmul_flops(R, n, d) * T / t_engine / 1e9
    return dict(case=name + (" [compile]" if compile else ""), R=R, T=T, engine_rips=R * T / t_engine,
                naive_rips=R * T / t_naive, speedup=t_naive / t_engine, gflops=gflops, peak=peak,
                max_rel_diff=worst, compile_s=compile_s if compile else None)


def sharpness_cost(name, ds, model, R, T, loss, repeats=5):
    """The cost of the estimates, two ways, over `repeats` rounds that each run the same cell with
    sharpness.every = 0, 100 and 10 back to back: the extra wall time over the round's baseline
    (median over the rounds: a round's three runs see the same machine speed, which on this VM
    drifts by tens of percent over minutes), and the time inside the estimates against the rest of
    the same run (the engine's `sharpness_s`; median over the rounds), which no drift between runs
    can skew. Also the Hessian-vector products per estimate."""
    lrs = np.repeat(np.logspace(-2, 1, max(R // 4, 1)), 4)[:R]
    seeds = np.tile(np.arange(4), R // 4 + 1)[:R]
    kw = dict(model=model, loss=loss, algorithm=algorithms.GD(), lrs=lrs, seeds=seeds, device=DEVICE)
    engine.run_cell(ds.x, ds.y, iterations=5, sharpness=SharpnessSettings(every=2), **kw)  # warm-up
    walls, extra, share, products = {0: [], 100: [], 10: []}, {100: [], 10: []}, {100: [], 10: []}, {}
    for _ in range(repeats):
        for every in walls:
            t = time.perf_counter()
            res = engine.run_cell(ds.x, ds.y, iterations=T, sharpness=SharpnessSettings(every=every), **kw)
            sync(DEVICE)
            walls[every].append(time.perf_counter() - t)
            if every:
                extra[every].append(walls[every][-1] / walls[0][-1] - 1)
                share[every].append(res.sharpness_s / (walls[every][-1] - res.sharpness_s))
                products[every] = res.hessian_products / len(SharpnessSettings(every=every).iterations(T))
    median = {every: float(np.median(w)) for every, w in walls.items()}
    return dict(case=f"{name} {loss.name}", R=R, T=T, base=median[0], every100=median[100], every10=median[10],
                extra100=float(np.median(extra[100])), extra10=float(np.median(extra[10])),
                share100=float(np.median(share[100])), share10=float(np.median(share[10])),
                per_estimate100=products[100], per_estimate10=products[10])


def hvp_routes(name, ds, model, R, loss, repeat=20):
    """Seconds per batched Hessian-vector product: the closed form against torch.func."""
    dtype = torch.float64
    X = torch.as_tensor(ds.x, dtype=dtype, device=DEVICE)
    Y = torch.as_tensor(ds.y, dtype=dtype, device=DEVICE)
    trained, fixed = model.init(X.shape[1], list(range(R)), dtype=dtype, device=DEVICE)
    est = SharpnessEstimator(model, loss, SharpnessSettings(every=1), list(range(R)), trained)
    V = est.warm
    closed = est.hessian_operator(trained, fixed, X, Y)(None)

    def loss_of_one(params, fixed_one):
        g, _ = model.forward({k: v.unsqueeze(0) for k, v in params.items()},
                             {k: v.unsqueeze(0) for k, v in fixed_one.items()}, X)
        return loss.value(Y * g[0]).mean()

    def hvp_of_one(params, fixed_one, v):
        return torch.func.jvp(lambda p: torch.func.grad(loss_of_one)(p, fixed_one), (params,), (v,))[1]

    keys = sorted(trained)
    batched = torch.func.vmap(hvp_of_one)
    plain = {k: v.contiguous() for k, v in trained.items()}  # functorch wants ordinary strides

    def functorch(Vflat):  # flat = the trained tensors in sorted-name order (the models' hvp_operator)
        out, at = {}, 0
        for k in keys:
            size = plain[k][0].numel()
            out[k] = Vflat[:, at:at + size].reshape(plain[k].shape)
            at += size
        products = batched(plain, fixed, out)
        return torch.cat([products[k].reshape(R, -1) for k in keys], dim=1)

    agree = float((closed(V) - functorch(V)).abs().max() / closed(V).abs().max())
    times = {"closed": math.inf, "torch.func": math.inf}
    for _ in range(5):  # alternating batches of `repeat` calls, the best batch of each
        for label, fn in (("closed", closed), ("torch.func", functorch)):
            fn(V)
            sync(DEVICE)
            t = time.perf_counter()
            for _ in range(repeat):
                fn(V)
            sync(DEVICE)
            times[label] = min(times[label], (time.perf_counter() - t) / repeat)
    return dict(case=f"{name} {loss.name}", R=R, closed=times["closed"], func=times["torch.func"], agree=agree)


def sharpness_main(small, medium, relu32, tanh100):
    tanh32 = models.TwoLayer(width=32, activation="tanh")
    cases = [("(a) two-layer relu m=32", small, relu32, 64, 2000, losses.Logistic()),
             ("(a) two-layer tanh m=32", small, tanh32, 64, 2000, losses.Squared()),
             ("(b) two-layer tanh m=100", medium, tanh100, 32, 300, losses.Squared())]
    rows = [sharpness_cost(*c) for c in cases]
    print("\nsharpness cost: the same cell with sharpness.every = 0 (baseline), 100, 10, in 5 rounds of the "
          "three (targets: ≤ 15% extra at 100, ≤ 100% at 10). Times are medians over the rounds; extra = the "
          "median of each round's time / its baseline − 1; in-run = time in the estimates / the rest of the "
          "same run (median)")
    print(f"{'case':44} {'R':>4} {'T':>5} {'baseline s':>10} {'every=100 s':>11} {'extra':>7} {'in-run':>7} "
          f"{'every=10 s':>10} {'extra':>7} {'in-run':>7} {'HVPs/estimate (100, 10)':>24}")
    for r in rows:
        print(f"{r['case']:44} {r['R']:4d} {r['T']:5d} {r['base']:10.2f} {r['every100']:11.2f} "
              f"{100 * r['extra100']:6.1f}% {100 * r['share100']:6.1f}% {r['every10']:10.2f} "
              f"{100 * r['extra10']:6.1f}% {100 * r['share10']:6.1f}% "
              f"{r['per_estimate100']:11.1f} {r['per_estimate10']:11.1f}")
    print("\nHessian-vector product, one batched call: closed form (the engine's) against torch.func "
          "(vmap over replicas of jvp(grad))")
    print(f"{'case':44} {'R':>4} {'closed ms':>10} {'torch.func ms':>14} {'ratio':>6} {'max rel diff':>13}")
    for c in cases:
        r = hvp_routes(c[0], c[1], c[2], c[3], c[5])
        print(f"{r['case']:44} {r['R']:4d} {1e3 * r['closed']:10.2f} {1e3 * r['func']:14.2f} "
              f"{r['func'] / r['closed']:5.1f}x {r['agree']:13.2e}")


def main():
    torch.set_num_threads(os.cpu_count() if DEVICE == "cpu" else 1)
    small = data.gaussian(n=100, d=50, margin=0.05, seed=0)
    medium = data.gaussian(n=1000, d=100, margin=0.05, seed=0)
    relu32, relu100, tanh100 = (models.TwoLayer(width=32, activation="relu"),
                                models.TwoLayer(width=100, activation="relu"),
                                models.TwoLayer(width=100, activation="tanh"))
    if PART == "sharpness":
        return sharpness_main(small, medium, relu32, tanh100)
    rows = [case("(a) linear n=100 d=50", small, models.Linear(), 256, 2000),
            case("(a) linear n=100 d=50", small, models.Linear(), 256, 2000, compile=True),
            case("(a) two-layer relu m=32", small, relu32, 256, 2000),
            case("(a) two-layer relu m=32", small, relu32, 256, 2000, compile=True),
            case("(b) linear n=1000 d=100", medium, models.Linear(), 32, 1000),
            case("(b) two-layer relu m=100", medium, relu100, 32, 1000),
            case("(b) two-layer relu m=100", medium, relu100, 32, 1000, compile=True),
            case("(b) two-layer tanh m=100", medium, tanh100, 32, 1000),
            case("(b) two-layer tanh m=100", medium, tanh100, 32, 1000, compile=True)]
    print(f"device={DEVICE} threads={torch.get_num_threads()}; peak = float64 GFLOP/s of a 2048² matmul, "
          f"best of 6 timings around each case's engine runs")
    print(f"{'case':38} {'R':>4} {'T':>5} {'engine r-it/s':>14} {'naive r-it/s':>13} {'speed-up':>9} "
          f"{'GFLOP/s':>8} {'peak':>6} {'% peak':>7} {'max rel diff':>13}")
    for r in rows:
        print(f"{r['case']:38} {r['R']:4d} {r['T']:5d} {r['engine_rips']:14.0f} {r['naive_rips']:13.0f} "
              f"{r['speedup']:8.1f}x {r['gflops']:8.2f} {r['peak']:6.1f} {100 * r['gflops'] / r['peak']:6.1f}% "
              f"{r['max_rel_diff']:13.2e}"
              + (f"   (one-off compilation + 5 iterations: {r['compile_s']:.1f} s)" if r["compile_s"] else ""))
    if PART == "all":
        sharpness_main(small, medium, relu32, tanh100)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"peak resident memory: {rss:.0f} MiB" + (
        f"; peak CUDA memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB" if DEVICE.startswith("cuda") else ""))


if __name__ == "__main__":
    main()
