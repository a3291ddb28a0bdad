"""The sharpness λ_max(∇²F(W_t)) of every replica of a cell, by batched Lanczos (docs/sharpness.md).

F(W) = (1/n) Σ_i ℓ(z_i), z_i = y_i g(x_i; W), has the Hessian

    ∇²F = (1/n) Σ_i ℓ''(z_i) y_i² ∇g_i ∇g_iᵀ  +  (1/n) Σ_i ℓ'(z_i) y_i ∇²g_i,

so a Hessian-vector product is the model's `hvp` with c = ℓ'(z)y/n and w = ℓ''(z)y²/n: closed form,
batched over the replicas like the engine's gradient (benchmarks/engine.py compares it with
torch.func's jvp-of-grad). The derivatives are taken with respect to the trained parameters only.

The top eigenvalue comes from Lanczos with full reorthogonalization, run on all replicas at once:
step j gives each replica a (j+1)x(j+1) tridiagonal matrix whose largest eigenvalue θ (the Ritz
value) approaches λ_max from below. With the Ritz residual ρ = ‖H y − θ y‖ = β_j |s_j| and the
gap δ to the next Ritz value, min(ρ, ρ²/δ) estimates the error of θ: an eigenvalue lies within ρ
of θ, and Kato–Temple bounds the error by ρ²/gap when the gap is the one to the rest of the
spectrum. δ overstates that gap (the second Ritz value is below the second eigenvalue), so this is
an estimate, not a bound: on a dense spectrum an estimate can stop a few times `tol` short of
λ_max. A replica stops at the first step ≥ MIN_STEPS where the estimate is ≤ `tol`·|θ|, or when
its Krylov space is exhausted (β_j = 0: θ is an exact eigenvalue), or
after `iters` steps; its value is frozen there, so it does not depend on the replicas that share
its cell. Each estimate starts from the previous estimate's Ritz vector of the same replica
(warm start); the first from a Gaussian vector drawn from the replica's seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gdbench import checks

# Lanczos steps every estimate takes before it may stop: a warm start that is nearly an
# eigenvector of a non-top eigenvalue (the top one can change place between estimates) has a
# small residual at step 1; the steps after it reach the rest of the spectrum. The first estimate
# starts from a random vector, whose few first Ritz values can sit well apart from a top
# eigenvalue not yet found, so that the error bound below would stop it too early: it takes more.
MIN_STEPS, MIN_STEPS_COLD = 3, 10
START_SEED_OFFSET = 7919  # the start vector's generator: seed + this, apart from the init's stream


@dataclass(frozen=True)
class SharpnessSettings:
    """sharpness.every: estimate at t = 0, every, 2·every, … and at the last iteration (0 = off);
    iters: most Lanczos steps (Hessian-vector products) per estimate; tol: the estimated relative
    error of the eigenvalue at which an estimate stops (see the module docstring)."""

    every: int = 0
    iters: int = 20
    tol: float = 1e-3

    def __post_init__(self):
        checks.sharpness(self.every, self.iters, self.tol)

    @property
    def enabled(self) -> bool:
        return self.every > 0

    def iterations(self, T: int) -> set[int]:
        return set(range(0, T + 1, self.every)) | {T} if self.enabled else set()


def _flat(params: dict, keys) -> torch.Tensor:
    """(R, P): each replica's trained tensors as one vector."""
    return torch.cat([params[k].reshape(params[k].shape[0], -1) for k in keys], dim=1)


def _unflat(vec: torch.Tensor, like: dict, keys) -> dict:
    out, at = {}, 0
    for k in keys:
        size = like[k][0].numel()
        out[k] = vec[:, at:at + size].reshape(like[k].shape)
        at += size
    return out


