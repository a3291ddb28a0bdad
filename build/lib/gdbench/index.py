"""The report's front pages: `index.md` and `index.html`, rendered from one list of sections so the
two say the same thing. A section is a headline figure (with the table of its points), a table,
or a generic figure; each has a caption that says what it shows and how to read it, and links to
its files (CSV, LaTeX, Markdown, PDF).

The HTML page is self-contained and works offline (inline CSS and JavaScript, no network): a table
of contents (a sticky sidebar on wide screens, at the top otherwise), one `<section>` per item, and
sortable tables (click a header, or focus it and press Enter; a few lines of inline JavaScript sort
by the raw values kept in `data-v` attributes, numbers as numbers, missing values last in both
directions). Text that carries inline markup (`code`, **bold**, $TeX$ from the figures' axis
labels) is rendered, never shown raw.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gdbench import render


@dataclass
class Section:
    slug: str                       # HTML anchor; unique in the report
    title: str
    caption: str                    # what it shows and how to read it
    group: str = "Tables"           # the TOC heading it belongs to
    table: pd.DataFrame | None = None   # an analysis table (raw values, attrs["keys"])
    columns: list | None = None     # columns shown (None: all)
    files: list = field(default_factory=list)   # paths relative to report/
    images: list = field(default_factory=list)  # PNG paths relative to report/


@dataclass
class Header:
    title: str
    sweep: str
    status: str
    notices: list = field(default_factory=list)     # things the reader must know first
    provenance: list = field(default_factory=list)  # (key, value) pairs


def write(out: Path, head: Header, sections: list[Section]) -> None:
    (out / "index.md").write_text(markdown(head, sections))
    (out / "index.html").write_text(page(head, sections))


def _groups(sections):
    order = list(dict.fromkeys(s.group for s in sections))
    return [(g, [s for s in sections if s.group == g]) for g in order]


# ---------------------------------------------------------------- Markdown

def markdown(head: Header, sections: list[Section]) -> str:
    md = [f"# {head.title}", "", f"Sweep: `{head.sweep}`  ", f"Status: {head.status}.", ""]
    md += [f"> **Note.** {n}" + "\n" for n in head.notices]
    md += ["## Contents", ""]
    for group, items in _groups(sections):
        md.append(f"- {group}")
        md += [f"  - [{s.title}](#{s.slug})" for s in items]
    md += ["- [Provenance](#provenance)", ""]
    for group, items in _groups(sections):
        md += [f"## {group}", ""]
        for s in items:
            md += [f'<a id="{s.slug}"></a>', "", f"### {s.title}", "", s.caption, ""]
            md += [f"![{s.title}]({p})" for p in s.images] + ([""] if s.images else [])
            if s.table is not None:
                md += [render.to_markdown(s.table, columns=s.columns), ""]
            if s.files:
                md += ["Files: " + ", ".join(f"[{Path(f).name}]({f})" for f in s.files), ""]
    md += ['<a id="provenance"></a>', "", "## Provenance", ""]
    md += [f"- {k}: `{v}`" for k, v in head.provenance] + [""]
    return "\n".join(md)


# ---------------------------------------------------------------- inline markup → HTML

# TeX commands the figures' axis labels use (gdbench.headline.AXIS_LABELS), as the Unicode a
# reader expects; an unknown command shows as its bare name rather than with a backslash.
TEX = {"eta": "η", "gamma": "γ", "tau": "τ", "mu": "μ", "sigma": "σ", "epsilon": "ε", "varepsilon": "ε",
       "lambda": "λ", "alpha": "α", "beta": "β", "theta": "θ", "rho": "ρ", "delta": "δ", "Delta": "Δ",
       "infty": "∞", "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥", "cdot": "·", "times": "×", "to": "→",
       "approx": "≈", "sqrt": "√", "|": "‖", "ell": "ℓ", "ldots": "…", "dots": "…", "pm": "±", ",": " ",
       "quad": " ", "log": "log", "exp": "exp", "max": "max", "min": "min"}


def _math(tex: str) -> str:
    """A `$…$` span (already HTML-escaped) as readable HTML: `_`/`^` as sub- and superscripts,
    \\frac{a}{b} as a/b, \\mathrm{x} as x, \\hat W as Ŵ, commands as Unicode, "-" as a minus."""
    s = re.sub(r"\\(?:mathrm|text|operatorname|mathit|mathbf)\{([^{}]*)\}", r"\1", tex)
    s = re.sub(r"([_^])\{([^{}]*)\}|([_^])(\w)",  # innermost first, so \frac's arguments lose their braces
               lambda m: (f"<sub>{m.group(2) or m.group(4)}</sub>" if (m.group(1) or m.group(3)) == "_"
                          else f"<sup>{m.group(2) or m.group(4)}</sup>"), s)
    s = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"{\1}/{\2}", s)
    s = re.sub(r"\\(?:hat|widehat)\s*\{?(\w)\}?", "\\1\u0302", s)
    # a word command (\log) before a letter or another command needs the space TeX would put there
    s = re.sub(r"\\([A-Za-z]+|[|,])(?=([A-Za-z\\{]?))",
               lambda m: TEX.get(m.group(1), m.group(1)) + (" " if m.group(2) and len(m.group(1)) > 1 else ""), s)
    return '<span class="math">' + s.replace("{", "").replace("}", "").replace("-", "−") + "</span>"


def inline(text: str) -> str:
    """Caption, notice or title text as HTML: escaped, with its inline markup rendered (`code`,
    **bold**, $TeX$), so the page never shows Markdown or TeX source."""
    out = []
    for i, part in enumerate(re.split(r"`([^`]*)`", str(text))):
        if i % 2:  # inside backticks: literal code
            out.append(f"<code>{html.escape(part)}</code>")
            continue
        part = html.escape(part, quote=False)
        part = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", part)
        out.append(re.sub(r"\$([^$]+)\$", lambda m: _math(m.group(1)), part))
    return "".join(out)


# ---------------------------------------------------------------- HTML

STYLE = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;background:#fff}
a{color:#0550ae}
nav.toc{background:#f6f8fa;border-bottom:1px solid #d0d7de;padding:.8em 1.2em;font-size:14px;line-height:1.4}
nav.toc .title{font-weight:600;margin-bottom:.3em}
nav.toc ul{list-style:none;margin:0;padding:0}
nav.toc ul ul{margin:.15em 0 .5em .9em}
nav.toc li{margin:.15em 0}
nav.toc .group{font-weight:600;color:#57606a;text-transform:uppercase;font-size:11.5px;letter-spacing:.04em}
nav.toc a{text-decoration:none}
nav.toc a:hover{text-decoration:underline}
header.top,main{padding:0 1.5em;max-width:1180px}
main{padding-bottom:4em}
header.top{padding-top:.5em;padding-bottom:.6em}
@media (min-width:1100px){
  body{display:grid;grid-template-columns:16em minmax(0,1fr);grid-template-rows:auto 1fr}
  nav.toc{grid-column:1;grid-row:1/span 2;position:sticky;top:0;height:100vh;overflow-y:auto;border-bottom:0;border-right:1px solid #d0d7de}
  header.top,main{grid-column:2}
}
h1{font-size:1.7em;margin:.4em 0 .2em}
h2{font-size:1.35em;margin:1.6em 0 .3em;padding-bottom:.2em;border-bottom:2px solid #d0d7de}
h3{font-size:1.1em;margin:0 0 .3em}
section{margin:1.2em 0 2em;scroll-margin-top:.8em}
section:target>h3{background:#fff8c5}
.meta{color:#57606a}
p.caption{max-width:62em;margin:.2em 0 .6em}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f6f8fa;padding:0 .25em;border-radius:3px;overflow-wrap:anywhere}
.math{font-family:"Cambria Math","STIX Two Math","Latin Modern Math",Georgia,serif;font-size:1.08em;white-space:nowrap}
.scroll{overflow-x:auto;max-width:100%}
table.t{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums;margin:.3em 0}
table.t th{cursor:pointer;user-select:none;background:#f0f2f4;padding:4px 6px;border-bottom:2px solid #8c959f;white-space:nowrap;text-align:center;font-weight:600}
table.t th:hover,table.t th:focus{background:#dde4ec;outline:none}
table.t th[aria-sort=ascending]::after{content:" \\25B2";font-size:.8em}
table.t th[aria-sort=descending]::after{content:" \\25BC";font-size:.8em}
table.t td{padding:2px 6px;border-bottom:1px solid #e5e8eb;text-align:right;white-space:nowrap}
table.t td.k{text-align:left}
table.t tbody tr:nth-child(even){background:#fafbfc}
table.t tbody tr:hover{background:#eef4ff}
.note{font-size:12.5px;color:#57606a;margin:.1em 0}
p.files{font-size:13.5px;margin:.5em 0}
p.files a{margin-right:.9em}
.notice{background:#fff8c5;border:1px solid #d4a72c;border-radius:4px;padding:.5em .9em;max-width:62em}
figure{margin:.4em 0}
figure img{display:block;max-width:100%;height:auto}
dl.prov{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.15em 1em;font-size:13.5px}
dl.prov dt{color:#57606a}dl.prov dd{margin:0}
@media print{nav.toc{display:none}body{display:block}table.t th::after{content:none}}
"""

