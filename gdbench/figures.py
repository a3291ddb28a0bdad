"""Figures of a sweep (matplotlib, Agg): each a public function over the analysis tables or the
runs/trajectory DataFrames, returning a Figure (or None where the data cannot make an honest one:
a heatmap of one row, one column or one value), so a notebook user can restyle it. `report.py`
saves them as PNG and PDF; `headline.py` builds the study-declared figures from the same pieces;
the paper style (widths, fonts, palette, ticks, legends) is `gdbench.plotstyle`, re-exported here.

Step sizes are η, the loss F(W_t), iterations t; loss axes show log10 F so that losses below
1e-308 (recorded in the log domain) still plot; seeds appear as a median line with an
interquartile band.
"""

from __future__ import annotations

import textwrap

import matplotlib
import matplotlib.colors
import matplotlib.lines
import matplotlib.ticker
import numpy as np
import pandas as pd

from gdbench import analysis, render
from gdbench.plotstyle import (MARKERS, OKABE_ITO, WIDTHS, clipped_texts, decade_label,  # noqa: F401
                               integer_axis, label, legend, level_ticks, log_scale, new_figure, outside_legend,
                               plt, save, series, short_number, step_axis, step_label, style_of,
                               varying_columns)  # public here too


def loss_curves(curves: pd.DataFrame, *, panel=None, color="lr", max_lines: int = 8, title=None,
                width: str = "double") -> plt.Figure:
    """log10 F(W_t) (top) and accuracy (bottom) against t, one column of panels per model (the
    `panel` columns; default: the model columns), one colour per step size, median over seeds
    with an interquartile band. `curves` is `analysis.curve_quantiles(...)` for one data setting.
    More than `max_lines` step sizes are thinned to `max_lines` evenly spaced ones (said in the
    legend title) — more curves on one panel cannot be read."""
    keys = curves.attrs.get("keys", [])
    panel = analysis.model_columns(keys) if panel is None else list(panel)
    panels = list(series(curves, panel))[:4]
    w = WIDTHS.get(width, width) if isinstance(width, str) else float(width)
    fig = plt.figure(figsize=(w, 4.0 if len(panels) > 1 else 3.6), layout="constrained")
    axes = fig.subplots(2, len(panels), squeeze=False, sharex=True)
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
                ax.plot(t, sub[f"{col}_median"], color=cmap(k), label=_lr_label(value, color))
                ax.fill_between(t, sub[f"{col}_q25"], sub[f"{col}_q75"], color=cmap(k), alpha=0.2, lw=0,
                                rasterized=True)  # bands as pixels: PDFs stay small and fast
        axes[0, j].set_title(textwrap.fill(panel_title, 26 if len(panels) < 4 else 20))
        axes[1, j].set_xlabel("iteration $t$")
        for ax in axes[:, j]:
            log_scale(ax, "x", symlog=True)  # symlog keeps t = 0, the initial point
            ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(r"$\log_{10} F(W_t)$")
    axes[1, 0].set_ylabel("training accuracy")
    entries = {}  # every step size of every panel, once (a panel may lack some)
    for ax in axes[0]:
        entries.update(zip(*reversed(ax.get_legend_handles_labels())))
    order = sorted(entries, key=lambda lab: next(k for k, v in enumerate(colours) if _lr_label(v, color) == lab))
    outside_legend(fig, [entries[k] for k in order], order, max_cols=8 if w > 5 else 4,
                   title=None if shown_of == len(colours) else f"{len(colours)} of {shown_of} step sizes")
    if title:
        fig.suptitle(title)
    return fig


