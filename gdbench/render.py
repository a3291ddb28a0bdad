"""Tables as text a reader pastes: Markdown (the index and the terminal) and LaTeX (booktabs,
compiles in a bare `article`). The numbers come from `gdbench.analysis`; this module only decides
how they read.

Rules, the same in both formats:
- three significant digits; integers as integers; scientific notation outside [1e-3, 1e5);
- a fitted value that is zero up to rounding — below 1e-12 of the largest magnitude
  in its column, e.g. an exponent of 7.5e-17 — prints as 0 (a loss of 1e-320 is a value and stays);
- ±inf prints as ∞ (it is a value, e.g. the exponential loss after overflow), null as "—" with a
  footnote mark saying why it is missing (`FOOTNOTES`);
- headers are words or symbols (`LABELS`), never snake_case; LaTeX headers and cells are pure
  ASCII (Greek letters and signs become math), negative numbers carry a math minus.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

FOOTNOTES = {
    "n": "not reached within the budget by more than half the runs (censored median/quartile)",
    "d": "every run of the group diverged",
    "f": "every run of the group failed (see failures.jsonl)",
    "x": "not computable here (fewer than 3 points after tau for a rate fit, no separated run, "
         "no linear baseline, or a single level)",
    "l": "no fit: fewer than 3 distinct levels of the swept key",
    "z": "no fit or interval: the values do not vary (e.g. one seed per level, or identical seeds)",
    "e": "the best step size sits at the edge of the step-size grid or next to a step where every run "
         "diverged: a finer or wider grid may change it",
    "t": "several step sizes tie for the best median t_sep (see the rates table)",
    "s": "depends on the arbitrary scale of the step: the algorithm's iterates are proportional to the "
         "step size, so the loss (not t_sep) changes with it",
}
SUPERSCRIPT = {"n": "ⁿ", "d": "ᵈ", "f": "ᶠ", "x": "ˣ", "l": "ˡ", "z": "ᶻ", "e": "ᵉ", "t": "ᵗ", "s": "ˢ"}
COUNT_COLUMNS = ("runs", "diverged", "failed", "levels", "budgets", "excluded", "rate_points", "best_tied",
                 "nonfinite")
HIDDEN = ("no_fit", "no_ci", "best_edge", "best_tied")  # said by footnote marks, not as columns
ZERO_REL = 1e-12  # |v| below this fraction of its column's largest |value| is rounding noise …
FITTED = ("exponent", "ci_low", "ci_high", "rate_slope", "max_jump", "r2", "rate_r2")  # … in these columns
# (fitted slopes; a loss of 1e-320 is a value, never rounding noise)

# column → (Markdown/HTML header, LaTeX header); unknown columns fall back to `_plain_label`
LABELS = {
    "lr": ("η", r"$\eta$"), "best_lr": ("best η", r"best $\eta$"), "d": ("d", "$d$"), "n": ("n", "$n$"),
    "width": ("m", "$m$"), "iterations": ("T", "$T$"), "seed": ("seed", "seed"),
    "t_sep_median": ("t_sep", r"$t_{\mathrm{sep}}$"), "t_sep_q25": ("t_sep q25", r"$t_{\mathrm{sep}}$ $q_{25}$"),
    "t_sep_q75": ("t_sep q75", r"$t_{\mathrm{sep}}$ $q_{75}$"), "t_sep": ("t_sep", r"$t_{\mathrm{sep}}$"),
    "separated": ("separated", "sep."), "final_loss": ("F_T", "$F_T$"), "final_log_loss": ("log F_T", r"$\log F_T$"),
    "rate_slope": ("rate slope", "rate slope"), "rate_r2": ("rate R²", "rate $R^2$"),
    "non_monotone": ("non-monotone", "non-mono."), "n_increases": ("increases", "incr."),
    "transition_time": ("τ", r"$\tau$"), "peak_ratio": ("max F_t/F_0", r"$F_{\max}/F_0$"),
    "max_jump": ("max jump", "max jump"),
    "n_misclassified_increases": ("misclass. incr.", "miscl.\\ incr."),
    "baseline_t_sep": ("linear t_sep", r"linear $t_{\mathrm{sep}}$"), "acceleration": ("acceleration", "accel."),
    "exponent": ("exponent", "exponent"), "ci_low": ("CI low", "CI low"), "ci_high": ("CI high", "CI high"),
    "prefactor": ("prefactor", "prefactor"), "r2": ("R²", "$R^2$"), "levels": ("levels", "levels"),
    "excluded": ("excluded", "excl."), "budgets": ("budgets", "budgets"), "schedule": ("schedule", "schedule"),
    "value": ("η or c", r"$\eta$ or $c$"), "final_gap": ("final gap", "final gap"),
    "max_gap": ("max gap", "max gap"), "agree_frac": ("same misclassified", "same miscl."),
    "best": ("best", "best"), "best_tied": ("tied", "tied"), "x": ("x", "$x$"),
    "t_eos": ("t_eos", r"$t_{\mathrm{EoS}}$"), "frac_above_eos": ("at/above 2/η", r"$\geq 2/\eta$"),
    "max_sharpness": ("max λ_max", r"$\max\lambda_{\max}$"),
    "final_sharpness": ("final λ_max", r"$\lambda_{\max}(W_T)$"),
    "sharpness_ratio_max": ("max λ_max·η/2", r"$\max_t \lambda_{\max}\eta/2$"),
}
UNICODE_LATEX = {"τ": r"$\tau$", "η": r"$\eta$", "γ": r"$\gamma$", "μ": r"$\mu$", "σ": r"$\sigma$", "ε": r"$\varepsilon$",
                 "λ": r"$\lambda$", "≤": r"$\le$", "≥": r"$\ge$", "×": r"$\times$", "−": "$-$", "∞": r"$\infty$",
                 "→": r"$\to$", "‖": r"$\|$", "·": r"$\cdot$", "²": "$^2$", "√": r"$\surd$", "≈": r"$\approx$",
                 "—": "---", "–": "--", "…": r"\dots{}", "₀": "$_0$", "₁": "$_1$", "ⁿ": "$^n$"}


def _plain_label(col: str) -> str:
    m = re.fullmatch(r"t_eps_(.+)", col)
    if m:
        return f"t(F≤{m.group(1)})"
    return col.split(".")[-1].replace("_", " ") if col not in ("model", "loss") else col


def header(col: str, *, latex: bool = False) -> str:
    """A column's header: `LABELS`, else its name in words (dotted keys keep their last part)."""
    if col in LABELS:
        return LABELS[col][1 if latex else 0]
    m = re.fullmatch(r"t_eps_(.+)", col)
    if m and latex:
        return r"$t(F\le " + latex_number(float(m.group(1))).strip("$") + ")$"
    text = _plain_label(col)
    return latex_text(text) if latex else text


