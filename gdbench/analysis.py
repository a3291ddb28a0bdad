"""Analysis: the `runs` and `trajectory` tables of a sweep → aggregated tables and fits (docs/design.md §2).

Every function takes DataFrames (as returned by `gdbench.load`) and returns a DataFrame, so a user
can rebuild any table of the report in a notebook with other groupings.

Grouping. A table row aggregates the runs that differ only in their seeds (`seed`, `data.seed`).
By default the grouping columns are the identity columns (dataset, model, loss, algorithm, lr) plus
every other configuration column that is not already determined by the columns chosen before it
(`group_columns`): a sweep over `data.d` gets a `d` column, while `model.scale` — constant for each
model — does not clutter the table. Pass `by=[...]` to choose.

Censoring. A metric that never happened (`t_sep` of a run that never separated) is null. Medians
and quartiles of such metrics treat null as +∞ — the honest statistic of censored data — so a
median is missing exactly when it reaches into the runs that never got there (with linear
interpolation: from half of the runs on). Diverged and failed runs
are counted in every table, never dropped silently.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from gdbench import selection
from gdbench.fits import bootstrap_exponent, fit_loglog, fit_rates, no_fit_reason  # noqa: F401  (public here too)
from gdbench.fits import no_interval_reason as fits_no_interval

SEED_COLUMNS = ("seed", "data.seed")
IDENTITY = ("dataset", "model", "loss", "algorithm", "lr")
# Short columns of the runs table that duplicate a dotted one (grid.Run.columns writes both).
ALIASES = {"algorithm.lr": "lr", "data.n": "n", "data.d": "d", "model.width": "width",
           "model.activation": "activation"}
SHORT_CONFIG = ("dataset", "n", "d", "model", "activation", "width", "loss", "algorithm", "iterations",
                "companion", "dtype", "lr")
MODEL_COLUMNS_SHORT = ("model", "activation", "width")
PROPORTIONAL, FIXED = "η = c·T", "η fixed"  # the step schedules of the budget table


# ---------------------------------------------------------------- columns and groups

def config_columns(runs: pd.DataFrame) -> list[str]:
    """Configuration columns of a runs table in a reading order (data, model, loss, algorithm, lr)."""
    dotted = [c for c in runs.columns if "." in c and c not in ALIASES and c not in SEED_COLUMNS]
    order = {"dataset": 0, "data.": 1, "n": 2, "d": 2, "model": 3, "activation": 3, "width": 3, "model.": 4,
             "loss": 5, "loss.": 6, "algorithm": 7, "algorithm.": 8, "iterations": 9, "companion": 9,
             "dtype": 9, "lr": 10}
    cols = [c for c in SHORT_CONFIG if c in runs] + dotted
    return sorted(cols, key=lambda c: order.get(c, order.get(c.split(".")[0] + ".", 9)))


def model_columns(columns) -> list[str]:
    return [c for c in columns if c in MODEL_COLUMNS_SHORT or c.startswith("model.")]


def group_columns(runs: pd.DataFrame, by=None) -> list[str]:
    """The columns a table groups by: `by` as given (checked), or the identity columns plus every
    configuration column not determined by the columns chosen before it (see the module doc)."""
    if by is not None:
        missing = [c for c in by if c not in runs]
        if missing:
            raise KeyError(f"group_by: no such column(s) {missing} in the runs table")
        return list(by)
    keys = [c for c in IDENTITY if c in runs]
    for col in config_columns(runs):
        if col in keys:
            continue
        spread = runs.groupby(keys, dropna=False, sort=False)[col].nunique(dropna=False) if keys else \
            pd.Series([runs[col].nunique(dropna=False)])
        if len(spread) and spread.max() > 1:
            keys.append(col)
    # n and d are what a reader needs even when another key (data.path of an npz) determines them
    keys += [c for c in ("n", "d") if c in runs and c not in keys and runs[c].nunique() > 1]
    return [c for c in config_columns(runs) if c in keys]  # reading order, lr last


def numeric_keys(runs: pd.DataFrame) -> pd.DataFrame:
    """Configuration columns stored as text whose every value is a number become numbers, so
    that they sort as 16, 128, 256 and not as "128", "16", "256"."""
    out = runs
    for c in config_columns(runs):
        if runs[c].dtype == object or pd.api.types.is_string_dtype(runs[c]):
            values = runs[c].dropna()
            if not len(values) or values.map(lambda v: isinstance(v, bool)).any():
                continue
            num = pd.to_numeric(values, errors="coerce")
            if num.notna().all():
                out = out if out is not runs else runs.copy()
                out[c] = pd.to_numeric(runs[c], errors="coerce")
    return out


def _groupby(runs, keys):
    return runs.groupby(keys, dropna=False, sort=True)


# ---------------------------------------------------------------- censored statistics

NEVER = 1e300  # stands for +∞ (a metric that never happened) inside grouped quantiles


def censored_quantile(values: pd.Series, q: float) -> float:
    """Quantile (linear interpolation) with null read as +∞ (a metric that never happened):
    NaN wherever the quantile reaches into the never-happened runs."""
    v = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
    v = np.where(np.isnan(v), NEVER, v)
    if len(v) == 0:
        return np.nan
    out = float(np.quantile(v, q))
    return out if out < NEVER / 10 else np.nan


def grouped_censored_quantile(df: pd.DataFrame, keys: list, column: str, q: float) -> pd.Series:
    """`censored_quantile` per group, vectorized (one grouped quantile over all groups)."""
    filled = pd.to_numeric(df[column], errors="coerce").astype("float64").fillna(NEVER)
    out = filled.groupby([df[k] for k in keys], dropna=False, sort=True).quantile(q)
    return out.where(out < NEVER / 10)


def _status_counts(df: pd.DataFrame, keys: list) -> pd.DataFrame:
    flags = pd.DataFrame({"runs": 1, "diverged": (df["status"] == "diverged").astype(int),
                          "failed": (df["status"] == "failed").astype(int)}, index=df.index)
    return flags.groupby([df[k] for k in keys], dropna=False, sort=True).sum()


# ---------------------------------------------------------------- the tables

def best_lr(table: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Boolean mask over an aggregated table: the step sizes with the smallest median t_sep in
    each group of `keys` minus lr (then the most runs separated); tied steps are all best (see
    `gdbench.selection`)."""
    return selection.best_steps(table, keys)["best"].to_numpy()


