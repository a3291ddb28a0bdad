"""The sharpness λ_max(∇²F(W_t)) of every replica of a cell, by batched Lanczos (docs/sharpness.md).

F(W) = (1/n) Σ_i ℓ(z_i), z_i = y_i g(x_i; W), has the Hessian

    ∇²F = (1/n) Σ_i ℓ''(z_i) y_i² ∇g_i ∇g_iᵀ  +  (1/n) Σ_i ℓ'(z_i) y_i ∇²g_i,

so a Hessian-vector product is the model's `hvp_operator` with c = ℓ'(z)y/n and w = ℓ''(z)y²/n:
closed form, batched over the replicas like the engine's gradient (benchmarks/engine.py compares it
with torch.func's jvp-of-grad). The derivatives are taken with respect to the trained parameters
only.

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

import time
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
        self.seconds = 0.0  # wall time in the estimates so far (every Lanczos step synchronizes with the host)
        self.cold = True  # no estimate yet: the start vector is random

    def hessian_operator(self, trained: dict, fixed: dict, X: torch.Tensor, Y: torch.Tensor):
        """rows ↦ the operator V (r, P) ↦ ∇²F(W) V of those replicas (None = all of them): the
        model's product at W, formed once, restricted to the rows by slicing."""
        R = trained[self.keys[0]].shape[0]
        g, point = self.model.hessian_point(trained, fixed, X)
        z = Y * g
        n = X.shape[0]
        c = self.loss.derivative(z) * Y / n
        w = self.loss.second_derivative(z) * (Y * Y) / n
        full = self.model.hvp_operator(trained, fixed, X, point, c, w)

        def on(rows):
            product = full if rows is None else full.rows(rows)

            def apply(V: torch.Tensor) -> torch.Tensor:
                self.hvps += V.shape[0] / R  # in products of the whole cell
                return product(V)
            return apply
        return on

    def estimate(self, trained: dict, fixed: dict, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """(R,) the top Hessian eigenvalue of every replica at `trained` (NaN where the Hessian is
        not finite)."""
        start = time.perf_counter()
        theta, vec = lanczos_top(self.hessian_operator(trained, fixed, X, Y), self.warm, self.settings.iters,
                                 self.settings.tol, min_steps=MIN_STEPS_COLD if self.cold else MIN_STEPS)
        self.cold = False
        self.warm = torch.where(torch.isfinite(vec).all(1, keepdim=True), vec, self.warm)
        self.seconds += time.perf_counter() - start
        return theta


def lanczos_top(operator, start: torch.Tensor, iters: int, tol: float,
                min_steps: int = MIN_STEPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Largest eigenvalue and its unit Ritz vector, per row, of a symmetric operator, by Lanczos
    from `start` (R, P). operator(rows) returns the operator (r, P) → (r, P) of those rows (None:
    all), row i acting on row i alone. Once half the rows still in the batch have stopped, the
    rest go on in a smaller batch (the operator restricted to them): one slow replica does not
    make the whole cell pay for its extra steps. The vectors stay on the device; the small
    tridiagonal problems and the stopping rule run in numpy on the host, where their dozens of
    tiny operations per step cost microseconds instead of a kernel launch each."""
    run = _Lanczos(operator, start, min(iters, start.shape[1]))
    for j in range(run.steps):
        b = run.step(j)
        run.check(j, b, tol, min_steps)
        if run.done.all():
            break
        run.advance(j, b)
    run.retire(np.ones(len(run.rows), dtype=bool))
    out = torch.from_numpy(run.theta).to(dtype=start.dtype, device=start.device)
    return out, run.ritz / run.ritz.norm(dim=1, keepdim=True).clamp(min=torch.finfo(start.dtype).tiny)


class _Lanczos:
    """The state of lanczos_top's batch: for each row still in it (`rows`, indices into the full
    batch) its Lanczos vectors, tridiagonal matrix and stopping state; for the rows that have
    stopped, their value (`theta`) and the Ritz weights their vector is formed from when they
    leave the batch (`ritz`)."""

    def __init__(self, operator, start: torch.Tensor, steps: int):
        R, P = start.shape
        self.operator, self.steps, self.device = operator, steps, start.device
        self.eps = float(torch.finfo(start.dtype).eps)
        self.rows = np.arange(R)
        self.apply = operator(None)
        self.basis = start.new_empty(R, steps, P)  # row r's Lanczos vectors q_0 … q_j: basis[r, :j+1]
        self.basis[:, 0] = start / start.norm(dim=1, keepdim=True)
        self.used = 1  # basis[:, :used] is written (the rest is uninitialized memory)
        self.T = np.zeros((R, steps, steps))  # the tridiagonal matrices, float64 on the host
        self.weights = np.zeros((R, steps))  # a stopped row's top eigenvector of T
        self.done = np.zeros(R, dtype=bool)
        self.bad = np.zeros(R, dtype=bool)  # a non-finite product: the Hessian overflowed
        self.beta = None  # β_{j-1} on the device
        self.v = None
        self.theta = np.full(R, np.nan)
        self.ritz = start.clone()

    def step(self, j: int) -> np.ndarray:
        """Lanczos step j: v = H q_j − α q_j − β q_{j−1}, reorthogonalized against every q_0 … q_j
        once (the three-term recurrence is the first orthogonalization, so one more pass suffices:
        "twice is enough"). Writes α_j into T; returns β_j = ‖v‖ (host)."""
        q = self.basis[:, j]
        v = self.apply(q)
        alpha = torch.bmm(q.unsqueeze(1), v.unsqueeze(2)).view(-1)
        v.addcmul_(q, alpha.unsqueeze(1), value=-1.0)
        if j:
            v.addcmul_(self.basis[:, j - 1], self.beta.unsqueeze(1), value=-1.0)
        known = self.basis[:, :j + 1]  # (r, j+1, P)
        coefficients = torch.bmm(known, v.unsqueeze(2)).transpose(1, 2)  # (r, 1, j+1)
        self.v = v.sub_(torch.bmm(coefficients, known).squeeze(1))  # the row form: known as laid out
        self.beta = torch.linalg.vector_norm(v, dim=1)
        self.T[:, j, j], b = torch.stack([alpha, self.beta]).double().cpu().numpy()  # one transfer
        self.bad |= ~np.isfinite(b) | ~np.isfinite(self.T[:, j, j])  # overflow: NaN stays in its row
        if j + 1 < self.steps:
            self.T[:, j, j + 1] = self.T[:, j + 1, j] = b
        return b

    def check(self, j: int, b: np.ndarray, tol: float, min_steps: int) -> None:
        """Stop the rows that have converged (by the error estimate of the module docstring), whose
        Krylov space is exhausted (θ exact; before the minimum steps only an exact zero counts: in
        float32 a stale warm start's β can be this small without being zero), that went bad, or
        that reached the last step."""
        stop = ~self.done & (self.bad | (j == self.steps - 1) | (b == 0))
        if j + 1 < min_steps and not stop.any():
            return
        live = np.flatnonzero(~self.done)  # only their tridiagonal problems are solved
        top, gap, s = _top_ritz(self.T[live, :j + 1, :j + 1], self.bad[live])
        if j + 1 >= min_steps:
            residual = b[live] * np.abs(s[:, -1])  # ‖H y − θ y‖ of the top Ritz pair
            error = np.minimum(residual, residual ** 2 / np.maximum(gap, np.finfo(float).tiny))
            stop[live] |= (error <= tol * np.abs(top)) | (b[live] <= 1e3 * self.eps * np.abs(top))
        now = stop[live]
        self.theta[self.rows[live[now]]] = np.where(self.bad[live[now]], np.nan, top[now])
        self.weights[live[now], :j + 1] = s[now]
        self.done |= stop

    def advance(self, j: int, b: np.ndarray) -> None:
        """q_{j+1} = v/β (an exhausted row goes on with a zero vector, a bad one with its NaN vector:
        either has stopped, its value is frozen, and it touches no other row); then, once half the
        rows have stopped, the batch keeps the others."""
        inverse = np.where(np.isfinite(b) & (b > 0), 1.0 / np.where(b > 0, b, 1.0), 0.0)
        scale = torch.from_numpy(inverse).to(dtype=self.v.dtype, device=self.device).unsqueeze(1)
        torch.mul(self.v, scale, out=self.basis[:, j + 1])
        self.used = j + 2
        if 2 * int((~self.done).sum()) <= len(self.rows):
            self.retire(self.done)
            keep = np.flatnonzero(~self.done)
            index = torch.from_numpy(keep).to(self.device)
            basis = self.basis.new_empty(len(keep), self.steps, self.basis.shape[2])
            basis[:, :self.used] = self.basis[index, :self.used]
            self.basis, self.beta = basis, self.beta[index]
            self.rows, self.T, self.weights = self.rows[keep], self.T[keep], self.weights[keep]
            self.done, self.bad = self.done[keep], self.bad[keep]
            self.apply = self.operator(torch.from_numpy(self.rows).to(self.device))

    def retire(self, leaving: np.ndarray) -> None:
        """Form the Ritz vectors of the stopped rows that leave the batch (one product for all)."""
        if leaving.any():
            pick = torch.from_numpy(np.flatnonzero(leaving)).to(self.device)
            weights = torch.from_numpy(self.weights[leaving, :self.used]).to(dtype=self.basis.dtype,
                                                                               device=self.device)
            vectors = torch.bmm(weights.unsqueeze(1), self.basis[pick, :self.used]).squeeze(1)
            self.ritz[torch.from_numpy(self.rows[leaving]).to(self.device)] = vectors


def _top_ritz(T: np.ndarray, bad: np.ndarray):
    """The largest eigenvalue of each row's tridiagonal matrix T (r, k, k), its distance to the
    next (inf for k = 1) and its eigenvector. Rows marked bad (a Hessian near overflow) get a
    zero matrix: LAPACK would fail for the whole batch."""
    bad = bad | ~np.isfinite(T).all((1, 2))
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