def latex_text(s: str) -> str:
    """Escape LaTeX's special characters and turn the Unicode signs gdbench uses into math, so the
    result is ASCII and compiles without inputenc declarations."""
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
                 ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        s = s.replace(a, b)
    for a, b in UNICODE_LATEX.items():
        s = s.replace(a, b)
    return s.encode("ascii", "replace").decode()  # anything left over shows as "?", never a LaTeX error


def _is_missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and math.isnan(v))


def format_number(v, *, latex: bool = False) -> str:
    """Three significant digits; scientific notation outside [1e-3, 1e5); integers as integers;
    ±inf as ∞. LaTeX: math minus and ×10^k inside $…$."""
    if isinstance(v, (bool, np.bool_)):
        return "*" if v else ""
    if isinstance(v, (int, np.integer)):
        return _sign(str(int(v)), latex)
    if not isinstance(v, (float, np.floating)):
        return latex_text(str(v)) if latex else str(v)
    if math.isinf(v):
        return ("$-\\infty$" if v < 0 else "$\\infty$") if latex else ("−∞" if v < 0 else "∞")
    if v == 0:
        return "0"
    if float(v).is_integer() and abs(v) < 1e5:
        return _sign(str(int(v)), latex)
    if 1e-3 <= abs(v) < 1e5:
        return _sign(f"{v:.3g}", latex)
    mant, exp = f"{v:.2e}".split("e")
    mant = mant.rstrip("0").rstrip(".")
    if latex:
        return f"${mant}\\times10^{{{int(exp)}}}$"
    return f"{mant.replace('-', '−')}e{int(exp)}"


def latex_number(v) -> str:
    return format_number(v, latex=True)


def _sign(text: str, latex: bool) -> str:
    if text.startswith("-"):
        return ("$-$" if latex else "−") + text[1:]
    return text


def _column_scale(series: pd.Series) -> float:
    v = pd.to_numeric(series, errors="coerce").astype("float64").abs()
    v = v[np.isfinite(v)]
    return float(v.max()) if len(v) else 0.0


def missing_reason(row, col: str) -> str:
    """The footnote mark of a missing cell: a reason the table's own row says (`_reasons` of the
    analysis tables, `no_fit`), else from its status counts, else by the column's kind."""
    reason = None
    if col in ("ci_low", "ci_high"):
        reason = row.get("no_ci") or row.get("no_fit")
    elif col in ("exponent", "prefactor", "r2"):
        reason = row.get("no_fit")
    if isinstance(reason, str) and reason in FOOTNOTES:
        return reason
    runs, failed, diverged = row.get("runs"), row.get("failed", 0), row.get("diverged", 0)
    if runs is not None and not _is_missing(runs) and runs > 0:
        if failed == runs:
            return "f"
        if not _is_missing(diverged) and diverged + (0 if _is_missing(failed) else failed) == runs:
            return "d"
    if col == "t_eos" and _is_missing(row.get("frac_above_eos")):
        return "x"  # no estimates, or no stability threshold (normalized GD, the perceptrons)
    if col.startswith(("t_sep", "t_eps_", "t_eos")):
        return "n"
    return "x"


