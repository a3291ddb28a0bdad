"""The report of a sweep: `<sweep>/report/` with tables (Markdown, LaTeX/booktabs, CSV), figures
(PNG, PDF) and an index (index.md, index.html) that ties them to the sweep's provenance.

    gdbench-report <sweep_dir>          (also run at the end of every sweep unless report.enabled=false)

Works on a finished, running or interrupted sweep: it reports what has finished and says how many
planned runs are missing. Numbers come from `gdbench.analysis`; figures from `gdbench.figures`.
"""
from __future__ import annotations

import html
import json
import math
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from gdbench import analysis, figures
from gdbench.store import load, planned_run_ids

MAX_FACETS = 12  # data settings that get their own loss-curve and heatmap figures
FOOTNOTES = {
    "n": "not reached within the budget by more than half the runs (censored median/quartile)",
    "d": "every run of the group diverged",
    "f": "every run of the group failed (see failures.jsonl)",
    "x": "not computable here (fewer than 3 points after τ for a rate fit, no separated run, "
         "no linear baseline, or a single level)",
}
SUPERSCRIPT = {"n": "ⁿ", "d": "ᵈ", "f": "ᶠ", "x": "ˣ"}
COUNT_COLUMNS = ("runs", "diverged", "failed", "levels", "budgets", "excluded", "rate_points")
TITLES = {
    "rates": "Rates: separation, loss targets and the fitted rate slope of log F_t on log t (medians over seeds)",
    "oscillation": "Oscillation: non-monotone loss, increases, transition time τ, peak ratio, largest jump",
    "acceleration": "Implicit acceleration: each model at its best step size against the linear baseline",
    "scaling_d": "Scaling: exponent of t_sep against d at each d's best step size (bootstrap 95% interval over seeds)",
    "scaling_n": "Scaling: exponent of t_sep against n at each n's best step size (bootstrap 95% interval over seeds)",
    "budget": "Budget scaling: exponent of the final loss against the iteration budget T",
    "perceptron": "Perceptron agreement: gap to the batch-perceptron companion and identical misclassified sets",
}


# ---------------------------------------------------------------- formatting

def format_number(v, *, latex: bool = False) -> str:
    """Three significant digits; scientific notation outside [1e-3, 1e5); integers as integers."""
    if isinstance(v, (bool, np.bool_)):
        return "*" if v else ""
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if v == 0:
            return "0"
        if float(v).is_integer() and abs(v) < 1e5:
            return str(int(v))
        if 1e-3 <= abs(v) < 1e5:
            return f"{v:.3g}"
        mant, exp = f"{v:.2e}".split("e")
        mant = mant.rstrip("0").rstrip(".")
        return f"${mant}\\times10^{{{int(exp)}}}$" if latex else f"{mant}e{int(exp)}"
    return str(v)


def _missing_reason(row: pd.Series, col: str) -> str:
    runs, failed, diverged = row.get("runs"), row.get("failed", 0), row.get("diverged", 0)
    if runs is not None and not pd.isna(runs) and runs > 0:
        if failed == runs:
            return "f"
        if diverged + failed == runs:
            return "d"
    if col.startswith(("t_sep", "t_eps_")):
        return "n"
    return "x"


def _latex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
                 ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        s = s.replace(a, b)
    return s


def constant_keys(table: pd.DataFrame) -> dict:
    """Key columns with one value in every row: shown once in a caption line, not as a column."""
    keys = table.attrs.get("keys", [])
    if len(table) < 2:
        return {}
    return {k: table[k].iloc[0] for k in keys if k in table and k != "lr" and table[k].nunique(dropna=False) == 1}


