"""One cell = one batched tensor program (docs/design.md §3). Pure torch: no Ray, Hydra or pandas here.

A cell is R runs that share the data, the model shape, the loss and the algorithm kind, and differ
in step size and initialization seed. Every parameter tensor carries a leading replica axis, so one
iteration for all R runs is one forward GEMM and one backward GEMM.

Per iteration t = 0..T the engine computes the margins z = y·g(x; W_t), the loss in the log domain
(log F = logsumexp_i log ℓ(z_i) − log n), the algorithm's direction, the docs/design.md §2 online metrics,
and, at the recorded iterations, a trajectory row per replica; then it steps. A replica whose
parameters or margins become non-finite is frozen at its last finite state and marked diverged at
that iteration; the others go on undisturbed.

Perceptron companion (docs/design.md §1, the reduction): for GD with step γ and a model that is
1-homogeneous in its trained parameters, U_t = W_t/γ obeys U_{t+1} = U_t + (1/n) Σ σ(−γ z_i(U_t))
y_i ∇g_i(U_t), whose γ → ∞ limit is the batch perceptron from U_0 — provided the margins
γ z_i(U_0) diverge, i.e. U_0 is held fixed. So with `companion=True` the perceptron starts at the
model's initial point Ŵ_0 and GD at W_0 = γ·Ŵ_0, and `perceptron_gap` = ‖W_t/γ − Ŵ_t‖ / ‖Ŵ_t‖ → 0
as γ grows. For the linear model from 0 both start at 0, exactly as in Tyurin 2025.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from gdbench import checks
from gdbench.algorithms import BatchPerceptron, _expand
from gdbench.metrics import OnlineMetrics, advance
from gdbench.sharpness import SharpnessEstimator, SharpnessSettings, run_metrics as sharpness_metrics

DTYPES = {"float64": torch.float64, "float32": torch.float32}

TRAJECTORY_COLUMNS = ("loss", "log_loss", "accuracy", "n_misclassified", "min_margin",
                      "param_norm", "grad_norm")
COMPANION_COLUMNS = ("perceptron_gap", "misclassified_agree")


@dataclass(frozen=True)
class RecordSchedule:
    """Which iterations get a trajectory row: every t < `dense`, then `log_points` log-spaced
    iterations up to T, and always T (or the early-stop iteration)."""

    dense: int = 100  # iterations recorded one by one from t = 0
    log_points: int = 100  # log-spaced iterations recorded after the dense part; 0 = none

    def iterations(self, T: int) -> np.ndarray:
        its = set(range(min(self.dense, T + 1)))
        if self.log_points > 0 and T >= self.dense:
            its.update(np.unique(np.geomspace(max(self.dense, 1), T, self.log_points).round().astype(int)))
        its.add(T)
        return np.array(sorted(its), dtype=np.int64)


@dataclass
class CellResult:
    """Plain arrays: `metrics[name]` is (R,); `trajectory[name]` is (K, R) at `trajectory_iter`
    (K,), NaN where the replica had already diverged."""

    lr: np.ndarray
    seed: np.ndarray
    metrics: dict[str, np.ndarray]
    trajectory_iter: np.ndarray
    trajectory: dict[str, np.ndarray]
    iterations_run: int
    wall_time_s: float
    final_params: dict[str, np.ndarray] = field(default_factory=dict)
    hessian_products: int = 0  # batched Hessian-vector products of the sharpness estimates
    sharpness_s: float = 0.0  # wall time spent in the sharpness estimates (part of wall_time_s)

    def run_rows(self) -> list[dict]:
        """One dict per replica: lr, seed and every per-run metric (None where NaN)."""
        rows = []
        for r in range(len(self.lr)):
            row = {"lr": float(self.lr[r]), "seed": int(self.seed[r]), "iterations_run": self.iterations_run}
            for k, v in self.metrics.items():
                value = v[r].item() if hasattr(v[r], "item") else v[r]
                row[k] = None if isinstance(value, float) and math.isnan(value) else value
            rows.append(row)
        return rows

    def trajectory_columns(self) -> dict[str, np.ndarray]:
        """Long format: `replica` (index into lr/seed), `iter` and one array per column, with the
        rows of diverged replicas after their divergence left out."""
        K, R = len(self.trajectory_iter), len(self.lr)
        keep = ~np.isnan(self.trajectory["param_norm"])  # NaN exactly where a replica was not live
        out = {"replica": np.broadcast_to(np.arange(R), (K, R))[keep],
               "iter": np.broadcast_to(self.trajectory_iter[:, None], (K, R))[keep]}
        for k, v in self.trajectory.items():
            out[k] = v[keep]
        return out


def _to_tensor(a, dtype, device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


def _validate(x, y, lrs, seeds, iterations, model, algorithm, companion):
    checks.dataset(x, y, "run_cell's data (x, y)")
    for lr in lrs.tolist():
        checks.step_size(lr)
    if len(lrs) != len(seeds) or len(lrs) == 0:
        raise ValueError(f"lrs and seeds: expected equal non-zero lengths, got {len(lrs)} and {len(seeds)}")
    checks.iterations(int(iterations) if isinstance(iterations, np.integer) else iterations)
    if companion:
        checks.companion(algorithm.name, model)


def _norm(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-replica Euclidean norm over all tensors of a parameter dict, as sqrt(Σ v²) (so, like
    torch's vector_norm, it is inf once a float64 entry passes ~1e154: the divergence check
    relies on that)."""
    total = None
    for v in params.values():
        sq = torch.square(v)  # keeps v's memory layout
        # Sum the non-replica dims outermost-first in memory order: for the d-major two-layer W
        # that is faster than one vector_norm over (m, d), and it runs every iteration.
        for dim in sorted(range(1, v.dim()), key=v.stride, reverse=True):
            sq = sq.sum(dim, keepdim=True)
        sq = sq.reshape(v.shape[0])
        total = sq if total is None else total + sq
    return torch.sqrt(total)


