"""Compare two sweeps: "what changed when I changed X".

    gdbench-report A B [--labels a,b] [--out DIR]      → <A>/compare-<b>/ (index.md, index.html)

A user runs a sweep, changes one thing (the loss, the margin of the data, the step-size grid …)
and runs it again. The comparison puts the two sweeps' rates and oscillation tables side by side
and overlays their loss curves:

- Rows. Each sweep's table is built exactly as its own report builds it (`gdbench.analysis`),
  grouped by the same key columns on both sides: every column either sweep groups by
  (`analysis.group_columns`) that both runs tables have. The rows are matched on those keys
  (an outer join), except on a key that is constant within each sweep but differs between them:
  that key *is* the change (e.g. `loss`: logistic → squared), and matching on it would match
  nothing, so it is left out of the match and stated at the top of the comparison instead.
  A row that only one sweep has keeps null values on the other side ("not run" in the tables).
- Columns. Every value column of each table, suffixed with its sweep's label
  (`t_sep_median [a]`, `t_sep_median [b]`), and for the headline metrics a difference column
  `Δ t_sep_median` = b − a. The CSV keeps every column; Markdown and HTML show the keys and the
  headline triples, LaTeX at most `LATEX_COLUMNS` columns (whole triples).
- Figures. Per data setting both sweeps have (every matched key except the model's and the step
  size), log10 F(W_t) against t, median over seeds: sweep a solid, sweep b dashed, one colour per
  step size, one panel per model.

Configuration columns whose values differ between the sweeps but are not keys (a changed
`data.margin`, constant in each sweep) do not split rows; the comparison names them at the top so
that the reader knows what the two sides differ in.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from gdbench import analysis, compare_figures, index, render
from gdbench.store import last_session, load

HEADLINE = {"rates": ("t_sep_median", "final_loss", "separated", "rate_slope"),
            "oscillation": ("non_monotone", "n_increases", "transition_time", "peak_ratio")}
TITLES = {"rates": "Rates side by side: separation, final loss and the fitted rate slope (medians over seeds)",
          "oscillation": "Oscillation side by side: non-monotone loss, increases, transition time τ, peak ratio"}
LATEX_COLUMNS = 8   # a LaTeX table wider than this does not fit a page
NOT_RUN = "not run"


@dataclass
class Sweep:
    path: Path
    label: str
    runs: pd.DataFrame
    traj: pd.DataFrame


# ---------------------------------------------------------------- the public function

def compare(sweep_a, sweep_b, *, labels=("A", "B"), out=None, by=None, t0: int = 10,
            make_figures: bool = True) -> dict:
    """Write the comparison of two sweep directories into `out` (default `<sweep_a>/compare-<label b>/`)
    and return {"out", "keys", "changed", "differences", "tables", "files", "figures"}: `tables` the
    side-by-side DataFrames (raw values, NaN where a row is missing on one side), `changed` the keys
    left out of the row match (constant in each sweep, different between them)."""
    la, lb = check_labels(labels)
    a, b = load_sweep(sweep_a, la), load_sweep(sweep_b, lb)
    try:
        keys = common_keys(a.runs, b.runs, by)
    except KeyError as e:  # a --group-by column one of them lacks: say which sweeps were asked
        raise KeyError(f"{e.args[0]} (comparing {a.path} and {b.path})") from None
    changed = changed_keys(a.runs, b.runs, keys)
    match = [k for k in keys if k not in changed]
    if not match:
        raise ValueError(f"{a.path} and {b.path} have no key column to match rows on "
                         f"(keys {keys} all differ between the sweeps)")
    out = Path(out) if out is not None else a.path / f"compare-{_slug(lb)}"
    (out / "tables").mkdir(parents=True, exist_ok=True)

    tables = {"rates": side_by_side(analysis.rates_table(a.runs, a.traj, by=keys, t0=t0),
                                    analysis.rates_table(b.runs, b.traj, by=keys, t0=t0),
                                    match, (la, lb), HEADLINE["rates"]),
              "oscillation": side_by_side(analysis.oscillation_table(a.runs, by=keys),
                                          analysis.oscillation_table(b.runs, by=keys),
                                          match, (la, lb), HEADLINE["oscillation"])}
    files = {name: write_table(table, out / "tables" / name, name, (la, lb)) for name, table in tables.items()}
    figs = compare_figures.overlay_figures(a, b, keys, match, out / "figures") if make_figures else []
    differences = config_differences(a.runs, b.runs)
    index.write(out, _header(a, b, match, changed, differences), _sections(tables, figs, (la, lb), out))
    return {"out": out, "keys": match, "changed": changed, "differences": differences, "tables": tables,
            "files": files, "figures": figs}


def check_labels(labels) -> tuple[str, str]:
    """Two distinct, non-empty labels (they suffix the columns, so equal ones would collide)."""
    labels = [str(x).strip() for x in labels]
    if len(labels) != 2 or not all(labels):
        raise ValueError(f"--labels needs exactly two non-empty names (got {len(labels)}: {','.join(labels)})")
    if labels[0] == labels[1]:
        raise ValueError(f"the two labels must differ (got {labels[0]!r} twice; pass --labels a,b)")
    return labels[0], labels[1]


def load_sweep(path, label: str) -> Sweep:
    """A sweep's runs (numeric-looking text keys as numbers) and trajectory; a path that is not a
    sweep directory raises FileNotFoundError naming it (from `store.load`)."""
    root = Path(path).expanduser()
    runs, traj = load(root, trajectory_columns=["log_loss", "accuracy"])
    return Sweep(root, label, analysis.numeric_keys(runs), traj)


# ---------------------------------------------------------------- which keys match rows

def common_keys(runs_a: pd.DataFrame, runs_b: pd.DataFrame, by=None) -> list[str]:
    """Every column either sweep groups by that both runs tables have, in reading order, so that
    both tables are grouped alike (a key that varies in one sweep only still splits its rows)."""
    ka, kb = analysis.group_columns(runs_a, by), analysis.group_columns(runs_b, by)
    union = [k for k in dict.fromkeys(ka + kb) if k in runs_a and k in runs_b]
    if not union:
        raise ValueError("the two sweeps have no key column in common: nothing to match their rows on")
    if by is not None:
        return union  # the user's order
    order = analysis.config_columns(runs_a) + analysis.config_columns(runs_b)
    keys = [c for c in dict.fromkeys(order) if c in union]
    return keys + [k for k in union if k not in keys]


def changed_keys(runs_a: pd.DataFrame, runs_b: pd.DataFrame, keys: list[str]) -> list[str]:
    """Keys with one value in each sweep and a different one in each: the thing the user changed."""
    out = []
    for k in keys:
        va, vb = runs_a[k].drop_duplicates(), runs_b[k].drop_duplicates()
        if len(va) == 1 and len(vb) == 1 and not _same(va.iloc[0], vb.iloc[0]):
            out.append(k)
    return out


def _same(x, y) -> bool:
    return (pd.isna(x) and pd.isna(y)) if (pd.isna(x) or pd.isna(y)) else str(x) == str(y) or x == y


def config_differences(runs_a: pd.DataFrame, runs_b: pd.DataFrame) -> list[str]:
    """Each configuration column whose values differ between the sweeps, as "col: a-values → b-values"."""
    cols = list(dict.fromkeys(analysis.config_columns(runs_a) + analysis.config_columns(runs_b)))
    lines = []
    for c in cols:
        va, vb = _values(runs_a, c), _values(runs_b, c)
        if va != vb:
            lines.append(f"{c}: {va} → {vb}")
    return lines


def _values(runs: pd.DataFrame, col: str, limit: int = 5) -> str:
    if col not in runs:
        return "(no such column)"
    vals = runs[col].drop_duplicates()
    vals = sorted(vals, key=lambda v: (pd.isna(v), str(type(v)), v if not pd.isna(v) else 0))
    text = [render.format_number(v) if not pd.isna(v) else "null" for v in vals]
    return ", ".join(text[:limit]) + (f", … ({len(text)} values)" if len(text) > limit else "")


# ---------------------------------------------------------------- the side-by-side table

def side_by_side(ta: pd.DataFrame, tb: pd.DataFrame, match: list[str], labels, headline) -> pd.DataFrame:
    """Outer join of two analysis tables on `match`: value columns suffixed " [label]", then
    `Δ metric` = b − a for the headline metrics; columns ordered keys, (a, b, Δ) per headline
    metric, then the rest. `_marks` carries both sides' footnote marks under the new names;
    `_side` says which sweeps have the row ("both", or a label)."""
    la, lb = labels
    left, right = _harmonize(_suffixed(ta, match, la, "_marks_a"), _suffixed(tb, match, lb, "_marks_b"), match)
    out = left.merge(right, on=match, how="outer", sort=True, indicator="_side")
    out["_side"] = out["_side"].map({"both": "both", "left_only": la, "right_only": lb}).astype(object)
    for m in headline:
        ca, cb = f"{m} [{la}]", f"{m} [{lb}]"
        if ca in out and cb in out:
            out[f"Δ {m}"] = _float(out[cb]) - _float(out[ca])
    out["_marks"] = [_merge_marks(x, y, labels, headline) for x, y in zip(out.pop("_marks_a"), out.pop("_marks_b"))]
    triples = [c for m in headline for c in (f"{m} [{la}]", f"{m} [{lb}]", f"Δ {m}") if c in out]
    rest = [c for c in out.columns if c not in match and c not in triples and not c.startswith("_")]
    out = out[match + triples + rest + ["_marks", "_side"]]
    out.attrs["keys"] = list(match)
    out.attrs["headline"] = [m for m in headline if f"Δ {m}" in out]
    return out


def _suffixed(table: pd.DataFrame, match: list[str], label: str, marks: str) -> pd.DataFrame:
    """The match columns, then every other column renamed "<column> [label]"; its marks in `marks`."""
    values = [c for c in table.columns if c not in match and c != "_marks"]
    out = table[match + values].rename(columns={c: f"{c} [{label}]" for c in values})
    out[marks] = table["_marks"] if "_marks" in table else [{} for _ in range(len(table))]
    return out


def _harmonize(left: pd.DataFrame, right: pd.DataFrame, match: list[str]):
    """Same dtypes on the match columns: a key read as text on one side and as numbers on the
    other cannot be joined."""
    for k in match:
        na, nb = pd.api.types.is_numeric_dtype(left[k]), pd.api.types.is_numeric_dtype(right[k])
        if na and nb:
            left[k], right[k] = left[k].astype("float64"), right[k].astype("float64")
        elif left[k].dtype != right[k].dtype:
            left[k], right[k] = left[k].astype(object), right[k].astype(object)
    return left, right


def _float(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce").astype("float64")


def _merge_marks(ma, mb, labels, headline) -> dict:
    """Both sides' marks under the suffixed names; a Δ inherits the marks of either side (the "s"
    of a scale-free algorithm's loss applies to the difference too)."""
    out = {}
    for mark, label in ((ma, labels[0]), (mb, labels[1])):
        for col, m in (mark if isinstance(mark, dict) else {}).items():
            out[f"{col} [{label}]"] = m
            if col in headline:
                out[f"Δ {col}"] = "".join(dict.fromkeys(out.get(f"Δ {col}", "") + m))
    return out


