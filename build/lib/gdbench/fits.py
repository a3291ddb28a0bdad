"""Fits of the analysis stage (docs/design.md §2, "computed afterwards"): the per-run rate slope of
log F_t on log t over the stable window, log-log power laws, and their bootstrap intervals over
seeds. numpy/pandas only; `gdbench.analysis` builds the tables from them (and re-exports them).
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def fit_rates(runs: pd.DataFrame, traj: pd.DataFrame, *, t0: int = 10) -> pd.DataFrame:
    """Per run: least-squares slope of log F_t against log t over the stable window
    [max(τ, t0), T] (τ = transition_time; T the last recorded iteration), with R² and the number
    of recorded points used. Reference slope: −1 for a constant step (Wu et al. 2024). Needs 3
    points; diverged and failed runs get NaN. Vectorized: one pass of grouped sums over the rows."""
    ok = runs.loc[runs["status"] == "ok", ["run_id", "transition_time"]]
    start = pd.Series(np.maximum(ok["transition_time"].fillna(0).to_numpy(dtype=float), t0),
                      index=ok["run_id"].to_numpy())
    run_id = traj["run_id"]
    s = start.reindex(run_id.to_numpy()).to_numpy()
    it = traj["iter"].to_numpy(dtype=float)
    y = traj["log_loss"].to_numpy(dtype=float)
    keep = (it >= s) & (it >= 1) & np.isfinite(y)  # NaN start (not ok) compares False
    x = np.log(it[keep])
    y = y[keep]
    codes, ids = pd.factorize(run_id.to_numpy()[keep])
    k = len(ids)
    cnt = np.bincount(codes, minlength=k).astype(float)
    sx, sy = np.bincount(codes, x, k), np.bincount(codes, y, k)
    mx, my = sx / np.maximum(cnt, 1), sy / np.maximum(cnt, 1)
    dx, dy = x - mx[codes], y - my[codes]
    sxx, sxy, syy = np.bincount(codes, dx * dx, k), np.bincount(codes, dx * dy, k), np.bincount(codes, dy * dy, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where((cnt >= 3) & (sxx > 0), sxy / sxx, np.nan)
        r2 = np.where((cnt >= 3) & (syy > 0), 1 - (syy - slope * sxy) / syy, np.nan)
    out = pd.DataFrame({"rate_slope": slope, "rate_r2": r2, "rate_points": cnt.astype(int)}, index=ids)
    out = out.reindex(runs["run_id"].to_numpy())
    out["rate_window_start"] = start.reindex(out.index).to_numpy()
    out.index.name = "run_id"
    return out


# ---------------------------------------------------------------- log-log fits and the bootstrap

MIN_LEVELS = 3  # a line through 2 levels always fits exactly: its slope and "R²" say nothing


def no_fit_reason(x, y) -> str | None:
    """Why no power law may be fitted to (x, y): "l" with fewer than `MIN_LEVELS` distinct x,
    "z" when y does not vary; None when a fit is meaningful (marks as in `gdbench.render`)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(np.unique(x)) < MIN_LEVELS:
        return "l"
    if len(y) == 0 or np.ptp(y) == 0:
        return "z"
    return None


def no_interval_reason(x, y) -> str | None:
    """Why a bootstrap over seeds gives no interval: no fit, or no level with two different
    values (one seed per level, or identical seeds), so every resample is the same line."""
    why = no_fit_reason(x, y)
    if why:
        return why
    x, y = np.asarray(x, float), np.asarray(y, float)
    spread = any(np.ptp(y[x == v]) > 0 for v in np.unique(x))
    return None if spread else "z"


def fit_loglog(x, y=None, *, log_y=None) -> dict:
    """Least-squares line of log y on log x: exponent (slope), prefactor exp(intercept), R².
    NaN (no fit) with fewer than `MIN_LEVELS` distinct x or a constant y (`no_fit_reason`).
    `log_y` instead of y: values already in the log domain (losses below 1e-308)."""
    lx = np.log(np.asarray(x, float))
    ly = np.asarray(log_y, float) if log_y is not None else np.log(np.asarray(y, float))
    if no_fit_reason(lx, ly):
        return {"exponent": np.nan, "prefactor": np.nan, "r2": np.nan}
    slope, intercept = np.polyfit(lx, ly, 1)
    res = ly - (slope * lx + intercept)
    sst = ((ly - ly.mean()) ** 2).sum()
    return {"exponent": float(slope), "prefactor": float(np.exp(intercept)),
            "r2": float(1 - (res ** 2).sum() / sst) if sst > 0 else np.nan}


def bootstrap_exponent(x, y=None, *, log_y=None, n_boot: int = 1000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the log-log slope, resampling the runs (seeds) with replacement
    within each level of x, so every resample keeps every x level. NaN where it would be a
    point (`no_interval_reason`)."""
    lx = np.log(np.asarray(x, float))
    ly = np.asarray(log_y, float) if log_y is not None else np.log(np.asarray(y, float))
    levels = np.unique(lx)
    if no_interval_reason(lx, ly) or n_boot <= 0:
        return np.nan, np.nan
    rng = np.random.default_rng(seed)
    idx = np.concatenate([np.flatnonzero(lx == v)[rng.integers(0, (lx == v).sum(), size=(n_boot, (lx == v).sum()))]
                          for v in levels], axis=1)  # (n_boot, N) resampled run indices
    bx, by = lx[idx], ly[idx]
    bx_c, by_c = bx - bx.mean(1, keepdims=True), by - by.mean(1, keepdims=True)
    slopes = (bx_c * by_c).sum(1) / (bx_c ** 2).sum(1)
    a = (1 - level) / 2
    return float(np.quantile(slopes, a)), float(np.quantile(slopes, 1 - a))
