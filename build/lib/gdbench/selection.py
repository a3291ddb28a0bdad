"""Which step size is "best", and how far to trust that choice (analysis stage).

The implicit-acceleration ratio and the scaling exponents compare models at their best step size.
That choice is an artefact of the grid when the best step sits at the grid's edge (a larger or
smaller one might be better still) or next to a step where every run diverged (the optimum is
against a cliff the grid resolves coarsely); in a real dimension study such levels made a
scaling exponent several times larger than a finer grid gave. So the tables flag those levels
(footnote mark "e") and report ties as ties (mark "t"): the batch perceptron from 0 has the same
t_sep at every step size, and no tie-break should pretend otherwise.

Algorithms whose iterates are proportional to the step (`SCALE_FREE`) have a loss — and so a rate
slope, a final loss and loss oscillations — that depends on an arbitrary scale; their loss
columns carry mark "s".
"""
from __future__ import annotations

import numpy as np
import pandas as pd

SCALE_FREE = ("batch_perceptron", "normalized_batch_perceptron")
LOSS_COLUMNS = ("final_loss", "final_log_loss", "rate_slope", "rate_r2", "non_monotone", "n_increases",
                "transition_time", "peak_ratio", "max_jump")


def best_steps(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per group of `keys` minus lr, over an aggregated table with `t_sep_median`, `separated`,
    `final_loss`, `runs` and `diverged`: columns `best` (the smallest median t_sep, then the most
    runs separated; every step tied on both is best), `best_tied` (how many steps tie, on the
    best rows), and `best_edge` (the best step is the smallest or largest of the group's grid, or
    next to a step where every run diverged)."""
    rest = [k for k in keys if k != "lr"]
    out = table.assign(best=False, best_tied=np.nan, best_edge=False)
    groups = out.groupby(rest, dropna=False, sort=False).groups if rest else {(): out.index}
    for idx in groups.values():
        part = out.loc[idx].sort_values("lr")
        t = part["t_sep_median"].fillna(np.inf)
        if not np.isfinite(t).any():
            continue
        top = part[(t == t.min()) & (part["separated"] == part.loc[t == t.min(), "separated"].max())]
        out.loc[top.index, "best"] = True
        out.loc[top.index, "best_tied"] = len(top)
        if len(part) < 2:
            continue
        lrs = part["lr"].to_numpy()
        dead = (part["diverged"] >= part["runs"]).to_numpy()
        for i in top.index:
            pos = int(np.flatnonzero(part.index == i)[0])
            edge = pos in (0, len(lrs) - 1) and len(top) < len(part)
            near_dead = (pos > 0 and dead[pos - 1]) or (pos < len(lrs) - 1 and dead[pos + 1])
            out.loc[i, "best_edge"] = bool(edge or near_dead)
    return out


def representative_best(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One best row per group (the smallest of tied steps: their t_sep is the same, and the
    smallest is the most conservative step to call "best")."""
    rest = [k for k in keys if k != "lr"]
    best = table[table["best"]].sort_values("lr", kind="stable")
    return best.groupby(rest, dropna=False, sort=False).head(1) if rest else best.head(1)


def marks(table: pd.DataFrame) -> pd.Series:
    """The footnote marks of each row of a rates/oscillation table: {column: marks}."""
    out = []
    for _, row in table.iterrows():
        m = {}
        if row.get("best"):
            flags = ("e" if row.get("best_edge") else "") + ("t" if (row.get("best_tied") or 1) > 1 else "")
            if flags:
                m["best"] = flags
        if row.get("algorithm") in SCALE_FREE:
            for c in table.columns:
                if c in LOSS_COLUMNS or c.startswith("t_eps_"):
                    m[c] = "s"
        out.append(m)
    return pd.Series(out, index=table.index, dtype=object)


def identical_seeds(runs: pd.DataFrame, keys: list[str]) -> list[str]:
    """Groups whose several seeds produced identical runs (same t_sep, final log-loss and number
    of loss increases): their quartiles and bootstrap intervals say nothing about variability.
    Typically a model initialized at 0 (the linear model), where the seed changes nothing."""
    ok = runs[runs["status"] != "failed"]
    sig = ["t_sep", "final_log_loss", "n_increases"]
    found = []
    for key, part in ok.groupby(keys, dropna=False, sort=True) if keys else [((), ok)]:
        if part["seed"].nunique() < 2:
            continue
        if len(part[sig].round(12).astype(str).drop_duplicates()) == 1:
            found.append(", ".join(f"{k}={v}" for k, v in zip(keys, key if isinstance(key, tuple) else (key,))
                                   if k != "lr"))
    return sorted(set(found))