# ---------------------------------------------------------------- tables as files

def display_table(table: pd.DataFrame, labels) -> pd.DataFrame:
    """The table as shown (Markdown, HTML, LaTeX): the headline cells of the side that has no such
    row read "not run" and their Δ "—", instead of a footnote mark that would give a wrong reason."""
    shown = table.copy()
    for m in table.attrs.get("headline", []):
        delta = f"Δ {m}"
        for label in labels:
            col, absent = f"{m} [{label}]", table["_side"] == _other(label, labels)
            shown[col] = shown[col].astype(object)
            shown.loc[absent, col] = NOT_RUN
        shown[delta] = shown[delta].astype(object)
        shown.loc[table["_side"] != "both", delta] = "—"
    shown.attrs = dict(table.attrs)
    return shown


def _other(label, labels):
    return labels[1] if label == labels[0] else labels[0]


def shown_columns(table: pd.DataFrame, *, limit: int | None = None) -> list[str]:
    """Keys that vary, then whole (a, b, Δ) triples of the headline metrics; with `limit`, as many
    triples as fit in `limit` columns (at least one)."""
    keys = render.paper_columns(table, [], limit=0)
    cols = list(keys)
    labels_of = [c for c in table.columns if not c.startswith(("_", "Δ "))]
    for m in table.attrs.get("headline", []):
        triple = [c for c in labels_of if c.startswith(f"{m} [")] + [f"Δ {m}"]
        if limit is not None and len(cols) + len(triple) > limit and len(cols) > len(keys):
            break
        cols += triple
    return cols


