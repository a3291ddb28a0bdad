"""The report of a sweep: `<sweep>/report/` with the study's headline figures, the tables
(Markdown, LaTeX/booktabs, CSV), generic figures (PNG, PDF) and an index (index.md, index.html).

    gdbench-report <sweep_dir>          (also run at the end of every sweep unless report.enabled=false)

Works on a finished, running or interrupted sweep: it reports what has finished and says how many
planned runs are missing. Numbers come from `gdbench.analysis`, figures from `gdbench.figures` and
the study's declarations (`report.headline`, `gdbench.headline`), text from `gdbench.render`, the
front pages from `gdbench.index`. `report/manifest.json` lists what the report wrote, so a rebuild
removes exactly its own earlier files and nothing a user put beside them.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from gdbench import analysis, figures, headline, index, render, report_figures, selection
from gdbench.report_figures import slug
from gdbench.store import last_session, load, planned_run_ids

TITLES = {
    "summary": "Summary: separation and oscillation per step size",
    "rates": "Rates: separation, loss targets and the fitted rate slope",
    "oscillation": "Oscillation: loss increases, transition time, peak ratio",
    "acceleration": "Implicit acceleration: each model at its best step size against the linear baseline",
    "scaling_d": "Scaling in d: exponent of t_sep at each d's best step size",
    "scaling_n": "Scaling in n: exponent of t_sep at each n's best step size",
    "budget": "Budget scaling: exponent of the final loss in the budget T",
    "perceptron": "Perceptron agreement: gap to the batch-perceptron companion",
}
CAPTIONS = {
    "summary": "One row per group of runs that differ only in their seed. separated: the fraction of runs with "
               "every sample classified correctly at some t; t_sep: the median first such t (— once half the "
               "runs never separate); non-monotone: the fraction of runs whose loss ever increases; increases "
               "and τ (the last increase) are medians over seeds.",
    "rates": "Medians over seeds. t_sep and its quartiles read a run that never separated as +∞; t(F≤ε) is the "
             "first iteration with loss ≤ ε; the rate slope is the least-squares slope of log F_t on log t over "
             "[max(τ, t0), T] (−1 for a constant step). best marks each model's best step size (smallest median "
             "t_sep); marks e and t say when that choice is fragile or tied.",
    "oscillation": "Medians over seeds of the number of loss increases, the transition time τ (after it the loss "
                   "never increases again), the peak ratio maxₜ Fₜ/F₀ and the largest one-step jump "
                   "maxₜ log(Fₜ₊₁/Fₜ); non-monotone is the fraction of runs with any increase. Where the sweep "
                   "estimated the sharpness λ_max(∇²F(Wₜ)) (sharpness.every > 0): t_eos, the first estimate at or "
                   "above the stability threshold 2/η (— once half the runs never reach it), the fraction of "
                   "estimates at or above it, and the largest, final and largest·η/2 sharpness.",
    "acceleration": "Each model at its best step size; acceleration = t_sep of the linear model at its best step "
                    "/ t_sep of the model at its best step (> 1: the model separates faster).",
    "scaling_d": "The exponent of t_sep in d by least squares on log-log axes over the runs at each d's best step "
                 "size, with a bootstrap 95% interval over seeds; no exponent from fewer than 3 levels.",
    "scaling_n": "The exponent of t_sep in n by least squares on log-log axes over the runs at each n's best step "
                 "size, with a bootstrap 95% interval over seeds; no exponent from fewer than 3 levels.",
    "budget": "The exponent of F_T in the budget T for step sizes that scale with the budget (η = c·T; "
              "reference −2, Wu et al. 2024) and for fixed step sizes (reference −1).",
    "perceptron": "Medians over seeds of the final and largest gap ‖W_t/γ − Ŵ_t‖/‖Ŵ_t‖ to the batch-perceptron "
                  "companion, and of the fraction of iterations with identical misclassified sets.",
}
MAX_READ_ROWS = 60  # a headline's points table longer than this is written as CSV only
PAPER_COLUMNS = {  # what a LaTeX table shows by default (≤ 8 columns with the keys); CSV has all
    "summary": ["runs", "separated", "t_sep_median", "non_monotone", "n_increases", "transition_time"],
    "rates": ["separated", "t_sep_median", "final_loss", "rate_slope", "best"],
    "oscillation": ["non_monotone", "n_increases", "transition_time", "peak_ratio", "max_jump"],
    # with sharpness estimates, the oscillation table's LaTeX trades the loss details for them
    "oscillation_eos": ["n_increases", "transition_time", "t_eos", "frac_above_eos", "max_sharpness"],
    "acceleration": ["best_lr", "t_sep_median", "baseline_t_sep", "acceleration"],
    "scaling_d": ["exponent", "ci_low", "ci_high", "levels"],
    "scaling_n": ["exponent", "ci_low", "ci_high", "levels"],
    "budget": ["budgets", "exponent", "ci_low", "ci_high", "r2"],
    "perceptron": ["final_gap", "max_gap", "agree_frac"],
}


def tables(runs: pd.DataFrame, traj: pd.DataFrame, *, by=None, t0: int = 10, n_boot: int = 1000) -> dict:
    """Every table that applies to this sweep, by name (see TITLES)."""
    out = {"summary": analysis.summary_table(runs, by=by),
           "rates": analysis.rates_table(runs, traj, by=by, t0=t0),
           "oscillation": analysis.oscillation_table(runs, by=by)}
    keys = analysis.group_columns(runs, by)
    if "linear" in set(runs["model"]) and len(runs[analysis.model_columns(keys)].drop_duplicates()) > 1:
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


def build(sweep_dir, *, by=None, t0: int = 10, n_boot: int = 1000, columns: dict | None = None,
          make_figures: bool = True, echo: bool = True, headline_specs=None, figure_width: str = "single",
          figure_workers: int | None = None) -> dict:
    """Write `<sweep_dir>/report/` and return {"tables": {...}, "figures": [...], "missing": int, …}.
    `headline_specs` default to the sweep's own `report.headline` (its provenance);
    `figure_workers` processes draw the figures (default: one per core)."""
    start = time.perf_counter()
    root = Path(sweep_dir).expanduser()
    specs = headline.validate(headline_specs if headline_specs is not None else _declared(root))
    traj_cols = ["log_loss", "accuracy", "sharpness", *sorted(headline.columns_needed(specs))]
    runs, traj = load(root, trajectory_columns=traj_cols)
    runs = analysis.numeric_keys(runs)
    out = root / "report"
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    previous = _manifest(out)
    writer = _Writer(out, columns or {}, make_figures, previous, figure_width)

    sections = writer.headlines(specs, runs, traj)
    by = analysis.group_columns(runs, by)  # once: every table groups by the same keys
    made = tables(runs, traj, by=by, t0=t0, n_boot=n_boot)
    sections += [writer.table(name, t) for name, t in made.items()]
    if make_figures:
        sections += writer.generic_figures(runs, traj, made, by=by)
    else:  # keep the figures already there, and keep showing them
        sections += writer.kept_figures()
    del traj
    counts = _counts(root, runs)
    head = index.Header(title=f"gdbench report — {root.name}", sweep=str(root), status=counts["status"],
                        notices=_notices(runs, made, counts), provenance=_provenance(root))
    writer.save_figures(figure_workers or os.cpu_count() or 1)
    index.write(out, head, sections)
    writer.finish()
    if echo:
        for name in ("summary", "acceleration"):
            if name in made:
                print(f"\n{TITLES[name]}\n" + render.to_markdown(made[name], columns=(columns or {}).get(name)))
        print(f"\nreport: {out / 'index.html'}  ({counts['status']}; {time.perf_counter() - start:.1f} s)")
    return {"tables": writer.tables, "figures": writer.figures, "missing": counts["missing"],
            "finished": counts["finished"], "failed": counts["failed"], "sections": sections}


def _declared(root: Path) -> list:
    settings = (last_session(root) or {}).get("settings") or {}
    return ((settings.get("report") or {}).get("headline")) or []


def _manifest(out: Path) -> list:
    """The files the previous build wrote. A report from before manifests existed owned its
    tables/ and figures/ folders whole (it rebuilt them from scratch), so those count as its files."""
    path = out / "manifest.json"
    if path.exists():
        return json.loads(path.read_text())
    return [str(p.relative_to(out)) for sub in ("tables", "figures") for p in sorted((out / sub).glob("*"))
            if p.is_file()]


def _counts(root: Path, runs) -> dict:
    planned = planned_run_ids(root)
    finished = int((runs["status"] != "failed").sum())
    failed = int((runs["status"] == "failed").sum())
    missing = len(planned - set(runs["run_id"])) if planned is not None else None
    status = f"{finished} runs finished, {failed} failed"
    if planned is not None:
        status += f", {missing} of {len(planned)} planned runs not finished"
    return {"finished": finished, "failed": failed, "missing": missing, "status": status}


def _notices(runs, made, counts) -> list:
    out = []
    keys = [k for k in analysis.group_columns(runs) if k != "seed"]
    same = selection.identical_seeds(runs, keys)
    if same:
        out.append("Several seeds produced identical runs (for " + "; ".join(same[:6])
                   + ("; …" if len(same) > 6 else "") + "): their quartiles and intervals show no variability "
                   "because there is none to show — typically a model started at 0, which the seed does not change.")
    if counts["failed"]:
        out.append(f"{counts['failed']} runs failed (see failures.jsonl); they are counted in every table.")
    scale_free = sorted(set(runs["algorithm"]) & set(selection.SCALE_FREE))
    if scale_free:
        out.append(f"{', '.join(scale_free)}: the iterates are proportional to the step size, so loss-based columns "
                   "(mark s) depend on an arbitrary scale; compare these algorithms by t_sep.")
    return out


def _provenance(root: Path) -> list:
    last = last_session(root)
    if last is None:
        return [("provenance", "no provenance.json (yet): the sweep has not finished a session")]
    keep = ("time", "gdbench", "git_commit", "torch", "ray", "pandas", "host", "device", "cuda", "n_runs")
    lines = [(k, last.get(k)) for k in keep if k in last]
    lines.append(("command", " ".join(map(str, last.get("argv", [])))))
    timings = (last.get("result") or {}).get("timings") or {}
    if timings:
        lines.append(("timings (s)", ", ".join(f"{k} {v:.2f}" for k, v in timings.items() if isinstance(v, (int, float)))))
    return lines


_PENDING: list = []  # (figure, path stem) to save; module-level so that forked workers see it


def _fork_is_safe() -> bool:
    """No other Python thread that could hold a lock the forked workers need. tqdm's progress-bar
    monitor only sleeps on an event and the workers never touch tqdm, so it does not count."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    return all(type(t).__name__ == "TMonitor" for t in others)