# Sorts a table by the clicked column's raw `data-v` values: numbers numerically (Number() takes
# the whole string, so "8abc" is text, and "Infinity" is a number), text in natural order, the
# missing value (an empty data-v) last whichever the direction; the sort is stable, so ties keep
# the order of the previous sort.
SORT_JS = """
document.querySelectorAll('table.t').forEach(function (t) {
  var heads = Array.prototype.slice.call(t.tHead.rows[0].cells);
  heads.forEach(function (th, i) {
    function sort() {
      var asc = th.getAttribute('aria-sort') !== 'ascending';
      heads.forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
      var body = t.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[i].getAttribute('data-v'), y = b.cells[i].getAttribute('data-v');
        if (x === '' || y === '') return (x === '') - (y === '');
        var nx = Number(x), ny = Number(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? (nx > ny) - (nx < ny) : x.localeCompare(y, undefined, {numeric: true});
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    }
    th.addEventListener('click', sort);
    th.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sort(); } });
  });
});
"""

FILE_KINDS = {".csv": "CSV", ".tex": "LaTeX", ".md": "Markdown", ".pdf": "PDF", ".png": "PNG"}


def _sort_value(v) -> str:
    """The raw value a column sorts by: numbers in full precision (±inf as JavaScript's
    ±Infinity), booleans as 1/0, missing as "" (sorted last)."""
    if v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and np.isnan(v)):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "1" if v else "0"
    if isinstance(v, (int, float, np.integer, np.floating)):
        return "Infinity" if v == np.inf else ("-Infinity" if v == -np.inf else repr(float(v)))
    return str(v)


