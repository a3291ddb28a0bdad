"""Figures of a sweep (matplotlib, Agg): each a public function over the analysis tables, returning
a Figure, so a notebook user can restyle it. `report.py` saves them as PNG and PDF.

Conventions: step sizes are η, the loss is F(W_t), iterations are t; loss axes show log10 F so
that losses below 1e-308 (recorded in the log domain) still plot; seeds appear as a median line
with an interquartile band.
"""
from __future__ import annotations

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from gdbench import analysis  # noqa: E402

# no "savefig.bbox: tight": it draws every figure once more per file; tight_layout() suffices
plt.rcParams.update({"font.size": 9, "axes.titlesize": 9, "legend.fontsize": 7, "figure.dpi": 120})


def label(row, columns) -> str:
    """A short legend label from configuration values, e.g. `two_layer relu width=32`."""
    parts = []
    for c in columns:
        v = row[c]
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        if c in ("model", "activation", "dataset", "algorithm", "loss"):
            if not (c == "activation" and row.get("model") == "linear"):
                parts.append(str(v))
        else:
            parts.append(f"{c.split('.')[-1]}={_num(v)}")
    return " ".join(parts) or "all"


def _num(v) -> str:
    return f"{v:.3g}" if isinstance(v, (float, np.floating)) else str(v)


def _varying(df, columns) -> list:
    """The columns that take more than one value in df (labels need only those)."""
    return [c for c in columns if c in df and df[c].nunique(dropna=False) > 1]


def _series(df, columns):
    """Iterate (label, sub-frame) over the distinct values of `columns` (all rows when none);
    labels name only the columns that vary."""
    given, columns = list(columns or []), _varying(df, columns or [])
    if not columns:
        yield (label(df.iloc[0], given) if given and len(df) else "all"), df
        return
    for _, part in df.groupby(columns, dropna=False, sort=True):
        yield label(part.iloc[0], columns), part


def _legend(fig, ax, n: int) -> None:
    """A legend inside the axes for a few series; below them (figure grown to fit) for many."""
    if n <= 8:
        ax.legend(loc="best")
        fig.tight_layout()
        return
    rows = (n + 1) // 2
    w, h = fig.get_size_inches()
    extra = 0.16 * rows + 0.3
    fig.set_size_inches(max(w, 6.5), h + extra)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=6, frameon=False)
    fig.subplots_adjust(left=0.12, right=0.97, top=0.95, bottom=(extra + 0.5) / (h + extra))


def loss_curves(curves: pd.DataFrame, *, panel=None, color="lr", max_lines: int = 10, title=None) -> plt.Figure:
    """log10 F(W_t) (top) and accuracy (bottom) against t, one column of panels per model (the
    `panel` columns; default: the model columns), one colour per step size, median over seeds
    with an interquartile band. `curves` is `analysis.curve_quantiles(...)` for one data setting.
    More than `max_lines` step sizes are thinned to `max_lines` evenly spaced ones (said in the
    legend title) — more curves on one panel cannot be read."""
    keys = curves.attrs.get("keys", [])
    panel = analysis.model_columns(keys) if panel is None else list(panel)
    panels = list(_series(curves, panel))
    fig, axes = plt.subplots(2, len(panels), figsize=(3.2 * len(panels) + 0.6, 5.2), squeeze=False,
                             sharex=True)
    colours = sorted(curves[color].dropna().unique())
    shown_of = len(colours)
    if len(colours) > max_lines:
        colours = [colours[i] for i in np.unique(np.linspace(0, len(colours) - 1, max_lines).round().astype(int))]
    cmap = plt.get_cmap("viridis", max(len(colours), 2))
    for j, (panel_title, part) in enumerate(panels):
        for k, value in enumerate(colours):
            sub = part[part[color] == value]
            if not len(sub):
                continue
            t = sub["iter"].to_numpy()
            for row, col in ((0, "log10_loss"), (1, "accuracy")):
                ax = axes[row, j]
                ax.plot(t, sub[f"{col}_median"], color=cmap(k), lw=1.1, label=f"η={_num(value)}")
                ax.fill_between(t, sub[f"{col}_q25"], sub[f"{col}_q75"], color=cmap(k), alpha=0.2, lw=0,
                                rasterized=True)  # bands as pixels: PDFs stay small and fast
        axes[0, j].set_title(panel_title)
        axes[0, j].set_ylabel(r"$\log_{10} F(W_t)$")
        axes[1, j].set_ylabel("training accuracy")
        axes[1, j].set_xlabel("iteration t")
        for ax in axes[:, j]:
            ax.set_xscale("symlog", linthresh=1)  # keeps t = 0, the initial point
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())  # symlog minors: thousands of ticks
            ax.grid(alpha=0.3)
    axes[0, -1].legend(loc="best", ncol=1 if len(colours) < 8 else 2,
                       title=None if shown_of == len(colours) else f"{len(colours)} of {shown_of} step sizes")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def versus_step_size(table: pd.DataFrame, *, y: str, ylabel: str, low=None, high=None, logy=False,
                     series=None) -> plt.Figure:
    """A metric of an aggregated table (rates/oscillation/perceptron) against the step size η,
    one line per `series` (default: the model columns and every other non-lr key), with an
    optional band between the `low` and `high` columns."""
    keys = table.attrs.get("keys", [])
    series = [k for k in keys if k != "lr"] if series is None else list(series)
    fig, ax = plt.subplots(figsize=(4.6, 3.3))
    n = 0
    for name, part in _series(table.sort_values("lr"), series):
        line, = ax.plot(part["lr"], part[y], marker="o", ms=3, lw=1.1, label=name)
        n += 1
        if low and high:
            ax.fill_between(part["lr"], part[low], part[high], color=line.get_color(), alpha=0.2, lw=0,
                            rasterized=True)
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(r"step size $\eta$")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    _legend(fig, ax, n)
    return fig