def _finite(x: torch.Tensor) -> torch.Tensor:
    """isfinite in two elementwise ops instead of isfinite's four (NaN < inf is False)."""
    return x.abs() < math.inf


def _log_fast_bound(dtype) -> float:
    """|log F| below this keeps F inside (tiny·2⁶⁰, max/2⁻⁶⁰), where log(mean ℓ) is exact to
    rounding (≈ 666 in float64); outside it the engine takes the log-domain route."""
    finfo = torch.finfo(dtype)
    return min(-math.log(finfo.tiny * 2**60), math.log(finfo.max / 2**60))


def _iteration(model, loss, algorithm, trained, fixed, state, X, Y, lr, active, diverged_at, counters,
               log_eps, tt, started):
    """One iteration t for all replicas, as one tensor program with no host synchronization (so
    that torch.compile can take it whole). tt is t broadcast over the replicas; started is a
    boolean 0-d tensor, t > 0.

    Returns a dict: the margins `z`; `active`/`diverged_at` after the margin check (finite
    parameters can still overflow the margins; a row sum is non-finite iff some margin is, or the
    margins are beyond ~1e306: one reduction instead of isfinite on (R, n)); the log of the mean
    loss `log_F` and `F_fast` (whether it is exact for every replica, see log_mean_loss);
    `counters`, the online metrics advanced with log F; `n_mis` and `min_margin`; the direction
    `D`; and, for the step, the candidate next iterate `new` with its norm `new_norm` (which is
    ‖W_{t+1}‖ for the next recorded row), the algorithm's `state`, and `active_next`/
    `diverged_next` after the parameter check (a norm that is not finite: in float64 that also
    catches entries beyond ~1e154, whose squares overflow)."""
    g, cache = model.forward(trained, fixed, X)
    z = Y * g
    ok = _finite(z.sum(-1))
    diverged_at = torch.where(active & ~ok, tt, diverged_at)
    active = active & ok
    F = loss.value(z).mean(-1)
    log_F = torch.log(F)
    n_mis, min_margin = (z <= 0).sum(-1), z.min(-1).values
    D = model.vjp(trained, fixed, X, algorithm.coefficients(z, Y, loss), cache)
    new, new_state = algorithm.step(trained, D, lr, state)
    new_norm = _norm(new)
    new_ok = _finite(new_norm)
    return {"z": z, "active": active, "diverged_at": diverged_at, "log_F": log_F,
            "F_fast": (log_F.abs() < _log_fast_bound(z.dtype)).all(),
            "counters": advance(counters, started, tt, log_eps, log_F, n_mis, min_margin, active),
            "n_mis": n_mis, "min_margin": min_margin, "D": D, "new": new, "new_norm": new_norm,
            "state": new_state, "active_next": active & new_ok,
            "diverged_next": torch.where(active & ~new_ok, tt + 1, diverged_at)}