def display_frame(table: pd.DataFrame, *, latex: bool = False, columns=None) -> tuple[pd.DataFrame, set]:
    """Cells as reading strings ("—" plus a footnote mark where missing); the marks used. Key
    columns constant over the table are left out (see `constant_keys`)."""
    const = constant_keys(table)
    cols = [c for c in table.columns if c not in const] if columns is None else [c for c in columns if c in table]
    keys = set(table.attrs.get("keys", []))
    used, rows = set(), []
    for _, row in table.iterrows():
        cells = {}
        for c in cols:
            v = row[c]
            if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
                if c in keys:
                    cells[c] = ""
                    continue
                mark = _missing_reason(row, c)
                used.add(mark)
                cells[c] = f"---\\textsuperscript{{{mark}}}" if latex else f"—{SUPERSCRIPT[mark]}"
            elif c in COUNT_COLUMNS and isinstance(v, (int, float, np.integer, np.floating)):
                cells[c] = str(int(v))
            elif c in keys and not isinstance(v, (float, np.floating)) and latex:
                cells[c] = _latex_escape(str(v))
            else:
                text = format_number(v, latex=latex)
                cells[c] = _latex_escape(text) if latex and not text.startswith("$") else text
        rows.append(cells)
    return pd.DataFrame(rows, columns=cols), used


def to_markdown(table: pd.DataFrame, *, columns=None) -> str:
    df, used = display_frame(table, columns=columns)
    keys = set(table.attrs.get("keys", []))
    align = ["left" if c in keys else "right" for c in df.columns]
    text = df.to_markdown(index=False, disable_numparse=True, colalign=align) if len(df) else "(no rows)"
    const = constant_keys(table)
    notes = ([("All rows: " + ", ".join(f"{k} = {format_number(v)}" for k, v in const.items()))] if const else [])
    notes += [f"{SUPERSCRIPT[m]} {FOOTNOTES[m]}" for m in sorted(used)]
    return text + ("\n\n" + "  \n".join(notes) if notes else "")


def to_latex(table: pd.DataFrame, *, columns=None, caption: str | None = None) -> str:
    """A booktabs `tabular` (\\toprule/\\midrule/\\bottomrule), ready to paste into a paper; needs
    \\usepackage{booktabs}. Footnote marks are explained below the table."""
    df, used = display_frame(table, latex=True, columns=columns)
    keys = set(table.attrs.get("keys", []))
    fmt = "".join("l" if c in keys else "r" for c in df.columns)
    df.columns = [_latex_escape(str(c)) for c in df.columns]
    body = df.style.hide(axis="index").to_latex(hrules=True, column_format=fmt or "l")
    const = constant_keys(table)
    notes = ([_latex_escape("All rows: " + ", ".join(f"{k} = {format_number(v)}" for k, v in const.items()))]
             if const else [])
    notes += [f"\\textsuperscript{{{m}}} {_latex_escape(FOOTNOTES[m])}" for m in sorted(used)]
    head = f"% {caption}\n" if caption else ""
    return head + body + ("% notes:\n" + "".join(f"% {n}\n" for n in notes) + "\\par\\smallskip{\\footnotesize "
                          + r" \\ ".join(notes) + "}\n" if notes else "")


# ---------------------------------------------------------------- the tables of a sweep

def tables(runs: pd.DataFrame, traj: pd.DataFrame, *, by=None, t0: int = 10, n_boot: int = 1000) -> dict:
    """Every table that applies to this sweep, by name (see TITLES)."""
    out = {"rates": analysis.rates_table(runs, traj, by=by, t0=t0),
           "oscillation": analysis.oscillation_table(runs, by=by)}
    keys = analysis.group_columns(runs, by)
    model_keys = analysis.model_columns(keys)
    if "linear" in set(runs["model"]) and len(runs[model_keys].drop_duplicates()) > 1:
        out["acceleration"] = analysis.acceleration_table(runs, by=by)
    for x in ("d", "n"):
        if x in runs and runs.loc[runs["status"] == "ok", x].nunique() > 1:
            scaling = analysis.scaling_table(runs, x=x, by=by, n_boot=n_boot)
            if len(scaling) and (scaling["levels"] >= 2).any():  # x varies within some setting
                out[f"scaling_{x}"] = scaling
    if runs["iterations"].nunique() > 1:
        budget = analysis.budget_table(runs, by=by, n_boot=n_boot)
        if len(budget):
            out["budget"] = budget
    perceptron = analysis.perceptron_table(runs, by=by)
    if len(perceptron):
        out["perceptron"] = perceptron
    return out