def _metric_of(col: str):
    """(metric, the sub-header under it) of a comparison column, (None, None) for a key."""
    m = re.fullmatch(r"(.+) \[(.+)\]", col)
    if m:
        return m.group(1), render.latex_text(m.group(2))
    if col.startswith("Δ "):
        return col[2:], r"$\Delta$"
    return None, None


def latex_header(columns) -> list[str]:
    """Two header rows: each metric once, spanning its (a, b, Δ) columns, over a rule; under it the
    sweep labels and Δ, and the keys' own headers. Narrower than "metric [label]" in every column,
    and ASCII (render's fallback would print Δ as "?")."""
    top, rules, bottom, at = [], [], [], 1
    groups = []  # [metric or None, [columns]]
    for c in columns:
        metric = _metric_of(c)[0]
        if metric is not None and groups and groups[-1][0] == metric:
            groups[-1][1].append(c)
        else:
            groups.append([metric, [c]])
    for metric, cols in groups:
        if metric is None:
            top.append("")
            bottom.append(render.header(cols[0], latex=True))
        else:
            top.append(f"\\multicolumn{{{len(cols)}}}{{c}}{{{render.header(metric, latex=True)}}}")
            rules.append(f"\\cmidrule(lr){{{at}-{at + len(cols) - 1}}}")
            bottom += [_metric_of(c)[1] for c in cols]
        at += len(cols)
    return [" & ".join(top) + r" \\", " ".join(rules), " & ".join(bottom) + r" \\"]