class SharpnessEstimator:
    """λ_max of the loss Hessian per replica, warm-started from one call to the next."""

    def __init__(self, model, loss, settings: SharpnessSettings, seeds, trained: dict):
        self.model, self.loss, self.settings = model, loss, settings
        self.keys = sorted(trained)
        P = sum(trained[k][0].numel() for k in self.keys)
        ref = trained[self.keys[0]]
        start = torch.stack([torch.randn(P, generator=torch.Generator().manual_seed(int(s) + START_SEED_OFFSET),
                                         dtype=torch.float64) for s in seeds])
        self.warm = start.to(dtype=ref.dtype, device=ref.device)
        self.hvps = 0  # Hessian-vector products so far, summed over the estimates (for the benchmark)
        self.cold = True  # no estimate yet: the start vector is random

    def hessian_operator(self, trained: dict, fixed: dict, X: torch.Tensor, Y: torch.Tensor):
        """rows ↦ the operator V (r, P) ↦ ∇²F(W) V of those replicas (None = all of them), with
        everything that does not depend on V computed once per operator."""
        R = trained[self.keys[0]].shape[0]

        def on(rows):
            tr, fx = trained, fixed
            if rows is not None:
                tr, fx = {k: v[rows] for k, v in trained.items()}, {k: v[rows] for k, v in fixed.items()}
            g, point = self.model.hessian_point(tr, fx, X)
            z = Y * g
            n = X.shape[0]
            c = self.loss.derivative(z) * Y / n
            w = self.loss.second_derivative(z) * (Y * Y) / n

            def apply(V: torch.Tensor) -> torch.Tensor:
                self.hvps += V.shape[0] / R  # in products of the whole cell
                return _flat(self.model.hvp(tr, fx, X, point, _unflat(V, tr, self.keys), c, w), self.keys)
            return apply
        return on

    def estimate(self, trained: dict, fixed: dict, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """(R,) the top Hessian eigenvalue of every replica at `trained` (NaN where the Hessian is
        not finite)."""
        theta, vec = lanczos_top(self.hessian_operator(trained, fixed, X, Y), self.warm, self.settings.iters,
                                 self.settings.tol, min_steps=MIN_STEPS_COLD if self.cold else MIN_STEPS)
        self.cold = False
        self.warm = torch.where(torch.isfinite(vec).all(1, keepdim=True), vec, self.warm)
        return theta


def lanczos_top(operator, start: torch.Tensor, iters: int, tol: float,
                min_steps: int = MIN_STEPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Largest eigenvalue and its unit Ritz vector, per row, of a symmetric operator, by Lanczos
    from `start` (R, P). operator(rows) returns the operator (r, P) → (r, P) of those rows (None:
    all), row i acting on row i alone. Once half the rows still in the batch have stopped, the
    rest go on in a smaller batch (a fresh operator on them): one slow replica does not make the
    whole cell pay for its extra steps. The vectors stay on the device; the small tridiagonal
    problems and the stopping rule run in numpy on the host, where their dozens of tiny
    operations per step cost microseconds instead of a kernel launch each."""
    R, P = start.shape
    steps = min(iters, P)
    eps = float(torch.finfo(start.dtype).eps)
    rows = np.arange(R)  # the rows of the full batch still in the batch
    apply = operator(None)
    basis = start.new_empty(R, steps, P)  # row r's Lanczos vectors q_0 … q_j: basis[r, :j+1]
    basis[:, 0] = start / start.norm(dim=1, keepdim=True)
    T = np.zeros((R, steps, steps))  # the tridiagonal matrices, float64 on the host
    done = np.zeros(R, dtype=bool)  # of the rows in the batch
    bad = np.zeros(R, dtype=bool)  # a non-finite product: the Hessian overflowed
    theta = np.full(R, np.nan)
    ritz = start.clone()
    for j in range(steps):
        q = basis[:, j]
        v = apply(q)
        finite = torch.isfinite(v).all(1)
        if not bool(finite.all()):
            bad |= ~finite.cpu().numpy()
            v = torch.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)
        alpha = (q * v).sum(1)
        known = basis[:, :j + 1]  # (r, j+1, P)
        for _ in range(2):  # full reorthogonalization, twice ("twice is enough")
            v = v - torch.bmm(known.transpose(1, 2), torch.bmm(known, v.unsqueeze(2))).squeeze(2)
        beta = v.norm(dim=1)
        host = torch.stack([alpha, beta]).double().cpu().numpy()
        T[:, j, j] = host[0]
        b = host[1]
        if j + 1 < steps:
            T[:, j, j + 1] = T[:, j + 1, j] = b
        stop = ~done & (bad | (j == steps - 1) | (b == 0))
        if j + 1 >= min_steps or stop.any():
            top, gap, s = _top_ritz(T[:, :j + 1, :j + 1], bad)
            residual = b * np.abs(s[:, -1])  # ‖H y − θ y‖ of the top Ritz pair
            error = np.minimum(residual, residual ** 2 / np.maximum(gap, np.finfo(float).tiny))
            if j + 1 >= min_steps:
                # converged by the error estimate of the module docstring, or an invariant Krylov
                # space (θ exact; before the minimum steps only an exact zero counts: in float32
                # a stale warm start's β can be this small without being zero)
                stop |= ~done & ((error <= tol * np.abs(top)) | (b <= 1e3 * eps * np.abs(top)))
            if stop.any():
                theta[rows[stop]] = np.where(bad[stop], np.nan, top[stop])
                pick = torch.from_numpy(np.flatnonzero(stop)).to(start.device)
                weights = torch.from_numpy(s[stop]).to(dtype=start.dtype, device=start.device)
                ritz[torch.from_numpy(rows[stop]).to(start.device)] = torch.bmm(
                    weights.unsqueeze(1), known[pick]).squeeze(1)
            done |= stop
        if done.all():
            break
        # an exhausted row goes on with a zero vector (its tridiagonal stays finite, its value is frozen)
        basis[:, j + 1] = torch.where((beta > 0).unsqueeze(1), v / beta.clamp(min=torch.finfo(v.dtype).tiny)
                                      .unsqueeze(1), torch.zeros_like(v))
        if 2 * int((~done).sum()) <= len(rows):
            keep = np.flatnonzero(~done)
            rows, done, bad, T = rows[keep], done[keep], bad[keep], T[keep]
            basis = basis[torch.from_numpy(keep).to(start.device)]
            apply = operator(torch.from_numpy(rows).to(start.device))
    out = torch.from_numpy(theta).to(dtype=start.dtype, device=start.device)
    return out, ritz / ritz.norm(dim=1, keepdim=True).clamp(min=torch.finfo(start.dtype).tiny)


def _top_ritz(T: np.ndarray, bad: np.ndarray):
    """The largest eigenvalue of each row's tridiagonal matrix T (r, k, k), its distance to the
    next (inf for k = 1) and its eigenvector. Rows marked bad, or not finite (a Hessian near
    overflow), get a zero matrix: LAPACK would fail for the whole batch."""
    bad |= ~np.isfinite(T).all((1, 2))
    size = np.abs(T).max((1, 2))
    size = np.where(bad | (size == 0), 1.0, size)
    evals, evecs = np.linalg.eigh(np.where(bad[:, None, None], 0.0, T / size[:, None, None]))
    gap = (evals[:, -1] - evals[:, -2]) * size if T.shape[1] > 1 else np.full(len(T), np.inf)
    return evals[:, -1] * size, gap, evecs[:, :, -1]


def run_metrics(iters: np.ndarray, sharpness: np.ndarray, threshold: np.ndarray) -> dict[str, np.ndarray]:
    """The runs columns from the recorded estimates: sharpness (K, R) at iterations `iters` (K,),
    NaN where none was made or the replica had diverged; threshold (R,) the step's stability limit
    (2/η for GD; NaN where the algorithm has none)."""
    est = ~np.isnan(sharpness)
    any_est = est.any(0)
    R = sharpness.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        peak = np.where(any_est, np.nanmax(np.where(est, sharpness, -np.inf), axis=0), np.nan)
        first = np.argmax(est, axis=0)
        last = len(iters) - 1 - np.argmax(est[::-1], axis=0)
        above = est & (sharpness >= threshold)
        reached = above.any(0)
        frac = np.where(any_est & ~np.isnan(threshold), above.sum(0) / est.sum(0), np.nan)
    cols = np.arange(R)
    return {
        "initial_sharpness": np.where(any_est, sharpness[first, cols], np.nan),
        "max_sharpness": peak,
        "final_sharpness": np.where(any_est, sharpness[last, cols], np.nan),
        "t_eos": np.where(reached, iters[np.argmax(above, axis=0)], np.nan).astype(np.float64),
        "frac_above_eos": frac,
        "sharpness_ratio_max": peak / threshold,
        "stability_threshold": np.asarray(threshold, dtype=np.float64),
    }