def _facets(table: pd.DataFrame):
    """(slug, label, rows) per data setting: every key except the model's and lr."""
    keys = table.attrs.get("keys", [])
    data_keys = [k for k in keys if k not in analysis.model_columns(keys) and k != "lr"]
    if not data_keys:
        yield "all", "all runs", table
        return
    for _, part in table.groupby(data_keys, dropna=False, sort=True):
        part.attrs = table.attrs
        name = figures.label(part.iloc[0], data_keys)
        yield re.sub(r"[^A-Za-z0-9=.+-]+", "_", name)[:80], name, part


def build(sweep_dir, *, by=None, t0: int = 10, n_boot: int = 1000, columns: dict | None = None,
          make_figures: bool = True, echo: bool = True) -> dict:
    """Write `<sweep_dir>/report/` and return {"tables": {...}, "figures": [...], "missing": int}."""
    start = time.perf_counter()
    root = Path(sweep_dir).expanduser()
    runs, traj = load(root, trajectory_columns=["log_loss", "accuracy"])
    out = root / "report"
    for sub in ("tables", "figures"):  # a rebuild replaces the previous report, stale files included
        if (out / sub).is_dir():
            shutil.rmtree(out / sub)
        (out / sub).mkdir(parents=True)
    planned = planned_run_ids(root)
    finished = int((runs["status"] != "failed").sum())
    failed = int((runs["status"] == "failed").sum())
    missing = len(planned - set(runs["run_id"])) if planned is not None else None
    columns = columns or {}

    made = tables(runs, traj, by=by, t0=t0, n_boot=n_boot)
    written = {}
    for name, table in made.items():
        stem = out / "tables" / name
        table.to_csv(f"{stem}.csv", index=False)
        Path(f"{stem}.md").write_text(f"**{TITLES[name]}**\n\n" + to_markdown(table, columns=columns.get(name)) + "\n")
        Path(f"{stem}.tex").write_text(to_latex(table, columns=columns.get(name), caption=TITLES[name]))
        written[name] = [f"{stem}.md", f"{stem}.tex", f"{stem}.csv"]

    figs = []
    if make_figures:
        figs = _figures(runs, traj, made, out / "figures", by=by)
    del traj

    _write_index(root, out, made, figs, columns, dict(finished=finished, failed=failed, missing=missing,
                                                      planned=None if planned is None else len(planned)))
    status = (f"{finished} runs finished, {failed} failed"
              + (f", {missing} of {len(planned)} planned not finished yet" if missing else ""))
    if echo:
        for name in ("rates", "oscillation", "acceleration"):
            if name in made:
                print(f"\n{TITLES[name]}\n" + to_markdown(made[name], columns=columns.get(name)))
        print(f"\nreport: {out / 'index.md'}  ({status}; {time.perf_counter() - start:.1f} s)")
    return {"tables": written, "figures": figs, "missing": missing, "finished": finished, "failed": failed}


