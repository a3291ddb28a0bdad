"""The paper style of every gdbench figure, and the pieces figures are built from.

Conventions: widths of one column (3.3 in) or two (6.75 in) (`WIDTHS`); PDFs embed TrueType
(Type 42) fonts; categories use the Okabe–Ito colour-blind-safe palette (`style_of` gives 64
distinct colour/marker pairs) and ordered step sizes the viridis map; legends sit outside the axes
once there are more than a few series, in as many columns as fit (`outside_legend`); log axes
with few levels label the levels themselves (8, 32, 128), step sizes read 10⁻², 0.1, 10³
(`step_label`); `clipped_texts` says whether anything is drawn outside the figure; `save` writes
PNG and PDF.
"""
from __future__ import annotations

import logging
import math

import matplotlib
import matplotlib.colors
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# Embedding TrueType fonts in PDFs runs fontTools' subsetter, which logs every table it touches at
# INFO; under Hydra's INFO root logger that is hundreds of lines per report. Warnings still show.
for _name in ("fontTools", "PIL"):
    logging.getLogger(_name).setLevel(logging.WARNING)

WIDTHS = {"single": 3.3, "double": 6.75}  # inches: one column / the full text width of a two-column paper
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
plt.rcParams.update({
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7, "xtick.labelsize": 7,
    "ytick.labelsize": 7, "figure.dpi": 150, "pdf.fonttype": 42, "ps.fonttype": 42,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO), "lines.linewidth": 1.2, "lines.markersize": 4,
    "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False,
    "pdf.compression": 1,  # zlib's fastest level: a few % larger PDFs, drawn noticeably faster
})


# ---------------------------------------------------------------- labels and ticks

SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def step_label(v) -> str:
    """A step size as text: powers of ten from 10⁻² and 10² on as 10ᵏ, others with three
    significant digits (0.1, 1, 10, 0.05). Unicode superscripts, not mathtext: the same look, and
    no TeX-like parse for every tick label of every figure."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return str(v)
    v = float(v)
    if v > 0:
        k = math.log10(v)
        if abs(k - round(k)) < 1e-9 and abs(k) >= 2:
            return "10" + str(int(round(k))).translate(SUPERSCRIPTS)
    return f"{v:g}"


def decade_label(v, _pos=None) -> str:
    """Decade tick labels in the same style as `step_label` (1, 10, 10², 10⁻³)."""
    if v <= 0:
        return ""
    k = math.log10(v)
    if abs(k - round(k)) > 1e-9:
        return ""
    return step_label(v) if abs(k) >= 2 else f"{v:g}"


def label(row, columns) -> str:
    """A short legend label from configuration values, e.g. `two_layer relu m=32`."""
    parts = []
    for c in columns:
        v = row[c]
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        if c in ("model", "activation", "dataset", "algorithm", "loss", "model_name"):
            if not (c == "activation" and row.get("model") == "linear"):
                parts.append(str(v).replace("_", " "))
            act = row.get("activation")
            if c == "model" and "activation" not in columns and v != "linear" and isinstance(act, str):
                parts.append(act.replace("_", " "))  # "two layer" alone hides which network it is
        elif c == "lr":
            parts.append(f"η={step_label(v)}")
        else:
            name = c.split(".")[-1]
            parts.append(f"{SYMBOLS.get(name, name)}={short_number(v)}")
    return " ".join(parts) or "all"


SYMBOLS = {"margin": "μ", "width": "m", "iterations": "T"}  # config keys a reader knows by their symbol


def short_number(v) -> str:
    return f"{v:.3g}" if isinstance(v, (float, np.floating)) else str(v)


def level_ticks(ax, axis: str, levels, *, steps: bool = False) -> None:
    """On a log axis with at most 8 distinct levels, put the ticks at the levels and label them
    plainly (8, 32, 128; step sizes as 10^k) instead of decade labels with no tick in between."""
    levels = sorted({float(v) for v in levels if v is not None and np.isfinite(v) and v > 0})
    if not levels or len(levels) > 8:
        return
    a = ax.xaxis if axis == "x" else ax.yaxis
    a.set_major_locator(matplotlib.ticker.FixedLocator(levels))
    a.set_minor_locator(matplotlib.ticker.NullLocator())
    a.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: step_label(v) if steps else f"{v:g}"))


class _MinorLabels(matplotlib.ticker.LogFormatter):
    """LogFormatter's choice of which minor ticks to label (only on short axes), written plainly
    (0.4, 30) instead of 4e−01."""

    def __call__(self, x, pos=None):
        return f"{x:g}" if super().__call__(x, pos) else ""


def log_scale(ax, axis: str = "x", *, symlog: bool = False) -> None:
    """A log (or symmetric-log, which keeps t = 0) axis labelled 0, 1, 10, 10², … as plain text."""
    a = ax.xaxis if axis == "x" else ax.yaxis
    if symlog:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("symlog", linthresh=1)
    else:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    a.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: "0" if v == 0 else decade_label(v)))
    # an axis spanning under ~1.5 decades would show one labelled tick or none: label 2, 3, 5 × 10ᵏ too
    a.set_minor_formatter(_MinorLabels(labelOnlyBase=False, minor_thresholds=(1.5, 1)))
    if symlog:
        a.set_minor_locator(matplotlib.ticker.NullLocator())  # symlog minors: thousands of ticks


def style_of(i: int) -> tuple:
    """The i-th series' (colour, marker): 64 distinct pairs (Okabe–Ito × markers), so a ninth
    series never repeats the first."""
    return OKABE_ITO[i % 8], MARKERS[(i + i // 8) % 8]


def integer_axis(ax, axis: str = "y") -> None:
    """Counts (τ, increases, iterations) get whole-number ticks, never 1.025."""
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))


def step_axis(ax, lrs) -> None:
    """A log step-size axis: the levels themselves when few, decades as 10^k otherwise."""
    log_scale(ax, "x")
    if len(set(lrs)) <= 8:
        level_ticks(ax, "x", lrs, steps=True)
    else:
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(decade_label))


def new_figure(width: str = "single", *, aspect: float = 0.75, nrows: int = 1, ncols: int = 1, **kw):
    """A figure of a paper width (`WIDTHS`, or inches) and height width·aspect·nrows/ncols with
    constrained layout, so no title, label or outside legend is ever clipped."""
    w = WIDTHS.get(width, width) if isinstance(width, str) else float(width)
    h = max(1.6, w * aspect * nrows / max(ncols, 1))
    return plt.subplots(nrows, ncols, figsize=(w, h), squeeze=False, layout="constrained", **kw)


def legend(fig, ax, n: int, *, title=None) -> None:
    """Up to 3 series: inside the axes where they cover the least data; more: below the axes,
    outside the data (`outside_legend`)."""
    if n == 0:
        return
    if n <= 3:
        ax.legend(loc="best", title=title)
        return
    outside_legend(fig, *ax.get_legend_handles_labels(), title=title)


def outside_legend(fig, handles, labels, *, title=None, max_cols: int = 5) -> None:
    """A legend below the axes in as many columns as fit the figure's width (measured, not
    guessed), the figure widened up to two columns of a paper if even one column does not fit,
    and made taller by the legend's height so that the axes keep their size."""
    renderer = fig.canvas.get_renderer()
    height = fig.get_figheight()
    ncol = max(1, min(len(labels), max_cols))
    while True:
        leg = fig.legend(handles, labels, loc="outside lower center", ncol=ncol, title=title)
        box = leg.get_window_extent(renderer)
        if box.width / fig.dpi <= fig.get_figwidth() - 0.15 or ncol == 1:
            break
        leg.remove()
        ncol -= 1
    if box.width / fig.dpi > fig.get_figwidth() - 0.15:
        fig.set_figwidth(min(WIDTHS["double"], box.width / fig.dpi + 0.3))
    fig.set_figheight(height + box.height / fig.dpi + 0.1)