def _save_pending(i: int) -> None:
    fig, stem = _PENDING[i]
    figures.save(fig, stem)


class _Writer:
    """Writes the report's files, remembers each (for the manifest and the index)."""

    def __init__(self, out: Path, columns: dict, make_figures: bool, previous: list, width: str):
        self.out, self.columns, self.make_figures, self.previous, self.width = out, columns, make_figures, previous, width
        self.written, self.tables, self.figures, self.pending = [], {}, [], []

    def _table_files(self, stem: str, table: pd.DataFrame, title: str, paper, *, points: bool = False) -> list:
        """CSV always; Markdown and LaTeX too, except for a headline's long points table (a
        curve's thousands of points are data for a plot, not a table for a paper)."""
        base = self.out / "tables" / stem
        table.drop(columns=[c for c in table.columns if c.startswith("_")]).to_csv(f"{base}.csv", index=False)
        if points and len(table) > MAX_READ_ROWS:
            self.written.append(f"tables/{stem}.csv")
            self.tables[stem] = [f"{base}.csv"]
            return [f"tables/{stem}.csv"]
        Path(f"{base}.md").write_text(f"**{title}**\n\n" + render.to_markdown(table, columns=self.columns.get(stem)) + "\n")
        latex_cols = self.columns.get(stem) or render.paper_columns(table, paper)
        Path(f"{base}.tex").write_text(render.to_latex(table, columns=latex_cols, caption=title))
        files = [f"tables/{stem}.{ext}" for ext in ("csv", "tex", "md")]
        self.written += files
        self.tables[stem] = [str(self.out / f) for f in files]
        return files

    def _figure_files(self, stem: str, fig) -> list:
        """Queue a figure for `save_figures`; its paths are known now."""
        self.pending.append((fig, self.out / "figures" / stem))
        rel = [f"figures/{stem}.{ext}" for ext in ("png", "pdf")]
        self.written += rel
        self.figures += [str(self.out / r) for r in rel]
        return rel

    def save_figures(self, workers: int) -> None:
        """Draw and write the queued figures. Drawing (layout, text, font subsetting for the PDF's
        Type 42 fonts) is most of a report's time and each figure is independent, so with several
        cores forked workers share them; a process with other threads running draws them itself,
        since forking it could copy a lock another thread holds."""
        global _PENDING
        _PENDING, self.pending = self.pending, []
        workers = min(len(_PENDING), workers)
        try:
            if workers > 1 and _fork_is_safe() and "fork" in mp.get_all_start_methods():
                with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
                    list(pool.map(_save_pending, range(len(_PENDING))))
            else:
                for i in range(len(_PENDING)):
                    _save_pending(i)
        finally:
            for fig, _ in _PENDING:
                figures.plt.close(fig)
            _PENDING = []

    def table(self, name: str, table: pd.DataFrame) -> index.Section:
        paper = PAPER_COLUMNS["oscillation_eos"] if name == "oscillation" and "t_eos" in table else \
            PAPER_COLUMNS.get(name, [])
        files = self._table_files(name, table, TITLES[name], paper)
        return index.Section(slug=f"table-{name}", title=TITLES[name], caption=CAPTIONS[name], group="Tables",
                             table=table, columns=self.columns.get(name), files=files)

    def headlines(self, specs, runs, traj) -> list:
        sections = []
        for i, spec in enumerate(specs):
            title = spec.get("title") or f"{spec['kind']} {spec.get('y', spec.get('value', ''))}".strip()
            stem = f"headline_{i + 1}_{slug(title)}"
            try:
                got = headline.draw(spec, runs, traj, width=self.width)
                why = "this sweep has no data for it (or only a single value, which a figure cannot show honestly)"
            except headline.SpecError as e:  # e.g. a filter that this (smaller) sweep does not reach
                got, why = None, f"report.headline[{i}]: {e}"
            if got is None:
                sections.append(index.Section(slug=stem, title=title, group="Headline figures",
                                              caption=f"Not drawn: {why}."))
                continue
            files = self._table_files(stem, got.table, title, [], points=True)
            images = []
            if self.make_figures:
                rel = self._figure_files(stem, got.figure)
                images = [r for r in rel if r.endswith(".png")]
                files = [r for r in rel if r.endswith(".pdf")] + files
            else:
                figures.plt.close(got.figure)
            sections.append(index.Section(slug=stem, title=title, group="Headline figures",
                                          caption=" ".join(c for c in (spec.get("caption"), got.caption[:1].upper()
                                                                         + got.caption[1:]) if c), table=got.table if len(got.table) <= MAX_READ_ROWS else None,
                                          files=files, images=images))
        return sections

    def generic_figures(self, runs, traj, made, *, by=None) -> list:
        return report_figures.sections(self, runs, traj, made, by=by)

    def figure(self, stem: str, fig, title: str, caption: str) -> index.Section | None:
        if fig is None:
            return None
        rel = self._figure_files(stem, fig)
        return index.Section(slug=stem, title=title, caption=caption, group="Figures",
                             images=[r for r in rel if r.endswith(".png")], files=[r for r in rel if r.endswith(".pdf")])

    def kept_figures(self) -> list:
        """--no-figures: the figures an earlier build wrote stay, listed again (and kept in the manifest)."""
        kept = [p for p in self.previous if p.startswith("figures/") and (self.out / p).exists()]
        self.written += kept
        pngs = sorted(p for p in kept if p.endswith(".png"))
        return [index.Section(slug=f"kept-{slug(Path(p).stem)}", title=Path(p).stem.replace("_", " "),
                              caption="Figure from an earlier build of this report (this build drew no figures).",
                              group="Figures", images=[p], files=[p[:-4] + ".pdf"]) for p in pngs]

    def finish(self) -> None:
        """Remove what an earlier build wrote and this one did not; record this build's files."""
        keep = set(self.written) | {"index.md", "index.html", "manifest.json"}
        for rel in self.previous:
            if rel not in keep and (self.out / rel).is_file():
                (self.out / rel).unlink()
        (self.out / "manifest.json").write_text(json.dumps(sorted(set(self.written)), indent=0))