def transition_time(table: pd.DataFrame, **kw) -> plt.Figure:
    """τ (the last iteration at which the loss increased) against η; `table` is the oscillation table."""
    return versus_step_size(table, y="transition_time", ylabel=r"transition time $\tau$ (iterations)", **kw)


def perceptron_gap(table: pd.DataFrame, **kw) -> plt.Figure:
    """Final and maximum ‖W_t/γ − Ŵ_t‖/‖Ŵ_t‖ against γ (log-log); `table` is the perceptron table."""
    keys = table.attrs.get("keys", [])
    series = [k for k in keys if k != "lr"]
    fig, ax = plt.subplots(figsize=(4.6, 3.3))
    n = 0
    for name, part in _series(table.sort_values("lr"), series):
        line, = ax.plot(part["lr"], part["final_gap"], marker="o", ms=3, label=f"{name}: final")
        ax.plot(part["lr"], part["max_gap"], ls="--", color=line.get_color(), label=f"{name}: max over t")
        n += 2
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"step size $\gamma$")
    ax.set_ylabel(r"$\|W_t/\gamma - \hat W_t\| \,/\, \|\hat W_t\|$")
    ax.grid(alpha=0.3)
    _legend(fig, ax, n)
    return fig


def tsep_scaling(runs: pd.DataFrame, scaling: pd.DataFrame, *, x: str = "d", by=None, title=None) -> plt.Figure:
    """t_sep against x on log-log axes at each x's best step size: per-x medians as points, the
    fitted power law as a line, its exponent and bootstrap interval in the legend. `scaling` is
    `analysis.scaling_table(runs, x=x)`, which carries the points it fitted."""
    if "points" in scaling.attrs:
        best = pd.DataFrame(scaling.attrs["points"])
    else:  # a scaling table built elsewhere: recompute the best-step medians
        keys = analysis.group_columns(runs, by)
        if x not in keys:
            keys = [k for k in keys if k != "lr"] + [x, "lr"]
        rates = analysis.rates_table(runs, by=keys)
        best = rates[rates["best"]]
    rest = scaling.attrs.get("keys", [])
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    for _, fit in scaling.iterrows():
        part = best
        for k in rest:
            part = part[(part[k] == fit[k]) | (part[k].isna() & pd.isna(fit[k]))]
        part = part.sort_values(x)
        name = label(fit, _varying(scaling, rest)) if len(scaling) > 1 else "fit"
        pts, = ax.plot(part[x], part["t_sep_median"], "o", ms=4)
        if np.isfinite(fit["exponent"]):
            xs = np.geomspace(part[x].min(), part[x].max(), 50)
            ax.plot(xs, fit["prefactor"] * xs ** fit["exponent"], color=pts.get_color(),
                    label=f"{name}: slope {fit['exponent']:.2f} [{fit['ci_low']:.2f}, {fit['ci_high']:.2f}]")
        else:
            pts.set_label(f"{name}: no fit")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel({"d": "dimension d", "n": "samples n"}.get(x, x))
    ax.set_ylabel(r"iterations to separate $t_{\mathrm{sep}}$")
    ax.grid(alpha=0.3, which="both")
    if title:
        ax.set_title(title)
    _legend(fig, ax, len(scaling))
    return fig


def heatmap(table: pd.DataFrame, *, value: str, title: str, rows=None) -> plt.Figure:
    """Step size (columns) × model (rows) heatmap of one aggregated metric, values written in the
    cells ("—" where missing); log colour scale for positive data."""
    keys = table.attrs.get("keys", [])
    rows = [k for k in keys if k != "lr"] if rows is None else list(rows)
    names, data = [], []
    lrs = sorted(table["lr"].unique())
    for name, part in _series(table, rows):
        names.append(name)
        s = part.groupby("lr")[value].median()  # one row per lr after grouping; median is a no-op
        data.append([s.get(lr, np.nan) for lr in lrs])
    z = np.asarray(data, float)
    fig, ax = plt.subplots(figsize=(0.7 * len(lrs) + 2.8, 0.42 * len(names) + 1.6))
    positive = np.nanmin(z) > 0 if np.isfinite(z).any() else False
    show = np.log10(z) if positive else z
    im = ax.imshow(np.ma.masked_invalid(show), aspect="auto", cmap="magma_r")
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            dark = np.isfinite(show[i, j]) and im.norm(show[i, j]) > 0.55  # magma_r: high = dark
            ax.text(j, i, "—" if not np.isfinite(z[i, j]) else f"{z[i, j]:.3g}", ha="center", va="center",
                    fontsize=7, color="white" if dark else ("grey" if not np.isfinite(z[i, j]) else "black"))
    ax.set_xticks(range(len(lrs)), [f"{v:g}" for v in lrs], rotation=45)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel(r"step size $\eta$")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label=(f"log10 {value}" if positive else value))
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, path_stem) -> list:
    """Write `<stem>.png` and `<stem>.pdf`; close the figure; return the paths."""
    out = []
    for ext in ("png", "pdf"):
        p = f"{path_stem}.{ext}"
        fig.savefig(p)
        out.append(p)
    plt.close(fig)
    return out