def rates_table(runs: pd.DataFrame, traj: pd.DataFrame | None = None, *, by=None, t0: int = 10,
                eps=None) -> pd.DataFrame:
    """Table 1 (rates): per group — runs, fraction separated, t_sep median and quartiles, t_eps
    medians, final loss (median), the fitted rate slope of log F_t on log t and its R² (medians
    over seeds), diverged/failed counts, and `best` marking each model's best step size."""
    keys = group_columns(runs, by)
    df = runs
    if traj is not None and len(traj):
        df = runs.join(fit_rates(runs, traj, t0=t0), on="run_id")
    out = _status_counts(df, keys)
    df = df[df["status"] != "failed"]  # failed runs: counted above, no metrics
    g = _groupby(df, keys)
    out["separated"] = df["t_sep"].notna().groupby([df[k] for k in keys], dropna=False, sort=True).mean()
    for name, q in (("t_sep_median", 0.5), ("t_sep_q25", 0.25), ("t_sep_q75", 0.75)):
        out[name] = grouped_censored_quantile(df, keys, "t_sep", q)
    eps_cols = [c for c in df.columns if c.startswith("t_eps_")]
    if eps is not None:
        from gdbench.metrics import eps_column
        eps_cols = [eps_column(e) for e in eps if eps_column(e) in df]
    for c in eps_cols:
        out[c] = grouped_censored_quantile(df, keys, c, 0.5)
    out["final_loss"] = g["final_loss"].median()
    out["final_log_loss"] = g["final_log_loss"].median()
    if "rate_slope" in df:
        out["rate_slope"] = g["rate_slope"].median()
        out["rate_r2"] = g["rate_r2"].median()
    out = out.reset_index()
    model_keys = [k for k in keys if k != "lr"]
    out["separated"] = out["separated"].fillna(0.0)
    if "lr" in keys:
        out = selection.best_steps(out, keys)
    else:
        out = out.assign(best=False, best_tied=np.nan, best_edge=False)
    out["_marks"] = selection.marks(out)
    out.attrs["keys"] = model_keys + (["lr"] if "lr" in keys else [])
    return out