def to_latex(table: pd.DataFrame, *, columns, caption: str) -> str:
    """`render.to_latex` with its header row replaced by `latex_header`."""
    text = render.to_latex(table, columns=columns, caption=caption)
    lines = text.split("\n")
    at = lines.index(r"\toprule") + 1
    shown = render.display_frame(table, latex=True, columns=columns)[0].columns
    lines[at:at + 1] = latex_header(list(shown))
    return "\n".join(lines)


def write_table(table: pd.DataFrame, stem: Path, name: str, labels) -> list[str]:
    """`<stem>.csv` (every column, raw values), `.md` (keys and headline triples) and `.tex`
    (at most LATEX_COLUMNS columns); returns the paths."""
    table.drop(columns=["_marks"]).rename(columns={"_side": "present_in"}).to_csv(f"{stem}.csv", index=False)
    shown = display_table(table, labels)
    title = f"{TITLES[name]} — {labels[0]} vs {labels[1]}, Δ = {labels[1]} − {labels[0]}"
    Path(f"{stem}.md").write_text(f"**{title}**\n\n" + render.to_markdown(shown, columns=shown_columns(shown)) + "\n")
    Path(f"{stem}.tex").write_text(to_latex(shown, columns=shown_columns(shown, limit=LATEX_COLUMNS),
                                            caption=title.replace("Δ", "differences")))
    return [f"{stem}.md", f"{stem}.tex", f"{stem}.csv"]


# ---------------------------------------------------------------- overlaid loss curves