def varying_columns(df, columns) -> list:
    """The columns that take more than one value in df (labels need only those)."""
    return [c for c in columns if c in df and df[c].nunique(dropna=False) > 1]


def series(df, columns):
    """Iterate (label, sub-frame) over the distinct values of `columns` (all rows when none);
    labels name only the columns that vary."""
    given, columns = list(columns or []), varying_columns(df, columns or [])
    if not columns:
        yield (label(df.iloc[0], given) if given and len(df) else "all"), df
        return
    for _, part in df.groupby(columns, dropna=False, sort=True):
        yield label(part.iloc[0], columns), part


# ---------------------------------------------------------------- curves against t

def clipped_texts(fig: plt.Figure) -> list[str]:
    """What of a figure is drawn outside it — a clipped title, tick label, axis label or legend —
    by the bounding boxes of what is actually drawn (an axes' tight box leaves out tick labels
    beyond its limits); [] for a figure fit to print. Draws the figure."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    parts = [(f"axes {ax.get_title() or ax.get_ylabel() or i}", ax.get_tightbbox(renderer))
             for i, ax in enumerate(fig.axes) if ax.get_visible()]
    parts += [(f"legend {[t.get_text() for t in leg.get_texts()][:3]}", leg.get_window_extent(renderer))
              for leg in fig.legends]
    if fig._suptitle is not None:
        parts.append((f"title {fig._suptitle.get_text()}", fig._suptitle.get_window_extent(renderer)))
    return [name for name, e in parts if e is not None and
            (e.x0 < box.x0 - 1 or e.y0 < box.y0 - 1 or e.x1 > box.x1 + 1 or e.y1 > box.y1 + 1)]


def save(fig: plt.Figure, path_stem) -> list:
    """Write `<stem>.png` and `<stem>.pdf`; close the figure; return the paths."""
    png, pdf = f"{path_stem}.png", f"{path_stem}.pdf"
    fig.savefig(png, dpi=150)  # 150 dpi: sharp on screen, half the pixels of 200
    try:  # the PNG's draw laid the figure out; the PDF keeps that layout instead of solving it again
        fig.set_layout_engine("none")
    except RuntimeError:  # a colour bar ties the figure to its layout engine: lay it out again
        pass
    fig.savefig(pdf)
    plt.close(fig)
    return [png, pdf]
