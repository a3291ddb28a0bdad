"""Per-iteration online metrics over R replicas (docs/design.md §2). Pure torch, no host syncs.

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
    """The running metrics of R replicas. The counters live in `self.state` (a dict of tensors)
    and are advanced by the pure function `advance`, which the engine also calls inside its
    per-iteration program (so that torch.compile fuses these ~25 small ops with the rest)."""

    def __init__(self, R: int, eps: Sequence[float], *, device="cpu", dtype=torch.float64):
        def full(value, dt=torch.long):
            return torch.full((R,), value, dtype=dt, device=device)

        self.eps = tuple(float(e) for e in eps)
        for e in self.eps:
            if not (e > 0 and math.isfinite(e)):
                raise ValueError(f"eps={e!r}: every ε must be a finite number > 0")
        self.log_eps = torch.tensor([math.log(e) for e in self.eps], dtype=dtype, device=device)
        self.state = {
            "t_sep": full(-1), "last_unsep": full(-1),
            "t_eps": torch.full((len(self.eps), R), -1, dtype=torch.long, device=device),
            "n_increases": full(0), "transition_time": full(0), "n_mis_increases": full(0), "last_t": full(-1),
            "log_loss0": full(math.nan, dtype), "max_log_loss": full(-math.inf, dtype),
            "max_jump": full(-math.inf, dtype), "prev_log_loss": full(math.nan, dtype), "prev_n_mis": full(0),
        }

    def update(self, t: int, log_loss: torch.Tensor, n_mis: torch.Tensor, min_margin: torch.Tensor,
               active: torch.Tensor) -> None:
        tt = torch.full_like(self.state["last_t"], t)
        started = torch.tensor(t > 0, device=tt.device)
        self.state = advance(self.state, started, tt, self.log_eps, log_loss, n_mis, min_margin, active)

    def finalize(self) -> dict[str, np.ndarray]:
        def nullable(x):
            x = x.cpu().numpy().astype(np.float64)
            return np.where(x < 0, np.nan, x)

        st = self.state
        last_t = st["last_t"].cpu().numpy()
        last_unsep = st["last_unsep"].cpu().numpy()
        ended_separated = last_unsep < last_t
        with np.errstate(over="ignore"):  # exp of a huge log-loss is inf: the log columns keep it
            peak = np.exp(st["max_log_loss"].cpu().numpy())
            ratio = np.exp((st["max_log_loss"] - st["log_loss0"]).cpu().numpy())
        out = {
            "t_sep": nullable(st["t_sep"]),
            "t_sep_stay": np.where(ended_separated, last_unsep + 1, np.nan).astype(np.float64),
            "n_increases": st["n_increases"].cpu().numpy().astype(np.float64),
            "transition_time": st["transition_time"].cpu().numpy().astype(np.float64),
            "n_misclassified_increases": st["n_mis_increases"].cpu().numpy().astype(np.float64),
            "peak_loss": peak,
            "peak_log_loss": st["max_log_loss"].cpu().numpy(),
            "peak_ratio": ratio,
            "max_jump": np.where(last_t >= 1, st["max_jump"].cpu().numpy(), np.nan),
        }
        for e, col in zip(self.eps, st["t_eps"]):
            out[eps_column(e)] = nullable(col)
        # A replica that never ran an iteration (diverged at t = 0) has no metrics at all.
        never = last_t < 0
        for k in out:
            out[k] = np.where(never, np.nan, out[k])
        return out


def advance(s: dict, started: torch.Tensor, tt: torch.Tensor, log_eps: torch.Tensor, log_loss: torch.Tensor,
            n_mis: torch.Tensor, min_margin: torch.Tensor, active: torch.Tensor) -> dict:
    """The counters after iteration t (tt: t broadcast over the replicas; started: a boolean
    0-d tensor, t > 0). Inactive replicas keep their values. Pure, and branch-free so that one
    compiled program serves every t: returns a new dict."""
    s = dict(s)
    sep = min_margin > 0
    s["t_sep"] = torch.where(active & sep & (s["t_sep"] < 0), tt, s["t_sep"])
    s["last_unsep"] = torch.where(active & ~sep, tt, s["last_unsep"])
    hit = active & (log_loss.unsqueeze(0) <= log_eps.unsqueeze(1)) & (s["t_eps"] < 0)
    s["t_eps"] = torch.where(hit, tt.unsqueeze(0), s["t_eps"])
    s["max_log_loss"] = torch.where(active, torch.maximum(s["max_log_loss"], log_loss), s["max_log_loss"])
    s["log_loss0"] = torch.where(active & ~started, log_loss, s["log_loss0"])
    # at t = 0 the previous log-loss is NaN, so the jump is NaN → −inf: no jump and no increase.
    # −inf − (−inf) is NaN too (squared loss exactly 0 twice): not a jump either.
    jump = log_loss - s["prev_log_loss"]
    jump = torch.where(torch.isnan(jump), torch.full_like(jump, -math.inf), jump)
    s["max_jump"] = torch.where(active, torch.maximum(s["max_jump"], jump), s["max_jump"])
    up = active & (jump > INCREASE_TOL)
    s["n_increases"] = s["n_increases"] + up.long()
    s["transition_time"] = torch.where(up, tt, s["transition_time"])
    s["n_mis_increases"] = s["n_mis_increases"] + (active & started & (n_mis > s["prev_n_mis"])).long()
    s["prev_log_loss"] = torch.where(active, log_loss, s["prev_log_loss"])
    s["prev_n_mis"] = torch.where(active, n_mis, s["prev_n_mis"])
    s["last_t"] = torch.where(active, tt, s["last_t"])
    return s