def _two_iterations(model, loss, algorithm, trained, fixed, state, X, Y, lr, active, diverged_at, counters,
                    log_eps, tt, started):
    """Iterations t and t + 1 as one program: the second starts from the first's candidate
    iterate, state and counters. For compile=True, where a call's fixed cost (dynamo's guards on
    ~20 inputs, the Python around them) is a visible share of a small two-layer iteration; the
    pair halves it (benchmarks/engine.py measures the effect). The second iteration is what a call at t + 1 would
    return as long as the first froze no replica and kept the fast log-loss; otherwise the
    engine discards it and goes on one iteration at a time (as it does at the end of the run)."""
    first = _iteration(model, loss, algorithm, trained, fixed, state, X, Y, lr, active, diverged_at, counters,
                       log_eps, tt, started)
    second = _iteration(model, loss, algorithm, first["new"], fixed, first["state"], X, Y, lr, first["active_next"],
                        first["diverged_next"], first["counters"], log_eps, tt + 1, torch.ones_like(started))
    return first, second


def run_cell(x, y, *, model, loss, algorithm, lrs: Sequence[float], seeds: Sequence[int],
             iterations: int, eps: Sequence[float] = (1e-2, 1e-4, 1e-8),
             record: RecordSchedule = RecordSchedule(), companion: bool = False,
             stop_loss: float | None = None, check_every: int = 100,
             device: str = "cpu", dtype: str = "float64", keep_params: bool = False,
             direction=None, compile: bool = False,
             sharpness: SharpnessSettings = SharpnessSettings()) -> CellResult:
    """Run R = len(lrs) replicas of `algorithm` on (x, y) together for `iterations` steps.

    direction: a reference direction u (d,) for the linear model, e.g. the hard-margin SVM
    direction; then the trajectory records `direction_error` = ‖W_t/‖W_t‖ − u/‖u‖‖ and the runs
    get `final_direction_error` (Soudry et al. 2018: ~1/log t for small steps).

    stop_loss: stop early once every live replica has separated the data and has F ≤ stop_loss
    (checked every `check_every` iterations; None = run the whole budget).

    sharpness: with `every` > 0, the trajectory gets `sharpness` = λ_max(∇²F(W_t)) at t = 0,
    every, 2·every, … and at the last iteration (those iterations are recorded; NaN at the other
    recorded ones), and the runs get gdbench/sharpness.py's columns (initial, max and final
    sharpness; t_eos, frac_above_eos and sharpness_ratio_max against the algorithm's stability
    threshold, 2/η for GD).

    compile: run the per-iteration tensor program (`_iteration`: forward, loss, direction, step,
    divergence checks, online metrics) through torch.compile, which fuses its elementwise passes
    and small ops, two iterations per call (`_two_iterations`) while every replica is live and
    the loss is in the fast range. Worth it for long runs of small cells, where those passes and
    ops are most of the time (benchmarks/engine.py measures it; the README's speed section has
    the figures). It costs a compilation per distinct cell shape (and another once a replica
    diverges or the loss underflows; cached on disk by torch across processes) and needs a C++
    compiler on CPU or Triton on CUDA. Results agree with the eager path to rounding.
    """
    start = time.perf_counter()
    x_np, y_np = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    lrs_np, seeds_np = np.asarray(lrs, dtype=np.float64), np.asarray(seeds, dtype=np.int64)
    _validate(x_np, y_np, lrs_np, seeds_np, iterations, model, algorithm, companion)
    checks.dtype(dtype)
    tdtype = DTYPES[dtype]
    X, Y = _to_tensor(x_np, tdtype, device), _to_tensor(y_np, tdtype, device)
    lr = _to_tensor(lrs_np, tdtype, device)
    n, d = X.shape
    R, T = len(lrs_np), int(iterations)
    log_n = math.log(n)

    trained, fixed = model.init(d, seeds_np.tolist(), dtype=tdtype, device=device)
    if direction is not None:
        if list(trained) != ["v"]:
            raise ValueError(f"direction: a reference direction needs the linear model, got model={model.name!r}")
        u = _to_tensor(np.asarray(direction, dtype=np.float64).reshape(-1), tdtype, device)
        if u.shape[0] != d or not bool(torch.isfinite(u).all()) or float(u.norm()) == 0:
            raise ValueError(f"direction: expected a finite non-zero vector of length d={d}, got shape {tuple(u.shape)}")
        u = u / u.norm()
    state = algorithm.init_state(trained)
    sharp = SharpnessEstimator(model, loss, sharpness, seeds_np.tolist(), trained) if sharpness.enabled else None
    if companion:
        perceptron = BatchPerceptron(lr=1.0)
        comp = trained
        trained = {k: v * _expand(lr, v) for k, v in trained.items()}  # W_0 = γ·Ŵ_0
        ones = torch.ones_like(lr)
        agree_count = torch.zeros(R, dtype=torch.long, device=device)
        max_gap = torch.full((R,), -math.inf, dtype=tdtype, device=device)

    def evaluate(z, D_norm, scale, param_norm, log_loss=None, n_mis=None, min_margin=None) -> dict[str, torch.Tensor]:
        """The trajectory columns at the current iterate (only at recorded iterations), from the
        norms ‖D‖ and ‖W_t‖; the loop passes the log-loss, misclassified count and minimum
        margin it already has."""
        row = {"log_loss": log_mean_loss(z) if log_loss is None else log_loss,
               "n_misclassified": ((z <= 0).sum(-1) if n_mis is None else n_mis).to(tdtype),
               "min_margin": z.min(-1).values if min_margin is None else min_margin,
               "param_norm": param_norm, "grad_norm": D_norm if scale is None else D_norm * scale}
        if companion:
            row["perceptron_gap"] = gap
            row["misclassified_agree"] = agree.to(tdtype)
        if direction is not None:
            v = trained["v"]
            row["direction_error"] = torch.linalg.vector_norm(v / v.norm(dim=1, keepdim=True) - u, dim=1)
        return row

    fast_bound = _log_fast_bound(tdtype)

    def log_mean_loss(z):
        """log F = log((1/n) Σ_i ℓ(z_i)). Fast route: the log of the mean, exact to rounding while
        F is comfortably inside the dtype's range; else (a loss below ~1e-289 or above ~1e289 in
        float64, or non-finite) the log-domain route logsumexp_i log ℓ(z_i) − log n (docs/design.md §1),
        which stays finite where F underflows."""
        log_F = torch.log(loss.value(z).mean(-1))
        fast = log_F.abs() < fast_bound
        if bool(fast.all()):
            return log_F
        return log_mean_loss_exact(z, log_F)

    def log_mean_loss_exact(z, log_F):
        # row by row, so that a replica's numbers never depend on the others in its cell
        return torch.where(log_F.abs() < fast_bound, log_F, torch.logsumexp(loss.log_value(z), dim=-1) - log_n)

    metrics = OnlineMetrics(R, eps, device=device, dtype=tdtype)
    active = torch.ones(R, dtype=torch.bool, device=device)
    all_active = True  # host-side copy of active.all(), so the common case pays no masking
    diverged_at = torch.full((R,), -1, dtype=torch.long, device=device)
    record_at = set(record.iterations(T).tolist()) | sharpness.iterations(T)
    sharp_at = sharpness.iterations(T)
    rec_iters, rec_rows = [], []
    nan = torch.full((R,), math.nan, dtype=tdtype, device=device)
    t = 0
    # Compiled, the iterations run in pairs while every replica is live and the loss is in the
    # fast range (see _two_iterations); the single-iteration program is compiled only if not.
    step_fn = torch.compile(_iteration, dynamic=False) if compile else _iteration
    pair_fn = torch.compile(_two_iterations, dynamic=False) if compile else None
    param_norm = _norm(trained)  # ‖W_t‖; after each step the program's norm of the new iterate
    started = {b: torch.tensor(b, device=device) for b in (False, True)}
    pending = []  # iteration t's program output, when the previous call computed it ahead
    while True:
        # the candidate next iterate is computed with the rest; it is discarded at the last t
        counters = metrics.state
        if not pending:
            args = (model, loss, algorithm, trained, fixed, state, X, Y, lr, active, diverged_at, counters,
                    metrics.log_eps, torch.full_like(diverged_at, t), started[t > 0])
            # (no input may be passed twice: dynamo guards against aliased inputs and would recompile)
            pending = list(pair_fn(*args)) if pair_fn is not None else [step_fn(*args)]
        it = pending.pop(0)
        z, active, diverged_at = it["z"], it["active"], it["diverged_at"]
        metrics.state = it["counters"]
        if all_active and not bool(active.all()):
            all_active = False
        log_loss, n_mis, min_margin = it["log_F"], it["n_mis"], it["min_margin"]
        if not bool(it["F_fast"]):  # rare: redo the log loss, and the metrics with it, exactly
            log_loss = log_mean_loss_exact(z, it["log_F"])
            metrics.state = counters
            metrics.update(t, log_loss, n_mis, min_margin, active)
            # An iteration computed ahead grew from the counters just replaced. Once the loss
            # leaves the fast range it tends to stay out, so single iterations from here on.
            pending.clear()
            pair_fn = None
        if companion:
            gc, cache_c = model.forward(comp, fixed, X)
            zc = Y * gc
            gap = _norm({k: trained[k] / _expand(lr, trained[k]) - comp[k] for k in trained})
            comp_norm = _norm(comp)
            # ‖W_t/γ − Ŵ_t‖/‖Ŵ_t‖, and 0 when both are 0 (linear model at t = 0)
            gap = torch.where(gap == 0, 0.0, gap / comp_norm)
            agree = (torch.sign(z) == torch.sign(zc)).all(-1)
            agree_count += (active & agree).long()
            max_gap = torch.where(active, torch.fmax(max_gap, gap), max_gap)

        stop = t == T
        if not stop and stop_loss is not None and t > 0 and t % check_every == 0:
            done = ~active | ((min_margin > 0) & (log_loss <= math.log(stop_loss)))
            stop = bool(done.all())
        if t in record_at or stop:
            row = evaluate(z, _norm(it["D"]), algorithm.grad_scale(z, loss), param_norm, log_loss, n_mis, min_margin)
            if sharp is not None:  # at W_t; also at an early stop, the run's last iterate
                row["sharpness"] = sharp.estimate(trained, fixed, X, Y) if (t in sharp_at or stop) else nan
            rec_iters.append(t)
            rec_rows.append(row if all_active else {k: torch.where(active, v, nan) for k, v in row.items()})
        if stop:
            break

        # A replica whose parameters diverged stays frozen at its last finite iterate, which is
        # then its final state.
        new, state = it["new"], it["state"]
        active, diverged_at = it["active_next"], it["diverged_next"]
        if all_active and not bool(active.all()):
            all_active = False
        trained = new if all_active else {k: torch.where(_expand(active, v), new[k], v)
                                          for k, v in trained.items()}
        param_norm = it["new_norm"]  # right for every live replica; frozen ones are recorded as NaN
        if companion:
            cc = perceptron.coefficients(zc, Y, loss)
            comp, _ = perceptron.step(comp, model.vjp(comp, fixed, X, cc, cache_c), ones, None)
        if not all_active:  # an iteration computed ahead started from an unfrozen iterate
            pending.clear()
            pair_fn = None
        t += 1

    # The final state: the last iterate of live replicas, the last finite one of diverged ones.
    g, cache = model.forward(trained, fixed, X)
    z = Y * g
    D = model.vjp(trained, fixed, X, algorithm.coefficients(z, Y, loss), cache)
    final = {k: v.cpu().numpy() for k, v in evaluate(z, _norm(D), algorithm.grad_scale(z, loss), _norm(trained)).items()}
    out = metrics.finalize()
    out["final_log_loss"] = final["log_loss"]
    with np.errstate(over="ignore"):
        out["final_loss"] = np.exp(final["log_loss"])
    out["final_accuracy"] = 1.0 - final["n_misclassified"] / n
    out["final_min_margin"] = final["min_margin"]
    out["final_param_norm"] = final["param_norm"]
    out["final_grad_norm"] = final["grad_norm"]
    p = model.homogeneity
    with np.errstate(divide="ignore", invalid="ignore"):
        out["final_normalized_margin"] = (final["min_margin"] / final["param_norm"] ** p
                                          if p is not None else np.full(R, np.nan))
    div = diverged_at.cpu().numpy().astype(np.float64)
    out["diverged_at"] = np.where(div < 0, np.nan, div)
    if direction is not None:
        out["final_direction_error"] = final["direction_error"]
    out["status"] = np.where(div < 0, "ok", "diverged").astype(object)
    traj = {k: torch.stack([r[k] for r in rec_rows]).cpu().numpy() for k in rec_rows[0]}
    with np.errstate(over="ignore"):  # a loss beyond float range is inf; log_loss keeps the value
        traj["loss"] = np.exp(traj["log_loss"])
    traj["accuracy"] = 1.0 - traj["n_misclassified"] / n
    if sharp is not None:
        out.update(sharpness_metrics(np.array(rec_iters), traj["sharpness"], algorithm.stability_threshold(lrs_np)))
    if companion:
        ran = metrics.state["last_t"].cpu().numpy() + 1  # iterations each replica was live
        gap = traj["perceptron_gap"]
        live = ~np.isnan(gap)
        last_live = len(gap) - 1 - np.argmax(live[::-1], axis=0)  # last recorded live row
        out["final_perceptron_gap"] = np.where(live.any(0), gap[last_live, np.arange(R)], np.nan)
        out["max_perceptron_gap"] = np.where(ran > 0, max_gap.cpu().numpy(), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["misclassified_agree_frac"] = np.where(ran > 0, agree_count.cpu().numpy() / ran, np.nan)
    return CellResult(lr=lrs_np, seed=seeds_np, metrics=out, trajectory_iter=np.array(rec_iters),
                      trajectory=traj, iterations_run=t, wall_time_s=time.perf_counter() - start,
                      final_params={k: v.cpu().numpy() for k, v in trained.items()} if keep_params else {},
                      hessian_products=sharp.hvps if sharp is not None else 0,
                      sharpness_s=sharp.seconds if sharp is not None else 0.0)