def _header(a: Sweep, b: Sweep, match, changed, differences) -> index.Header:
    notices = []
    if changed:
        notices.append("Rows are matched without " + ", ".join(f"`{k}`" for k in changed)
                       + f": constant in each sweep, it is what differs between {a.label} and {b.label}.")
    if differences:
        notices.append(f"Configuration that differs ({a.label} → {b.label}): " + "; ".join(differences) + ".")
    return index.Header(title=f"gdbench comparison — {a.label} vs {b.label}",
                        sweep=f"{a.label} = {a.path.resolve()}, {b.label} = {b.path.resolve()}",
                        status=f"{_count(a)}; {_count(b)}; rows matched on {', '.join(match)}",
                        notices=notices, provenance=_provenance(a) + _provenance(b))


def _count(s: Sweep) -> str:
    failed = int((s.runs["status"] == "failed").sum())
    return f"{s.label}: {len(s.runs) - failed} runs finished, {failed} failed"


def _provenance(s: Sweep) -> list:
    """(key, value) pairs of a sweep's last session, each prefixed with the sweep's label."""
    pairs = [(f"{s.label}: sweep", str(s.path.resolve()))]
    last = last_session(s.path)
    if last is not None:
        pairs += [(f"{s.label}: {k}", last[k]) for k in ("time", "gdbench", "git_commit", "host") if k in last]
        pairs.append((f"{s.label}: command", " ".join(map(str, last.get("argv", [])))))
    return pairs


def _sections(tables: dict, figs: list, labels, out: Path) -> list:
    la, lb = labels
    how = (f"Columns [{la}] come from sweep {la}, [{lb}] from sweep {lb}; Δ = {lb} − {la} (a positive Δ t_sep: "
           f"{lb} separates later), missing where either side is. \"{NOT_RUN}\": that sweep has no runs at "
           "this row's setting. A row groups the runs that differ only in their seeds; medians over seeds, "
           "as in each sweep's own report. The CSV has every column of both tables (`present_in` says "
           f"which sweeps have the row); the LaTeX table at most {LATEX_COLUMNS} columns.")
    sections = []
    for name, table in tables.items():
        shown = display_table(table, labels)
        sections.append(index.Section(slug=name, title=TITLES[name], caption=how, table=shown,
                                      columns=shown_columns(shown),
                                      files=[f"tables/{name}.{ext}" for ext in ("md", "tex", "csv")]))
    for png in [p for p in figs if p.endswith(".png")]:
        rel = Path(png).relative_to(out).as_posix()
        name = Path(png).stem.removeprefix("loss_curves_")
        sections.append(index.Section(
            slug=f"fig-{name}", title=f"Loss curves — {name.replace('_', ' ')}", group="Figures",
            caption=(f"log10 F(W_t) against the iteration t (symlog axis), median over seeds: {la} solid, "
                     f"{lb} dashed, one colour per step size η, one panel per model. Where the dashed line "
                     f"lies below the solid one, {lb} has the smaller loss at that iteration."),
            images=[rel], files=[rel, rel[:-4] + ".pdf"]))
    return sections


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9=.+-]+", "_", text)[:80] or "b"


# ---------------------------------------------------------------- the command line

def main(args) -> None:
    """`gdbench-report A B [--labels a,b] [--out DIR]` (called by `cli.report` with its parsed
    arguments): write the comparison, print where it is and the rates side by side."""
    dirs = args.sweep_dir
    if len(dirs) != 2:
        sys.exit(f"gdbench-report: give one sweep directory (a report) or two (a comparison), not {len(dirs)}"
                 + ("" if len(dirs) > 2 else " with --labels/--out (they apply to a comparison)"))
    labels = args.labels.split(",") if args.labels is not None else [Path(d).resolve().name for d in dirs]
    by = [c.strip() for c in args.group_by.split(",") if c.strip()] if args.group_by else None
    try:
        res = compare(dirs[0], dirs[1], labels=labels, out=args.out, by=by,
                      t0=10 if args.rate_t0 is None else args.rate_t0, make_figures=not args.no_figures)
    except (KeyError, FileNotFoundError, ValueError) as e:
        sys.exit(f"gdbench-report: {e.args[0] if e.args else e}")
    if not args.quiet:
        print(Path(res["files"]["rates"][0]).read_text())
    print(f"comparison: {res['out'] / 'index.md'}")