def _figures(runs, traj, made, folder: Path, *, by=None) -> list:
    paths = []
    curves = analysis.curve_quantiles(runs, traj, by=by)
    for i, (slug, name, part) in enumerate(_facets(curves)):
        if i >= MAX_FACETS:
            break
        paths += figures.save(figures.loss_curves(part, title=name), folder / f"loss_curves_{slug}")
    rates, osc = made["rates"], made["oscillation"]
    for i, ((slug, name, r), (_, _, o)) in enumerate(zip(_facets(rates), _facets(osc))):
        if i >= MAX_FACETS:
            break
        paths += figures.save(figures.heatmap(r, value="t_sep_median", title=f"median $t_{{sep}}$ — {name}",
                                              rows=analysis.model_columns(r.attrs["keys"]) or None),
                              folder / f"heatmap_t_sep_{slug}")
        paths += figures.save(figures.heatmap(o, value="n_increases", title=f"median loss increases — {name}",
                                              rows=analysis.model_columns(o.attrs["keys"]) or None),
                              folder / f"heatmap_n_increases_{slug}")
    if "lr" in osc:
        paths += figures.save(figures.transition_time(osc), folder / "transition_time")
    for x in ("d", "n"):
        if f"scaling_{x}" in made:  # one figure per data setting, one series per model
            for i, (slug, name, part) in enumerate(_facets(made[f"scaling_{x}"])):
                if i >= MAX_FACETS:
                    break
                fig = figures.tsep_scaling(runs, part, x=x, by=by, title=None if name == "all runs" else name)
                paths += figures.save(fig, folder / (f"t_sep_vs_{x}" + ("" if slug == "all" else f"_{slug}")))
    if "perceptron" in made:
        paths += figures.save(figures.perceptron_gap(made["perceptron"]), folder / "perceptron_gap")
    return [str(p) for p in paths]


def _provenance_lines(root: Path) -> list[str]:
    path = root / "provenance.json"
    if not path.exists():
        return ["(no provenance.json yet: the sweep has not finished a session)"]
    last = json.loads(path.read_text())["sessions"][-1]
    keep = ("time", "gdbench", "git_commit", "torch", "ray", "pandas", "host", "device", "cuda", "n_runs")
    lines = [f"- {k}: `{last.get(k)}`" for k in keep if k in last]
    lines.append(f"- command: `{' '.join(map(str, last.get('argv', [])))}`")
    timings = (last.get("result") or {}).get("timings") or {}
    if timings:
        lines.append("- timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()
                                                   if isinstance(v, (int, float))))
    return lines


def _write_index(root: Path, out: Path, made: dict, figs: list, columns: dict, counts: dict) -> None:
    status = f"{counts['finished']} runs finished, {counts['failed']} failed"
    if counts["planned"] is not None:
        status += f", {counts['missing']} of {counts['planned']} planned runs not finished"
    pngs = [Path(p).name for p in figs if p.endswith(".png")]
    md = [f"# gdbench report — {root.name}", "", f"Sweep: `{root}`  ", f"Status: {status}.", "",
          "## Provenance", *_provenance_lines(root), ""]
    for name, table in made.items():
        md += [f"## {TITLES[name]}", "", to_markdown(table, columns=columns.get(name)), "",
               f"(also `tables/{name}.tex`, `tables/{name}.csv`)", ""]
    md += ["## Figures", ""] + [f"![{p}](figures/{p})" for p in pngs]
    (out / "index.md").write_text("\n".join(md) + "\n")

    body = [f"<h1>gdbench report — {html.escape(root.name)}</h1>",
            f"<p>Sweep: <code>{html.escape(str(root))}</code><br>Status: {html.escape(status)}.</p>",
            "<h2>Provenance</h2><ul>" + "".join(f"<li>{html.escape(line[2:])}</li>"
                                                for line in _provenance_lines(root)) + "</ul>"]
    for name, table in made.items():
        df, used = display_frame(table, columns=columns.get(name))
        body += [f"<h2>{html.escape(TITLES[name])}</h2>", df.to_html(index=False, border=0, classes="t")]
        body += [f"<p class=note>{SUPERSCRIPT[m]} {html.escape(FOOTNOTES[m])}</p>" for m in sorted(used)]
    body += ["<h2>Figures</h2>"] + [f'<figure><img src="figures/{p}" alt="{p}"><figcaption>{p}</figcaption></figure>'
                                    for p in pngs]
    style = ("body{font-family:sans-serif;max-width:1200px;margin:auto}table.t{border-collapse:collapse;"
             "font-size:12px}table.t td,table.t th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}"
             "img{max-width:100%}.note{font-size:11px;color:#555}")
    (out / "index.html").write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>gdbench report"
                                    f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n")
