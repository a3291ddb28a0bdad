"""Study-declared figures: a study's experiment YAML lists, under `report.headline`, the figures
that show its claim the way a paper draws it, e.g.

    report:
      headline:
        - {kind: versus, x: n, y: t_sep, hue: algorithm, best: true, logx: true, logy: true, fit: true}

Each entry is drawn by the function of its `kind` (`KINDS`), a public function over the runs and
trajectory DataFrames that returns a `Headline`: the figure, the table of the points it plots
(written as CSV/Markdown/LaTeX beside it) and a caption. Validation (`validate`) runs before a
sweep is scheduled, so a typo in a study's declarations is one message naming the key.

Kinds and their keys (every kind also takes `title`, `caption`, `where` — a {column: value or
list} filter — and `width`: single | double):
- versus  y (a runs column, or a trajectory column with `at: t`) against x (a runs column), one
          series per `hue` (and per any other swept key, so nothing is pooled over a swept key);
          `best: true` takes each point at its best step size; `fit: true` fits a power law per
          series (only from ≥ 3 levels with spread); `logx`, `logy`.
- curves  a trajectory column against t (`y`: log10_loss | loss | accuracy | direction_error |
          perceptron_gap | grad_norm | …), one colour per step size, one panel per model;
          `xscale`: symlog | linear | log, `xmax`, `logy`, `reference`: 1/t | 1/log t.
- budget  the final loss against the budget T for η = c·T and fixed η, fitted exponents.
- gap     the perceptron gap against γ (final and maximum over t).
- heatmap `value` of the rates (or `table: oscillation`) table over step size × model.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gdbench import analysis, figures
from gdbench.declarations import SpecError, columns_needed, validate  # noqa: F401  (public here too)
from gdbench.fits import bootstrap_exponent, fit_loglog, no_fit_reason

CENSORED = ("t_sep", "t_sep_stay")  # null = never happened: quantiles read it as +inf
AXIS_LABELS = {"t_sep": r"iterations to separate $t_{\mathrm{sep}}$", "n": "samples $n$", "d": "dimension $d$",
               "lr": r"step size $\eta$", "transition_time": r"transition time $\tau$", "iterations": "budget $T$",
               "loss": "$F(W_t)$", "log10_loss": r"$\log_{10} F(W_t)$", "accuracy": "training accuracy",
               "direction_error": r"$\|W_t/\|W_t\| - u_{\mathrm{svm}}\|$",
               "perceptron_gap": r"$\|W_t/\gamma - \hat W_t\|/\|\hat W_t\|$", "final_loss": "final loss $F_T$",
               "data.margin": r"margin $\mu$", "t_sep_stay": r"$t_{\mathrm{sep}}$ (for good)",
               "n_increases": "loss increases (count)", "final_perceptron_gap": "gap to the perceptron at $T$",
               "final_sharpness": r"sharpness at $T$, $\lambda_{\max}(\nabla^2 F(W_T))$",
               "max_sharpness": r"largest sharpness $\max_t \lambda_{\max}(\nabla^2 F(W_t))$",
               "sharpness": r"sharpness $\lambda_{\max}(\nabla^2 F(W_t))$"}


@dataclass
class Headline:
    figure: plt.Figure
    table: pd.DataFrame   # the plotted points (attrs["keys"] set)
    caption: str


def draw(spec: dict, runs: pd.DataFrame, traj: pd.DataFrame, *, width: str = "single") -> Headline | None:
    """One declared figure; None when the sweep has no data for it (said in the report)."""
    runs = _where(runs, spec.get("where"))
    if not len(runs):
        return None
    kw = {"width": spec.get("width", width)}
    got = {"versus": versus, "curves": curves, "budget": budget, "gap": gap, "heatmap": heatmap}[spec["kind"]](
        runs, traj, spec, **kw)
    if got is not None and spec["kind"] in ("budget", "gap"):  # the others place their titles themselves
        _title(got.figure.axes[0], spec, kw["width"])
    return got


def _where(runs: pd.DataFrame, where) -> pd.DataFrame:
    for key, value in (where or {}).items():
        col = analysis.ALIASES.get(key, key)
        if col not in runs:
            raise SpecError(f"where: no column {key!r} in the runs table")
        values = value if isinstance(value, (list, tuple)) else [value]
        kept = runs[runs[col].isin(values)]
        if not len(kept):
            present = ", ".join(map(str, sorted(runs[col].dropna().unique().tolist(), key=str)[:12]))
            raise SpecError(f"where: {key}={value!r} matches no run of this sweep ({key} here: {present})")
        runs = kept
    return runs


def _column(runs: pd.DataFrame, key: str, what: str) -> str:
    col = analysis.ALIASES.get(key, key)
    if col not in runs:
        raise SpecError(f"{what}={key!r}: no such column in the runs table "
                        f"(columns: {', '.join(c for c in runs.columns if not c.startswith('_'))[:400]})")
    return col


def _hue_columns(runs: pd.DataFrame, hue) -> list:
    """The hue's columns that vary (`model` stands for all the model's columns)."""
    hue = [hue] if isinstance(hue, str) else list(hue or [])
    hue = [analysis.ALIASES.get(h, h) for h in hue]
    if "model" in hue:
        i = hue.index("model")
        hue[i:i + 1] = [k for k in analysis.MODEL_COLUMNS_SHORT if k in runs]
    return list(dict.fromkeys(k for k in hue if k in runs and runs[k].nunique(dropna=False) > 1))


def _series_keys(runs: pd.DataFrame, hue_cols: list, exclude, x=None) -> list:
    """The hue columns, then every other swept key (never pool over a swept key) except one that
    x determines (n = d − 1 tied to d is the same axis, not another series)."""
    keys = list(hue_cols)
    for k in analysis.group_columns(runs):
        if k in exclude or k in keys:
            continue
        given = keys + ([x] if x is not None else [])
        spread = runs.groupby(given, dropna=False)[k].nunique(dropna=False).max() if given else runs[k].nunique()
        if spread > 1:
            keys.append(k)
    return keys


# ---------------------------------------------------------------- versus

def _values(runs, traj, spec) -> tuple[pd.DataFrame, str]:
    """Per run: the y value (a runs column, or the trajectory's y at iteration `at`)."""
    y = spec["y"]
    if spec.get("at") is None:
        return runs.assign(_y=pd.to_numeric(runs[_column(runs, y, 'y')], errors="coerce")), y
    col = "log_loss" if y in ("loss", "log10_loss") else y
    if col not in traj:
        raise SpecError(f"y={y!r}: no such trajectory column")
    at = traj[traj["iter"] == int(spec["at"])].drop_duplicates("run_id").set_index("run_id")[col]
    v = at.reindex(runs["run_id"].to_numpy()).to_numpy(float)
    v = np.exp(v) if y == "loss" else (v / np.log(10) if y == "log10_loss" else v)
    name = {"loss": "F", "log10_loss": "log10 F"}.get(y, y) + f"(t={int(spec['at'])})"
    return runs.assign(_y=v), name


def versus(runs, traj, spec, *, width="single") -> Headline:
    """y against x per series, medians over seeds with interquartile bars; see the module doc."""
    x = _column(runs, spec["x"], "x")
    runs = analysis.numeric_keys(runs[runs["status"] != "failed"])
    df, yname = _values(runs, traj, spec)
    best = bool(spec.get("best"))
    hue_cols = [k for k in _hue_columns(df, spec.get("hue")) if k != x]
    keys = _series_keys(df, hue_cols, exclude={x, "lr"} if best else {x}, x=x)
    censored = spec["y"] in CENSORED
    budgets = df.groupby(keys + [x], dropna=False)["iterations"].max().rename("budget").reset_index()
    if best:
        df = _at_best_step(df, keys + [x])
    pts = _quantiles(df, keys + [x] + (["lr"] if best and x != "lr" else []), censored=censored)
    if censored:  # levels where half the runs (or, at the best step, every step) never got there
        pts = pts.merge(budgets, on=keys + [x], how="outer")
    fig, ax = figures.new_figure(width)
    ax = ax[0, 0]
    fits, n, never = [], 0, False
    style = _styles(pts, keys, max(len(hue_cols), 1))
    for name, part in figures.series(pts.sort_values(x), keys):
        colour, marker, ls = style(part.iloc[0])
        seen = part[part["median"].notna()]
        line = ax.errorbar(seen[x], seen["median"], yerr=_bars(seen), color=colour, marker=marker, ls=ls,
                           capsize=2, lw=1, label=name)
        if censored and part["median"].isna().any():  # open markers at the budget: "not within T"
            lost = part[part["median"].isna()]
            ax.plot(lost[x], lost["budget"], ls="none", marker=marker, mfc="none", color=colour)
            never = True
        n += 1
        if spec.get("fit"):
            said, slope = _fit_line(ax, df, part, keys, x, name, colour)
            fits.append(said)
            line.set_label(f"{name if keys else 'fit'}: " + (f"slope {slope}" if slope else "no fit"))
    if never:
        ax.plot([], [], ls="none", marker="o", mfc="none", color="grey", label="open: not reached by T")
    if spec.get("reference") == "2/lr":  # the stability threshold of GD, for a sharpness against η
        lrs = np.sort(pts[x].dropna().unique().astype(float))
        ax.plot(lrs, 2 / lrs, ls="--", lw=1, color="0.4", label="2/η")
    _axes(ax, x, spec, pts[x], yname)
    figures.legend(fig, ax, (n if keys or spec.get("fit") else 0) + never + bool(spec.get("reference")))
    _title(ax, spec, width)
    pts = _named(pts.drop(columns=["budget"], errors="ignore"), spec["y"], spec.get("at"))
    pts.attrs["keys"] = keys + [x] + (["lr"] if best and x != "lr" else [])
    several = bool((pts["runs"].fillna(0) > 1).any())
    caption = f"{_words(spec['y'], spec.get('at'))} against {_words(x)}" + \
        (" at each level's best step size" if best else "") + \
        (" (median over seeds; bars: interquartile range)." if several else " (one run per point).") + \
        (" Open markers sit at the budget T where the median run never got there; they are not fitted."
         if never else "") + (" Dashed: 2/η, the stability threshold of GD." if spec.get("reference") else "") \
        + "".join(fits)
    return Headline(fig, pts, caption)


WORDS = {"t_sep": "t_sep, the iterations to separate", "lr": "the step size η", "n": "n", "d": "d",
         "n_increases": "the number of loss increases", "transition_time": "the transition time τ",
         "t_sep_stay": "the time to separate for good", "final_loss": "the final loss F(W_T)",
         "log10_loss": "log₁₀ F(Wₜ)", "loss": "F(Wₜ)", "accuracy": "the training accuracy",
         "direction_error": "the distance ‖Wₜ/‖Wₜ‖ − u‖ to the max-margin direction u",
         "perceptron_gap": "the gap ‖Wₜ/γ − Ŵₜ‖/‖Ŵₜ‖ to the batch perceptron", "data.margin": "the margin μ",
         "final_sharpness": "the sharpness λ_max(∇²F(W_T)) at T", "max_sharpness": "the largest sharpness over t",
         "sharpness": "the sharpness λ_max(∇²F(Wₜ))"}


def _words(col: str, at=None) -> str:
    """A column as a caption says it (plain Unicode: captions are read in Markdown and HTML)."""
    if at is not None:
        return {"loss": f"F(W at t = {int(at)})", "log10_loss": f"log₁₀ F(W at t = {int(at)})"}.get(
            col, f"{WORDS.get(col, col)} at t = {int(at)}")
    return WORDS.get(col, col.split(".")[-1])


def _styles(pts: pd.DataFrame, keys: list, n_hue: int):
    """A row → (colour, marker, line style): the colour follows the hue (the first `n_hue` keys),
    the marker and line style the other keys, so 3 margins × 3 sizes read as 3 colours × 3
    markers instead of 9 colours from a palette of 8."""
    hue_keys, rest_keys = keys[:n_hue], keys[n_hue:]

    def as_key(row, cols):  # text, so that a null (NaN ≠ NaN) finds itself and 5 equals 5.0
        return tuple(f"{float(row[k]):.12g}" if isinstance(row[k], (int, float, np.integer, np.floating))
                     else str(row[k]) for k in cols)

    def levels(cols):
        rows = pts[cols].drop_duplicates().sort_values(cols) if cols else pts.iloc[:0]
        return [as_key(r, cols) for _, r in rows.iterrows()] if cols else [()]
    hues, rests = levels(hue_keys), levels(rest_keys)
    lines = ["-", "--", ":", "-."]

    def style(row):
        h = hues.index(as_key(row, hue_keys)) if hue_keys else 0
        r = rests.index(as_key(row, rest_keys)) if rest_keys else h
        return figures.OKABE_ITO[h % 8], figures.MARKERS[r % 8], lines[(h // 8 + r // 8) % len(lines)]
    return style


def _title(ax, spec, width) -> None:
    """The declared title, wrapped to the figure's width (≈ 48 characters a line on one column)."""
    if spec.get("title"):
        ax.set_title(textwrap.fill(spec["title"], 48 if width == "single" else 100))


def _at_best_step(df, keys) -> pd.DataFrame:
    """The runs at the best step size of each group of `keys` (one of tied steps; see selection)."""
    from gdbench import selection
    rates = analysis.rates_table(df, by=keys + ["lr"])
    best = selection.representative_best(rates, keys + ["lr"])
    return df.merge(best[keys + ["lr"]], on=keys + ["lr"], how="inner")


def _quantiles(df, keys, *, censored: bool) -> pd.DataFrame:
    g = df.groupby(keys, dropna=False, sort=True)
    out = g.size().rename("runs").to_frame()
    for name, q in (("median", 0.5), ("q25", 0.25), ("q75", 0.75)):
        out[name] = (analysis.grouped_censored_quantile(df, keys, "_y", q) if censored
                     else g["_y"].quantile(q))
    return out.reset_index()


def _named(pts: pd.DataFrame, y: str, at) -> pd.DataFrame:
    """The points table's columns named after the metric (t_sep_median, …), so its headers and
    the reasons for a missing value read as in the other tables."""
    base = y if at is None else f"{y}_at_{int(at)}"
    return pts.rename(columns={q: f"{base}_{q}" for q in ("median", "q25", "q75")})


def _bars(part):
    lo = (part["median"] - part["q25"]).clip(lower=0).fillna(0)
    hi = (part["q75"] - part["median"]).clip(lower=0).fillna(0)
    return np.vstack([lo, hi]) if (lo > 0).any() or (hi > 0).any() else None


def _fit_line(ax, df, part, keys, x, name, colour) -> tuple[str, str | None]:
    """Fit log y on log x over the runs of one series and draw it; the caption's sentence about
    it (or why there is none) and the slope as the legend shows it (None without a fit)."""
    sel = df
    for k in keys:
        sel = sel[(sel[k] == part[k].iloc[0]) | (sel[k].isna() & pd.isna(part[k].iloc[0]))]
    sel = sel[np.isfinite(sel["_y"]) & (sel["_y"] > 0)]
    why = no_fit_reason(sel[x], sel["_y"])
    if why:
        return f" {name}: no fit ({'fewer than 3 levels' if why == 'l' else 'no spread in the values'}).", None
    fit = fit_loglog(sel[x], sel["_y"])
    lo, hi = bootstrap_exponent(sel[x], sel["_y"], n_boot=1000)
    xs = np.geomspace(sel[x].min(), sel[x].max(), 50)
    ax.plot(xs, fit["prefactor"] * xs ** fit["exponent"], color=colour, ls="--", lw=0.9)
    ci = f" [{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) else " (no interval: one value per level)"
    slope = f"{fit['exponent'] + 0.0:.2f}".replace("-", "−")  # two decimals, every slope alike
    return f" {name}: fitted slope {slope}{ci} over {sel[x].nunique()} levels (dashed).", slope


def _axes(ax, x, spec, levels, yname) -> None:
    if x == "lr":
        figures.step_axis(ax, levels) if spec.get("logx", True) else None
    elif spec.get("logx"):
        figures.log_scale(ax, "x")
        figures.level_ticks(ax, "x", levels)
    if spec.get("logy"):
        figures.log_scale(ax, "y")
    elif spec["y"] in ("t_sep", "t_sep_stay", "n_increases", "transition_time"):
        figures.integer_axis(ax)
    ax.set_xlabel(AXIS_LABELS.get(x, x))
    ax.set_ylabel(_ylabel(spec))
    ax.grid(alpha=0.3)


def _ylabel(spec) -> str:
    y, at = spec["y"], spec.get("at")
    if at is None:
        return AXIS_LABELS.get(y, y)
    return {"loss": f"$F(W_{{{int(at)}}})$", "log10_loss": rf"$\log_{{10}} F(W_{{{int(at)}}})$"}.get(
        y, f"{AXIS_LABELS.get(y, y)} at $t = {int(at)}$")


# ---------------------------------------------------------------- curves

def curves(runs, traj, spec, *, width="double") -> Headline:
    """A trajectory column against t: one colour per step size (`hue`, default lr), one panel per
    combination of the other swept keys (the model's first), median over seeds with an
    interquartile band; `reference` draws c/t or c/log t through the first series' last point."""
    y = spec["y"]
    hue = analysis.ALIASES.get(spec.get("hue", "lr"), spec.get("hue", "lr"))
    runs = analysis.numeric_keys(runs)
    if y not in ("log10_loss", "loss") and y not in traj:
        raise SpecError(f"y={y!r}: no such trajectory column (recorded: {', '.join(traj.columns)})")
    q = analysis.curve_quantiles(runs, traj, columns=(y,))
    if spec.get("xscale") == "log":  # t = 0 has no place on a log axis (symlog keeps it)
        q = q[q["iter"] >= 1]
    if spec.get("xmax") is not None:
        q = q[q["iter"] <= int(spec["xmax"])]
    keys = q.attrs["keys"]
    panel_keys = analysis.model_columns(keys) + [k for k in keys if k not in analysis.model_columns(keys) + [hue]]
    panels = list(figures.series(q, panel_keys))[:6]
    ncols = min(len(panels), 3)
    nrows = -(-len(panels) // ncols)
    w = figures.WIDTHS["double" if len(panels) > 1 else width]
    fig = plt.figure(figsize=(w, (2.3 if len(panels) > 1 else 2.5) * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    levels = sorted(q[hue].dropna().unique())
    cmap = plt.get_cmap("viridis", max(len(levels), 2))
    for ax, (name, part) in zip(axes.flat, panels):
        for k, v in enumerate(levels):
            sub = part[part[hue] == v]
            if len(sub):
                lab = f"η = {figures.step_label(v)}" if hue == "lr" else f"{hue} = {v:g}"
                ax.plot(sub["iter"], sub[f"{y}_median"], color=cmap(k), label=lab)
                ax.fill_between(sub["iter"], sub[f"{y}_q25"], sub[f"{y}_q75"], color=cmap(k), alpha=0.2, lw=0,
                                rasterized=True)
        if spec.get("reference"):
            _reference(ax, part[part[hue] == levels[0]], y, spec["reference"])
        _curve_axes(ax, spec, textwrap.fill(name if len(panels) > 1 else spec.get("title") or "", 48 // ncols))
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel(AXIS_LABELS.get(y, y) if not (y == "loss" and not spec.get("logy")) else "$F(W_t)$")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figures.outside_legend(fig, handles, labels, max_cols=8 if w > 5 else 4)
    if len(panels) > 1 and spec.get("title"):
        fig.suptitle(textwrap.fill(spec["title"], 100))
    table = q[[k for k in keys] + ["iter", "runs", f"{y}_median", f"{y}_q25", f"{y}_q75"]]
    table.attrs["keys"] = keys + ["iter"]
    caption = (f"{_words(y)} against the iteration t, one colour per {'step size' if hue == 'lr' else hue}"
               " (median over seeds; band: interquartile range)"
               + (f"; dotted: the reference {spec['reference']}" if spec.get("reference") else "")
               + (f"; the axis stops at {spec['ymin']:g}, curves that fall below it leave the panel"
                  if spec.get("ymin") is not None else "") + ".")
    return Headline(fig, table, caption)


def _curve_axes(ax, spec, title) -> None:
    scale = spec.get("xscale", "symlog")
    if scale in ("symlog", "log"):
        figures.log_scale(ax, "x", symlog=scale == "symlog")  # symlog keeps t = 0, the initial point
    if spec.get("logy"):
        figures.log_scale(ax, "y")
    if spec.get("ymin") is not None:  # e.g. the loss after separation falls by decades the story does not need
        top = max((np.nanmax(np.asarray(line.get_ydata(), float)) for line in ax.get_lines()), default=1.0)
        bottom = float(spec["ymin"])
        ax.set_ylim(bottom, top + 0.05 * max(top - bottom, 1e-12))  # the autoscaled top counts what is cut off
    ax.set_xlabel("iteration $t$")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)


def _reference(ax, sub, y, kind) -> None:
    """A dotted c/t or c/log t line through the series' last recorded point."""
    sub = sub[sub["iter"] >= 2].sort_values("iter")
    if not len(sub):
        return
    t = sub["iter"].to_numpy(float)
    shape = 1 / t if kind == "1/t" else 1 / np.log(t)
    last = sub[f"{y}_median"].iloc[-1]
    if y == "log10_loss":
        ax.plot(t, last + np.log10(shape / shape[-1]), "k:", lw=1, label=f"reference {kind}")
    else:
        ax.plot(t, last * shape / shape[-1], "k:", lw=1, label=f"reference {kind}")


# ---------------------------------------------------------------- budget, gap, heatmap

def budget(runs, traj, spec, *, width="single") -> Headline:
    """log10 F_T against the budget T: one line per step schedule (η = c·T, fixed η) seen at two
    or more budgets, medians over seeds, the fitted exponent in the legend (≥ 3 budgets)."""
    runs = analysis.numeric_keys(runs)
    fits = analysis.budget_table(runs, n_boot=1000)
    if len(fits):  # the schedules asked for, else every one with a fitted exponent (≥ 3 budgets)
        want = {analysis.PROPORTIONAL: spec.get("c"), analysis.FIXED: spec.get("fixed")}
        keep = [(want[r.schedule] is None and r.no_fit is None) or
                (want[r.schedule] is not None and any(np.isclose(r.value, v) for v in want[r.schedule]))
                for r in fits.itertuples()]
        fits = fits[keep]
    if not len(fits):
        return None
    ok = runs[runs["status"] == "ok"].assign(_c=lambda d: d["lr"] / d["iterations"])
    fig, ax = figures.new_figure(width, aspect=0.8)
    ax = ax[0, 0]
    rows = []
    rest = [k for k in fits.attrs["keys"] if k not in ("schedule", "value")]
    for i, (_, fit) in enumerate(fits.sort_values(["schedule", "value"]).iterrows()):
        col = "_c" if fit["schedule"] == analysis.PROPORTIONAL else "lr"
        sub = ok[np.isclose(ok[col], fit["value"])]
        for k in rest:
            sub = sub[sub[k] == fit[k]]
        med = (sub.groupby("iterations")["final_log_loss"].median() / np.log(10)).sort_index()
        slope = f"{fit['exponent']:.2f}".replace("-", "−") if np.isfinite(fit["exponent"]) else "no fit"
        name = (f"η = {fit['value']:g}·T" if col == "_c" else f"η = {figures.step_label(fit['value'])}")
        ax.plot(med.index, med.to_numpy(), marker=figures.MARKERS[i % 8], ls="-" if col == "_c" else "--",
                label=f"{name}: slope {slope}")
        rows += [{**{k: fit[k] for k in rest}, "schedule": fit["schedule"], "value": fit["value"], "iterations": T,
                  "log10_final_loss": v, "exponent": fit["exponent"]} for T, v in med.items()]
    figures.log_scale(ax, "x")
    figures.level_ticks(ax, "x", ok["iterations"].unique())
    _reference_slopes(ax, ok["iterations"].unique(), [r["log10_final_loss"] for r in rows])
    ax.set_xlabel("budget $T$ (iterations)")
    ax.set_ylabel(r"$\log_{10} F(W_T)$")
    ax.grid(alpha=0.3)
    figures.legend(fig, ax, len(fits) + 2)
    table = pd.DataFrame(rows)
    table.attrs["keys"] = rest + ["schedule", "value", "iterations"]
    return Headline(fig, table, "The final loss F(W_T) against the budget T: solid lines scale the step with the "
                    "budget (η = c·T), dashed ones keep it fixed; the legend gives the fitted exponent of F_T in T "
                    "(reference −2 for η = c·T, −1 for a fixed η; Wu et al. 2024).")


def _reference_slopes(ax, budgets, values) -> None:
    """Grey guides of slope −1 and −2 in log F against log T (fixed η, and η = c·T by Wu et al.),
    from the smallest budget at the top of the data."""
    t = np.array(sorted(budgets), float)
    if len(t) < 2 or not values:
        return
    top = np.nanmax(values)
    for slope, ls in ((-1, ":"), (-2, "-.")):
        ax.plot(t, top + slope * np.log10(t / t[0]), color="grey", ls=ls, lw=0.9, label=f"slope {slope} (guide)".replace("-", "−"))


def gap(runs, traj, spec, *, width="single") -> Headline | None:
    """The perceptron table's gap against γ (final and maximum over t)."""
    table = analysis.perceptron_table(analysis.numeric_keys(runs))
    if not len(table):
        return None
    return Headline(figures.perceptron_gap(table, width=width), table,
                    "‖Wₜ/γ − Ŵₜ‖/‖Ŵₜ‖, the distance of GD scaled by its step to the batch perceptron from the "
                    "same start, at the last iteration (solid) and its maximum over t (dashed), against γ: it "
                    "falls to 0 as γ → ∞ where the reduction holds.")


def heatmap(runs, traj, spec, *, width="single") -> Headline | None:
    """`value` of the rates (or oscillation) table over step size × model; None when degenerate."""
    runs = analysis.numeric_keys(runs)
    table = (analysis.oscillation_table(runs) if spec.get("table") == "oscillation"
             else analysis.rates_table(runs, traj))
    if spec["value"] not in table:
        raise SpecError(f"value={spec['value']!r}: no such column of the {spec.get('table', 'rates')} table")
    fig = figures.heatmap(table, value=spec["value"], title=spec.get("title") or spec["value"], width=width)
    if fig is None:
        return None
    keys = table.attrs["keys"]
    return Headline(fig, table[keys + [spec["value"]]].assign(), f"{_words(spec['value'])} over step size and model.")
