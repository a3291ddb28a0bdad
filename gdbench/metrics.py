"""Per-iteration online metrics over R replicas (DESIGN §2). Pure torch, no host syncs.

`OnlineMetrics.update` is called once per iteration t = 0, 1, …, T with per-replica scalars and an
`active` mask (False once a replica has diverged); inactive replicas are left untouched. All
counters are tensors on the engine's device, so the metrics see *every* iteration, not the
thinned trajectory. `finalize` returns numpy arrays, NaN where a metric never happened.

Definitions (t counts steps, F_t the loss, z_i(t) the margins):
    t_sep              first t with min_i z_i(t) > 0
    t_sep_stay         first t after which min_i z_i > 0 holds to the end of the run
    t_eps_<ε>          first t with F_t ≤ ε (compared as log F_t ≤ log ε)
    n_increases        #{t ≥ 1 : F_t > F_{t−1}(1 + 1e-12)}
    transition_time τ  max{t ≥ 1 : F_t > F_{t−1}(1 + 1e-12)}, 0 if the loss never increases
    peak_loss          max_t F_t;  peak_ratio = peak_loss / F_0
    max_jump           max_t log(F_{t+1}/F_t)
    n_misclassified_increases   #{t ≥ 1 : n_mis(t) > n_mis(t−1)}
All loss comparisons are made in the log domain, so they stay exact after F underflows.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

INCREASE_TOL = math.log1p(1e-12)  # F_t > F_{t−1}(1 + 1e-12)  ⇔  log F_t − log F_{t−1} > log1p(1e-12)


def eps_column(eps: float) -> str:
    """Column name of the t_eps metric for ε, e.g. 1e-4 → 't_eps_1e-04'."""
    return f"t_eps_{eps:.0e}"


class OnlineMetrics:
    def __init__(self, R: int, eps: Sequence[float], *, device="cpu", dtype=torch.float64):
        def full(value, dt=torch.long):
            return torch.full((R,), value, dtype=dt, device=device)

        self.eps = tuple(float(e) for e in eps)
        for e in self.eps:
            if not (e > 0 and math.isfinite(e)):
                raise ValueError(f"eps={e!r}: every ε must be a finite number > 0")
        self.log_eps = torch.tensor([math.log(e) for e in self.eps], dtype=dtype, device=device)
        self.t_sep = full(-1)
        self.last_unsep = full(-1)
        self.t_eps = torch.full((len(self.eps), R), -1, dtype=torch.long, device=device)
        self.n_increases = full(0)
        self.transition_time = full(0)
        self.n_mis_increases = full(0)
        self.last_t = full(-1)
        self.log_loss0 = full(math.nan, dtype)
        self.max_log_loss = full(-math.inf, dtype)
        self.max_jump = full(-math.inf, dtype)
        self.prev_log_loss = full(math.nan, dtype)
        self.prev_n_mis = full(0)

    def update(self, t: int, log_loss: torch.Tensor, n_mis: torch.Tensor, min_margin: torch.Tensor,
               active: torch.Tensor) -> None:
        tt = torch.full_like(self.t_sep, t)
        sep = min_margin > 0
        self.t_sep = torch.where(active & sep & (self.t_sep < 0), tt, self.t_sep)
        self.last_unsep = torch.where(active & ~sep, tt, self.last_unsep)
        hit = active & (log_loss.unsqueeze(0) <= self.log_eps.unsqueeze(1)) & (self.t_eps < 0)
        self.t_eps = torch.where(hit, tt.unsqueeze(0), self.t_eps)
        self.max_log_loss = torch.where(active, torch.maximum(self.max_log_loss, log_loss), self.max_log_loss)
        if t == 0:
            self.log_loss0 = torch.where(active, log_loss, self.log_loss0)
        else:
            jump = log_loss - self.prev_log_loss
            # −inf − (−inf) is NaN (squared loss exactly 0 twice): not a jump.
            jump = torch.where(torch.isnan(jump), torch.full_like(jump, -math.inf), jump)
            self.max_jump = torch.where(active, torch.maximum(self.max_jump, jump), self.max_jump)
            up = active & (jump > INCREASE_TOL)
            self.n_increases += up.long()
            self.transition_time = torch.where(up, tt, self.transition_time)
            self.n_mis_increases += (active & (n_mis > self.prev_n_mis)).long()
        self.prev_log_loss = torch.where(active, log_loss, self.prev_log_loss)
        self.prev_n_mis = torch.where(active, n_mis, self.prev_n_mis)
        self.last_t = torch.where(active, tt, self.last_t)

    def finalize(self) -> dict[str, np.ndarray]:
        def nullable(x):
            x = x.cpu().numpy().astype(np.float64)
            return np.where(x < 0, np.nan, x)

        last_t = self.last_t.cpu().numpy()
        last_unsep = self.last_unsep.cpu().numpy()
        ended_separated = last_unsep < last_t
        with np.errstate(over="ignore"):  # exp of a huge log-loss is inf: the log columns keep it
            peak = np.exp(self.max_log_loss.cpu().numpy())
            ratio = np.exp((self.max_log_loss - self.log_loss0).cpu().numpy())
        out = {
            "t_sep": nullable(self.t_sep),
            "t_sep_stay": np.where(ended_separated, last_unsep + 1, np.nan).astype(np.float64),
            "n_increases": self.n_increases.cpu().numpy().astype(np.float64),
            "transition_time": self.transition_time.cpu().numpy().astype(np.float64),
            "n_misclassified_increases": self.n_mis_increases.cpu().numpy().astype(np.float64),
            "peak_loss": peak,
            "peak_log_loss": self.max_log_loss.cpu().numpy(),
            "peak_ratio": ratio,
            "max_jump": np.where(last_t >= 1, self.max_jump.cpu().numpy(), np.nan),
        }
        for e, col in zip(self.eps, self.t_eps):
            out[eps_column(e)] = nullable(col)
        # A replica that never ran an iteration (diverged at t = 0) has no metrics at all.
        never = last_t < 0
        for k in out:
            out[k] = np.where(never, np.nan, out[k])
        return out