def constant_keys(table: pd.DataFrame) -> dict:
    """Key columns with one value in every row: shown once in an "All rows:" line, not as a column."""
    keys = table.attrs.get("keys", [])
    if len(table) < 2:
        return {}
    return {k: table[k].iloc[0] for k in keys if k in table and k != "lr" and table[k].nunique(dropna=False) == 1}


def paper_columns(table: pd.DataFrame, wanted, *, limit: int = 8) -> list:
    """The columns a LaTeX table shows by default: its varying keys, then `wanted` (in order) up to
    `limit` columns in all. The CSV keeps every column."""
    const = constant_keys(table)
    keys = [k for k in table.attrs.get("keys", []) if k in table and k not in const]
    rest = [c for c in wanted if c in table and c not in keys]
    return (keys + rest)[:max(limit, len(keys))]


def display_frame(table: pd.DataFrame, *, latex: bool = False, columns=None) -> tuple[pd.DataFrame, set]:
    """Cells as reading strings ("—" plus a footnote mark where missing) and the marks used. Key
    columns constant over the table are left out (see `constant_keys`); row flags (`_marks`: a
    dict column → marks) add footnote marks to cells that have a value."""
    const = constant_keys(table)
    cols = [c for c in table.columns if c not in const and not c.startswith("_") and c not in HIDDEN] \
        if columns is None else [c for c in columns if c in table]
    keys = set(table.attrs.get("keys", []))
    scale = {c: _column_scale(table[c]) for c in cols if c in FITTED}
    used, rows = set(), []
    for row in table.to_dict("records"):  # plain dicts: iterrows builds a Series per row
        flags = row.get("_marks") if isinstance(row.get("_marks"), dict) else {}
        cells = {}
        for c in cols:
            v = row[c]
            if _is_missing(v):
                if c in keys:
                    cells[c] = ""
                    continue
                mark = missing_reason(row, c)
                used.add(mark)
                cells[c] = f"---\\textsuperscript{{{mark}}}" if latex else f"—{SUPERSCRIPT[mark]}"
                continue
            if c in COUNT_COLUMNS and isinstance(v, (int, float, np.integer, np.floating)) and np.isfinite(v):
                text = str(int(v))
            elif c in keys and not isinstance(v, (int, float, np.integer, np.floating)):
                # a paper reads "batch perceptron"; Markdown keeps the name a user types on the CLI
                text = latex_text(str(v).replace("_", " ")) if latex else str(v)
            else:
                if isinstance(v, (float, np.floating)) and np.isfinite(v) and abs(v) <= ZERO_REL * scale.get(c, 0):
                    v = 0.0
                text = format_number(v, latex=latex)
            for mark in flags.get(c, ()):
                used.add(mark)
                text += f"\\textsuperscript{{{mark}}}" if latex else SUPERSCRIPT[mark]
            cells[c] = text
        rows.append(cells)
    return pd.DataFrame(rows, columns=cols), used


def context_lines(table: pd.DataFrame, used: set, *, latex: bool = False) -> list[str]:
    """The lines under a table: the constant keys ("All rows: …") and each footnote used."""
    const = constant_keys(table)
    lines = []
    if const:
        text = "All rows: " + ", ".join(f"{header(k)} = {format_number(v)}" for k, v in const.items())
        lines.append(latex_text(text) if latex else text)
    for m in sorted(used):
        lines.append(f"\\textsuperscript{{{m}}} {latex_text(FOOTNOTES[m])}" if latex else f"{SUPERSCRIPT[m]} {FOOTNOTES[m]}")
    return lines


def to_markdown(table: pd.DataFrame, *, columns=None) -> str:
    """A pipe table with readable headers, then the context lines."""
    df, used = display_frame(table, columns=columns)
    keys = set(table.attrs.get("keys", []))
    align = ["left" if c in keys else "right" for c in df.columns]
    df.columns = [header(c) for c in df.columns]
    text = df.to_markdown(index=False, disable_numparse=True, colalign=align) if len(df) else "(no rows)"
    notes = context_lines(table, used)
    return text + ("\n\n" + "  \n".join(notes) if notes else "")


def to_latex(table: pd.DataFrame, *, columns=None, caption: str | None = None) -> str:
    """A booktabs `tabular` that compiles as pasted into a document with \\usepackage{booktabs}:
    ASCII only, math headers, math minus signs; the context lines follow in \\footnotesize."""
    df, used = display_frame(table, latex=True, columns=columns)
    keys = set(table.attrs.get("keys", []))
    fmt = "".join("l" if c in keys else "r" for c in df.columns)
    lines = [r"\begingroup\setlength{\tabcolsep}{4pt}%", r"\begin{tabular}{" + (fmt or "l") + "}", r"\toprule",
             " & ".join(header(c, latex=True) for c in df.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(str(v) for v in row) + r" \\" for row in df.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\endgroup"]
    notes = context_lines(table, used, latex=True)
    head = f"% {latex_text(caption)}\n" if caption else ""
    tail = ("\\par\\smallskip{\\footnotesize " + r" \\ ".join(notes) + "}\n") if notes else ""
    return head + "\n".join(lines) + "\n" + tail