def oscillation_table(runs: pd.DataFrame, *, by=None) -> pd.DataFrame:
    """Table 2 (oscillation): per group — fraction of runs whose loss ever increases, and the
    medians of n_increases, transition_time τ, peak_ratio, max_jump and the number of increases
    of the misclassified count; diverged and failed runs counted (their metrics up to divergence
    are included, failed runs have none). With sharpness estimates, also the medians of t_eos
    (censored), frac_above_eos, max_sharpness, sharpness_ratio_max and final_sharpness."""
    keys = group_columns(runs, by)
    out = _status_counts(runs, keys)
    df = runs[runs["status"] != "failed"]
    g = _groupby(df, keys)
    out["non_monotone"] = (df["n_increases"].astype("float64") > 0).where(df["n_increases"].notna()).groupby(
        [df[k] for k in keys], dropna=False, sort=True).mean()
    for c in ("n_increases", "transition_time", "peak_ratio", "max_jump", "n_misclassified_increases"):
        if c in runs:
            out[c] = g[c].median().astype("float64")
    if "max_sharpness" in runs:  # the edge-of-stability columns, where the sweep estimated the sharpness
        # t_eos is null for a run that never reached 2/η: read as +∞ (— once half the runs never did)
        out["t_eos"] = grouped_censored_quantile(df, keys, "t_eos", 0.5)
        for c in ("frac_above_eos", "max_sharpness", "sharpness_ratio_max", "final_sharpness"):
            out[c] = g[c].median().astype("float64")
    out = out.reset_index()
    out["_marks"] = selection.marks(out)
    out.attrs["keys"] = keys
    return out


def _split_keys(keys):
    mk = model_columns(keys)
    return [k for k in keys if k not in mk and k != "lr"], mk


def acceleration_table(runs: pd.DataFrame, *, by=None, baseline: str = "linear") -> pd.DataFrame:
    """Table 3a (implicit acceleration): per data setting (every key except the model's and lr),
    each model's best step size and its median t_sep there, and the ratio
    t_sep(baseline at its best step) / t_sep(model at its best step) — > 1 means the model
    separates faster than the linear baseline. A ratio from a best step at the grid's edge (of the
    model or of the baseline) carries mark "e"; tied best steps, mark "t" (`gdbench.selection`)."""
    rates = rates_table(runs, by=by)
    keys = rates.attrs["keys"]
    data_keys, mkeys = _split_keys(keys)
    best = selection.representative_best(rates, keys).copy()
    cols = data_keys + mkeys + ["lr", "runs", "separated", "t_sep_median", "t_sep_q25", "t_sep_q75",
                                "best_tied", "best_edge"]
    best = best[[c for c in cols if c in best]].rename(columns={"lr": "best_lr"})
    is_base = best["model"] == baseline
    if data_keys:
        base = best[is_base].drop_duplicates(data_keys).set_index(data_keys)[["t_sep_median", "best_edge"]]
        ref = base.reindex(pd.MultiIndex.from_frame(best[data_keys]) if len(data_keys) > 1 else best[data_keys[0]])
    else:
        ref = pd.DataFrame({"t_sep_median": [best.loc[is_base, "t_sep_median"].iloc[0] if is_base.any() else np.nan],
                            "best_edge": [bool(best.loc[is_base, "best_edge"].any())]}).iloc[[0] * len(best)]
    best["baseline_t_sep"] = ref["t_sep_median"].to_numpy()
    best["acceleration"] = best["baseline_t_sep"] / best["t_sep_median"]
    base_edge = ref["best_edge"].fillna(False).to_numpy(bool)
    best = best.reset_index(drop=True)
    best["_marks"] = [{**({"best_lr": ("e" if e else "") + ("t" if (tied or 1) > 1 else "")} if e or (tied or 1) > 1
                          else {}), **({"acceleration": "e"} if e or be else {})}
                      for e, be, tied in zip(best["best_edge"], base_edge, best["best_tied"])]
    best = best.drop(columns=["best_edge"]).sort_values(data_keys + mkeys, kind="stable").reset_index(drop=True)
    best.attrs["keys"] = data_keys + mkeys
    return best