def sharpness_curves(curves: pd.DataFrame, *, panel=None, max_lines: int = 8, title=None,
                     width: str = "double") -> plt.Figure:
    """Cohen et al.'s (2021) figure 1 layout: log10 F(W_t) (left) next to the sharpness
    λ_max(∇²F(W_t)) (right) against t, one colour per step size, with the step's stability
    threshold (2/η for GD) as a dashed line of the same colour; one row per model (the `panel`
    columns, at most 4). `curves` is `analysis.curve_quantiles(..., columns=("log10_loss",
    "sharpness"))` for one data setting with a `stability_threshold` column; medians over seeds
    with an interquartile band. The iteration axis is linear: the plateau at 2/η is the point.
    The sharpness axis is logarithmic when the values and thresholds span more than 30×."""
    keys = curves.attrs.get("keys", [])
    panel = analysis.model_columns(keys) if panel is None else list(panel)
    panels = list(series(curves, panel))[:4]
    w = WIDTHS.get(width, width) if isinstance(width, str) else float(width)
    fig = plt.figure(figsize=(w, 0.4 + 1.9 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 2, squeeze=False, sharex="row")
    lrs = sorted(curves["lr"].dropna().unique())
    shown_of = len(lrs)
    if len(lrs) > max_lines:
        lrs = [lrs[i] for i in np.unique(np.linspace(0, len(lrs) - 1, max_lines).round().astype(int))]
    cmap = plt.get_cmap("viridis", max(len(lrs), 2))
    for i, (panel_title, part) in enumerate(panels):
        loss_ax, sharp_ax = axes[i]
        values = []
        for k, lr in enumerate(lrs):
            sub = part[part["lr"] == lr]
            if not len(sub):
                continue
            loss_ax.plot(sub["iter"], sub["log10_loss_median"], color=cmap(k), label=f"η = {step_label(lr)}")
            loss_ax.fill_between(sub["iter"], sub["log10_loss_q25"], sub["log10_loss_q75"], color=cmap(k),
                                 alpha=0.2, lw=0, rasterized=True)
            est = sub.dropna(subset=["sharpness_median"])
            sharp_ax.plot(est["iter"], est["sharpness_median"], color=cmap(k), marker="." if len(est) < 30 else None)
            sharp_ax.fill_between(est["iter"], est["sharpness_q25"], est["sharpness_q75"], color=cmap(k), alpha=0.2,
                                  lw=0, rasterized=True)
            threshold = sub["stability_threshold"].median()
            if np.isfinite(threshold):
                sharp_ax.axhline(threshold, color=cmap(k), ls="--", lw=0.9)
                values.append(threshold)
            values += est["sharpness_median"].tolist()
        positive = [v for v in values if np.isfinite(v) and v > 0]
        if positive and max(positive) / min(positive) > 30:
            sharp_ax.set_yscale("log")
        loss_ax.set_title(textwrap.fill(panel_title, 40))
        loss_ax.set_ylabel(r"$\log_{10} F(W_t)$")
        sharp_ax.set_ylabel(r"sharpness $\lambda_{\max}(\nabla^2 F(W_t))$")
        for ax in axes[i]:
            ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("iteration $t$")
    entries = {}
    for ax in axes[:, 0]:
        entries.update(zip(*reversed(ax.get_legend_handles_labels())))
    order = [f"η = {step_label(lr)}" for lr in lrs if f"η = {step_label(lr)}" in entries]
    handles = [entries[k] for k in order]
    if np.isfinite(curves["stability_threshold"]).any():
        handles.append(matplotlib.lines.Line2D([], [], color="0.3", ls="--", lw=0.9))
        order.append("2/η (stability threshold)")
    outside_legend(fig, handles, order, max_cols=5 if w > 5 else 3,
                   title=None if shown_of == len(lrs) else f"{len(lrs)} of {shown_of} step sizes")
    if title:
        fig.suptitle(title)
    return fig


def _lr_label(value, color: str) -> str:
    return f"η = {step_label(value)}" if color == "lr" else f"{color} = {short_number(value)}"


# ---------------------------------------------------------------- metrics against the step size

def versus_step_size(table: pd.DataFrame, *, y: str, ylabel: str, low=None, high=None, logy=False,
                     series_keys=None, width: str = "single") -> plt.Figure:
    """A metric of an aggregated table (rates/oscillation/perceptron) against the step size η,
    one line per series (default: every key but lr), with an optional band between the `low`
    and `high` columns."""
    keys = table.attrs.get("keys", [])
    series_keys = [k for k in keys if k != "lr"] if series_keys is None else list(series_keys)
    fig, ax = new_figure(width)
    ax = ax[0, 0]
    n = 0
    for i, (name, part) in enumerate(series(table.sort_values("lr"), series_keys)):
        colour, marker = style_of(i)
        line, = ax.plot(part["lr"], part[y], color=colour, marker=marker, label=name)
        n += 1
        if low and high:
            ax.fill_between(part["lr"], part[low], part[high], color=line.get_color(), alpha=0.2, lw=0,
                            rasterized=True)
    step_axis(ax, table["lr"])
    if logy:
        log_scale(ax, "y")
    ax.set_xlabel(r"step size $\eta$")
    ax.set_ylabel(ylabel)
    if not logy and y in ("transition_time", "n_increases"):
        integer_axis(ax)
    ax.grid(alpha=0.3)
    legend(fig, ax, n)
    return fig


def transition_time(table: pd.DataFrame, **kw) -> plt.Figure:
    """τ (the last iteration at which the loss increased) against η; `table` is the oscillation table."""
    return versus_step_size(table, y="transition_time", ylabel=r"transition time $\tau$", **kw)


def perceptron_gap(table: pd.DataFrame, *, width: str = "single") -> plt.Figure:
    """Final (solid) and maximum over t (dashed) ‖W_t/γ − Ŵ_t‖/‖Ŵ_t‖ against γ (log-log);
    `table` is the perceptron table. A gap of exactly 0 cannot sit on a log axis: it is drawn
    at the bottom edge with an open marker."""
    keys = table.attrs.get("keys", [])
    fig, ax = new_figure(width)
    ax = ax[0, 0]
    n = 0
    positive = pd.concat([table["final_gap"], table["max_gap"]])
    floor = positive[positive > 0].min() / 10 if (positive > 0).any() else 1e-16
    same = np.allclose(table["final_gap"], table["max_gap"], rtol=1e-9, equal_nan=True)
    for i, (name, part) in enumerate(series(table.sort_values("lr"), [k for k in keys if k != "lr"])):
        colour, marker = style_of(i)
        ax.plot(part["lr"], part["final_gap"].clip(lower=floor), color=colour, marker=marker, label=name)
        if not same:
            ax.plot(part["lr"], part["max_gap"].clip(lower=floor), ls="--", color=colour)
        n += 1
    log_scale(ax, "y")
    step_axis(ax, table["lr"])
    ax.set_xlabel(r"step size $\gamma$")
    ax.set_ylabel(r"$\|W_t/\gamma - \hat W_t\| / \|\hat W_t\|$")
    ax.grid(alpha=0.3)
    if not same:  # when the gap is largest at the last iteration everywhere, one line says both
        ax.plot([], [], color="grey", label="final $t$ (solid)")
        ax.plot([], [], color="grey", ls="--", label="max over $t$ (dashed)")
    legend(fig, ax, n + (0 if same else 2))
    return fig


def tsep_scaling(runs: pd.DataFrame, scaling: pd.DataFrame, *, x: str = "d", by=None, title=None,
                 width: str = "single") -> plt.Figure:
    """t_sep against x on log-log axes at each x's best step size: per-x medians as points, the
    fitted power law as a line with its exponent and bootstrap interval in the legend — only
    where the scaling table has a fit (≥ 3 levels with spread; otherwise "no fit" and why).
    `scaling` is `analysis.scaling_table(runs, x=x)`, which carries the points it fitted."""
    best = pd.DataFrame(scaling.attrs["points"])
    rest = scaling.attrs.get("keys", [])
    fig, ax = new_figure(width)
    ax = ax[0, 0]
    shown = []
    for i, (_, fit) in enumerate(scaling.iterrows()):
        part = best
        for k in rest:
            part = part[(part[k] == fit[k]) | (part[k].isna() & pd.isna(fit[k]))]
        part = part.sort_values(x)
        shown += part[x].tolist()
        name = label(fit, varying_columns(scaling, rest)) if len(scaling) > 1 else "median"
        colour, marker = style_of(i)
        pts, = ax.plot(part[x], part["t_sep_median"], color=colour, marker=marker, lw=1)
        if np.isfinite(fit["exponent"]):
            xs = np.geomspace(part[x].min(), part[x].max(), 50)
            ax.plot(xs, fit["prefactor"] * xs ** fit["exponent"], color=colour, ls="--", lw=0.9)
            ci = (f" [{fit['ci_low']:.2f}, {fit['ci_high']:.2f}]" if np.isfinite(fit.get("ci_low", np.nan)) else "")
            pts.set_label(f"{name}: slope {fit['exponent']:.2f}{ci}")
        else:
            pts.set_label(f"{name}: no fit ({'< 3 levels' if fit.get('no_fit') == 'l' else 'no spread'})")
    log_scale(ax, "x")
    log_scale(ax, "y")
    level_ticks(ax, "x", shown)
    ax.set_xlabel({"d": "dimension $d$", "n": "samples $n$"}.get(x, x))
    ax.set_ylabel(r"iterations to separate $t_{\mathrm{sep}}$")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    legend(fig, ax, len(scaling))
    return fig


def heatmap(table: pd.DataFrame, *, value: str, title: str, rows=None, width: str = "single", value_label=None):
    """Step size (columns) × model (rows) heatmap of one aggregated metric, values written in the
    cells ("—" where missing); log colour scale for positive data. None when there is nothing a
    colour scale can show: a single row or column, or one value throughout."""
    keys = table.attrs.get("keys", [])
    rows = [k for k in keys if k != "lr"] if rows is None else list(rows)
    names, data = [], []
    lrs = sorted(table["lr"].unique())
    for name, part in series(table, rows):
        names.append(name)
        s = part.groupby("lr")[value].median()  # one row per lr after grouping; median is a no-op
        data.append([s.get(lr, np.nan) for lr in lrs])
    z = np.asarray(data, float)
    finite = z[np.isfinite(z)]
    if min(z.shape) < 2 or len(finite) == 0 or np.ptp(finite) == 0:
        return None  # one row or one column is a line plot's job (versus), one value no figure's
    # room for the row labels (≈ 0.06 in a character at 7 pt), the cells and the colour bar, up to
    # two columns of a paper; longer labels are wrapped
    longest = max(len(n) for n in names)
    w = min(WIDTHS["double"], max(WIDTHS["single"], 0.06 * longest + 0.45 * len(lrs) + 1.4))
    if 0.06 * longest + 0.45 * len(lrs) + 1.4 > w:
        names = [textwrap.fill(n, 22) for n in names]
    lines = sum(n.count("\n") + 1 for n in names)
    fig, ax = plt.subplots(figsize=(w, 0.14 * lines + 0.16 * len(names) + 1.3), layout="constrained")
    positive = finite.min() > 0
    norm = matplotlib.colors.LogNorm() if positive else None  # the colour bar then reads in the values' units
    im = ax.imshow(np.ma.masked_invalid(z), aspect="auto", cmap="viridis", norm=norm)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            dark = np.isfinite(z[i, j]) and im.norm(z[i, j]) < 0.5  # viridis: low = dark
            ax.text(j, i, "—" if not np.isfinite(z[i, j]) else render.format_number(float(z[i, j])), ha="center",
                    va="center", fontsize=6, color="white" if dark else "black")
    ax.set_xticks(range(len(lrs)), [step_label(v) for v in lrs])
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel(r"step size $\eta$")
    ax.set_title(title, loc="left")
    ax.spines[:].set_visible(False)
    bar = fig.colorbar(im, ax=ax, label=value_label or value)
    if positive:
        bar.ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: decade_label(v) or f"{v:g}"))
        bar.ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    return fig