def html_table(table: pd.DataFrame, columns=None) -> str:
    """A sortable table (headers as in the Markdown, cells as displayed, raw values in data-v)
    followed by its context lines ("All rows: …" and the footnotes of the marks it uses)."""
    df, used = render.display_frame(table, columns=columns)
    if not len(df):  # as in the Markdown: no header row without rows
        return '<p class="note">(no rows)</p>'
    keys = set(table.attrs.get("keys", []))
    head = "".join(f'<th scope="col" tabindex="0" title="sort by this column" data-col="{html.escape(str(c))}">'
                   f"{html.escape(render.header(c))}</th>" for c in df.columns)
    rows = []
    for raw, shown in zip(table.to_dict("records"), df.to_dict("records")):  # dicts: no Series per row
        cells = "".join(f'<td class="{"k" if c in keys else "v"}" data-v="{html.escape(_sort_value(raw[c]))}">'
                        f"{html.escape(str(shown[c]))}</td>" for c in df.columns)
        rows.append(f"<tr>{cells}</tr>")
    notes = "".join(f'<p class="note">{html.escape(line)}</p>' for line in render.context_lines(table, used))
    return (f'<div class="scroll"><table class="t"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>{notes}')


def _files(files: list) -> str:
    links = "".join(f'<a href="{html.escape(f)}" title="{html.escape(f)}">{FILE_KINDS.get(Path(f).suffix, "file")}'
                    f"</a>" for f in files)
    return f'<p class="files">Files: {links}</p>'


def _section(s: Section) -> str:
    part = [f'<section id="{html.escape(s.slug)}"><h3>{inline(s.title)}</h3>']
    if s.caption:
        part.append(f'<p class="caption">{inline(s.caption)}</p>')
    part += [f'<figure><img src="{html.escape(p)}" alt="{html.escape(s.title)}"></figure>'
             for p in s.images]
    if s.table is not None:
        part.append(html_table(s.table, s.columns))
    if s.files:
        part.append(_files(s.files))
    return "".join(part) + "</section>"


def _toc(sections: list[Section]) -> str:
    items = []
    for group, members in _groups(sections):
        links = "".join(f'<li><a href="#{html.escape(s.slug)}">{inline(s.title)}</a></li>' for s in members)
        items.append(f'<li><span class="group">{html.escape(group)}</span><ul>{links}</ul></li>')
    items.append('<li><a href="#provenance">Provenance</a></li>')
    return f'<nav class="toc" aria-label="Contents"><div class="title">Contents</div><ul>{"".join(items)}</ul></nav>'


def page(head: Header, sections: list[Section]) -> str:
    # the title, status and notices come first on a narrow screen too, where the TOC follows them
    top = [f"<h1>{inline(head.title)}</h1>",
           f'<p class="meta">Sweep: <code>{html.escape(head.sweep)}</code><br>Status: {inline(head.status)}.</p>']
    top += [f'<p class="notice"><strong>Note.</strong> {inline(n)}</p>' for n in head.notices]
    body = []
    for group, items in _groups(sections):
        body.append(f"<h2>{html.escape(group)}</h2>")
        body += [_section(s) for s in items]
    body.append('<section id="provenance"><h2>Provenance</h2><dl class="prov">' + "".join(
        f"<dt>{html.escape(k)}</dt><dd><code>{html.escape(str(v))}</code></dd>" for k, v in head.provenance)
        + "</dl></section>")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'><title>{html.escape(head.title)}</title>"
            f"<style>{STYLE}</style></head><body><header class=\"top\">{''.join(top)}</header>{_toc(sections)}"
            f"<main>{''.join(body)}</main>"
            f"<script>{SORT_JS}</script></body></html>\n")