def scaling_table(runs: pd.DataFrame, *, x: str = "d", by=None, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Table 3b (scaling): per model (and every other key except x and lr), the exponent of t_sep
    against x by log-log least squares over the runs at each x's best step size, with a bootstrap
    95% interval over seeds. Runs that never separated (or separated at t = 0) are excluded and
    counted in `excluded`; an x level with no separated run drops out of the fit. No exponent
    from fewer than 3 levels or a constant t_sep, and no interval without spread over seeds
    (`no_fit`, `no_ci`: the footnote mark saying why); `edge_levels` counts the levels whose best
    step sits at the grid's edge (then the exponent carries mark "e")."""
    keys = group_columns(runs, by)
    if x not in keys:
        keys = [k for k in keys if k != "lr"] + [x, "lr"]
    rates = rates_table(runs, by=keys)
    # best step per (everything but lr): each x level picks its own best step (one of tied ones)
    best = selection.representative_best(rates, keys)
    sel = runs.merge(best[keys + ["best_edge"]], on=keys, how="inner")
    rest = [k for k in keys if k not in (x, "lr")]
    # a data column tied to x (e.g. n varying together with d) is part of the x axis, not a group:
    # drop a data column that x and the other group columns determine
    for k in [k for k in rest if k in ("n", "d") or k.startswith("data.")]:
        others = [j for j in rest if j != k] + [x]
        if runs[k].nunique(dropna=False) > 1 and runs.groupby(others, dropna=False)[k].nunique(dropna=False).max() == 1:
            rest.remove(k)
    rows = []
    for key, part in (sel.groupby(rest, dropna=False, sort=True) if rest else [((), sel)]):
        use = part[part["t_sep"].notna() & (part["t_sep"] > 0)]
        fit = fit_loglog(use[x], use["t_sep"])
        lo, hi = bootstrap_exponent(use[x], use["t_sep"], n_boot=n_boot, seed=seed)
        edges = int(part.drop_duplicates(x)["best_edge"].sum())
        row = dict(zip(rest, key if isinstance(key, tuple) else (key,)))
        row.update(x=x, levels=use[x].nunique(), runs=len(part), excluded=len(part) - len(use), **fit,
                   ci_low=lo, ci_high=hi, edge_levels=edges, no_fit=no_fit_reason(use[x], use["t_sep"]),
                   no_ci=fits_no_interval(use[x], use["t_sep"]), _marks={"exponent": "e"} if edges else {})
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["keys"] = rest
    # the per-level medians at the chosen steps, for the figure (plain lists: attrs get copied)
    out.attrs["points"] = best[keys + ["t_sep_median"]].to_dict("list")
    return out


def budget_table(runs: pd.DataFrame, *, by=None, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Table 3c (budget scaling): the exponent of the final loss against the iteration budget T,
    for step sizes that scale with the budget (η = c·T, reference −2 of Wu et al. 2024) and for
    fixed step sizes (reference −1), by log-log least squares on final_log_loss (exact below
    1e-308), with a bootstrap interval over seeds. Schedules seen at ≥ 2 budgets appear; an
    exponent needs 3 (`no_fit` says why not)."""
    keys = [k for k in group_columns(runs, by) if k not in ("lr", "iterations")]
    df = runs[runs["status"] == "ok"].assign(_c=lambda d: d["lr"] / d["iterations"])
    rows = []
    for key, part in (df.groupby(keys, dropna=False, sort=True) if keys else [((), df)]):
        for schedule, col in ((PROPORTIONAL, "_c"), (FIXED, "lr")):
            for value, sub in part.groupby(col):
                if sub["iterations"].nunique() < 2:
                    continue
                t, ly = sub["iterations"].to_numpy(float), sub["final_log_loss"].to_numpy(float)
                fit = fit_loglog(t, log_y=ly)
                lo, hi = bootstrap_exponent(t, log_y=ly, n_boot=n_boot, seed=seed)
                row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
                row.update(schedule=schedule, value=value, budgets=sub["iterations"].nunique(), runs=len(sub),
                           exponent=fit["exponent"], r2=fit["r2"], ci_low=lo, ci_high=hi,
                           no_fit=no_fit_reason(np.log(t), ly), no_ci=fits_no_interval(np.log(t), ly))
                rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["keys"] = keys + ["schedule", "value"] if len(out) else keys
    return out


def perceptron_table(runs: pd.DataFrame, *, by=None) -> pd.DataFrame:
    """Table 4 (perceptron agreement, runs with a companion): per step size, the medians of the
    final and maximum gap ‖W_t/γ − Ŵ_t‖/‖Ŵ_t‖ and of the fraction of iterations whose
    misclassified sets were identical."""
    df = runs[runs["final_perceptron_gap"].notna()] if "final_perceptron_gap" in runs else runs.iloc[:0]
    if not len(df):
        return pd.DataFrame()
    keys = group_columns(df, by)
    out = _status_counts(df, keys)
    g = _groupby(df, keys)
    out["final_gap"] = g["final_perceptron_gap"].median()
    out["max_gap"] = g["max_perceptron_gap"].median()
    out["agree_frac"] = g["misclassified_agree_frac"].median()
    out = out.reset_index()
    out.attrs["keys"] = keys
    return out


def curve_quantiles(runs: pd.DataFrame, traj: pd.DataFrame, *, by=None,
                    columns=("log10_loss", "accuracy")) -> pd.DataFrame:
    """Per group and recorded iteration: the quartiles over seeds of trajectory columns (for the
    loss-curve figures). `log10_loss` = log_loss / ln 10, so losses below 1e-308 still plot.
    Runs that stopped early (diverged) leave the later iterations to the others; `runs` counts
    how many contribute at each iteration."""
    keys = group_columns(runs, by)
    runs = runs[runs["status"] != "failed"]
    gcode, groups = pd.factorize(pd.MultiIndex.from_frame(runs[keys]))
    rid = traj["run_id"]
    cat = rid.cat if isinstance(rid.dtype, pd.CategoricalDtype) else pd.Categorical(rid)
    cats, tcodes = cat.categories, cat.codes
    lookup = pd.Series(gcode, index=runs["run_id"].to_numpy()).reindex(cats).to_numpy()
    g = np.where(tcodes >= 0, lookup[np.maximum(np.asarray(tcodes), 0)], np.nan)
    frame = {"_g": g, "iter": traj["iter"].to_numpy()}
    for c in columns:
        if c == "log10_loss":
            frame[c] = traj["log_loss"].to_numpy() / np.log(10)
        elif c == "loss" and "log_loss" in traj:  # from the log domain: a loss below 1e-308 is still a number
            frame[c] = np.exp(traj["log_loss"].to_numpy())
        else:
            frame[c] = traj[c].to_numpy()
    df = pd.DataFrame(frame).dropna(subset=["_g"])
    grouped = df.groupby(["_g", "iter"], sort=True)
    parts = {"runs": grouped.size()}
    for c in columns:
        q = grouped[c].quantile([0.25, 0.5, 0.75]).unstack()
        parts.update({f"{c}_q25": q[0.25], f"{c}_median": q[0.5], f"{c}_q75": q[0.75]})
    out = pd.DataFrame(parts).reset_index()
    key_frame = groups.to_frame(index=False)
    key_frame.columns = keys
    out = pd.concat([key_frame.iloc[out["_g"].astype(int).to_numpy()].reset_index(drop=True),
                     out.drop(columns="_g")], axis=1)
    out.attrs["keys"] = keys
    return out


def summary_table(runs: pd.DataFrame, *, by=None) -> pd.DataFrame:
    """The terminal summary: one row per group of the report's tables (never pooled over a swept
    key), with separation next to oscillation so that zero increases cannot be misread as "never
    separated": runs, diverged, fraction separated, median t_sep, fraction non-monotone, median
    increases, median τ and median final loss."""
    rates = rates_table(runs, by=by)
    osc = oscillation_table(runs, by=by)
    keys = rates.attrs["keys"]
    cols = ["runs", "diverged", "separated", "t_sep_median"]
    out = rates[keys + cols + ["final_loss", "_marks"]].merge(
        osc[keys + ["non_monotone", "n_increases", "transition_time"]], on=keys, how="left")
    out = out[keys + cols + ["non_monotone", "n_increases", "transition_time", "final_loss", "_marks"]]
    out.attrs["keys"] = keys
    return out


def summary_text(runs: pd.DataFrame) -> str:
    """The terminal summary: `summary_table` over every swept key, as Markdown."""
    from gdbench import render
    return render.to_markdown(summary_table(numeric_keys(runs)))
