"""The HTML report as a reader sees it: a real sweep (the real CLI on the embedded Ray, with its
end-of-sweep report) opened from disk in a real headless Chromium, driven by Selenium. Checks what
only a browser can tell: every image loads, every table-of-contents link lands on a section, every
file link points to a file, clicking a header sorts the column numerically (and again, the other
way), and no Markdown shows raw. It also checks that index.html and index.md carry the same
sections, files, images, notices and provenance.

Needs Debian's chromium and chromium-driver (scripts/setup.sh installs them as root); without them
the module fails rather than skips, so CI cannot pass while not testing the page.
"""
import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest

from gdbench import index
from conftest import gdbench as run_gdbench

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Chromium as root on a closed network: no sandbox (root), no GPU, and none of the background
# services that would try to reach the network; a fresh profile so no state leaks between runs.
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--window-size=1400,1000"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A real report: the default study's headline figures on a small grid (two subsets, two PCA
    sizes) in which two losses and a small and a huge step give values over hundreds of decades and
    missing cells (targets not reached)."""
    tmp = tmp_path_factory.mktemp("browser")
    run_gdbench("-m", "experiment=default", "model=linear,two_layer", "loss=logistic,squared",
                "algorithm.lr=1,1e4", "seed=range(2)", "data.seed=range(2)", "data.n=40", "data.project_dim=4,8",
                "iterations=40",
                "report.enabled=true", "report.bootstrap=50", "hydra.sweep.dir=sw", cwd=tmp, timeout=600)
    rep = tmp / "sw" / "report"
    assert (rep / "index.html").exists() and (rep / "index.md").exists()
    return rep


@contextlib.contextmanager
def _chromium():
    """A headless Chromium driven by Selenium, on the system's chromium and chromedriver only."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: scripts/setup.sh installs them (Debian's chromium and "
                    "chromium-driver, as root); the HTML report cannot be tested without a browser")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: `pip install -e .[test]` (scripts/setup.sh does it)")
    profile = tempfile.mkdtemp(prefix="gdchrome")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    # the explicit driver path already skips Selenium Manager; SE_OFFLINE makes sure that, should
    # it run anyway, it never tries to download a browser or a driver
    with mock.patch.dict(os.environ, SE_OFFLINE="true"):
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(report):
    """The report's index.html from file:// (no server: the page must work offline)."""
    with _chromium() as driver:
        driver.get((report / "index.html").as_uri())  # returns once the load event (images included) fired
        yield driver


def _js(browser, script, *args):
    return browser.execute_script(script, *args)


def test_every_image_loads_and_has_alt_text(report, browser):
    images = _js(browser, "return Array.from(document.images).map(i => "
                          "[i.getAttribute('src'), i.complete, i.naturalWidth, i.getAttribute('alt')]);")
    pngs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (report / "index.md").read_text())
    assert len(images) == len(pngs) > 3  # headline figures and generic figures
    broken = [src for src, complete, width, _ in images if not complete or width == 0]
    assert not broken, f"broken images: {broken}"
    assert all(alt and alt.strip() for *_, alt in images)


def test_every_toc_link_resolves(browser):
    links = _js(browser, "return Array.from(document.querySelectorAll('nav a')).map(a => a.getAttribute('href'));")
    assert {"#table-rates", "#table-summary", "#provenance"} <= set(links)
    assert all(h.startswith("#") for h in links)
    dangling = _js(browser, "return arguments[0].filter(h => !document.getElementById(h.slice(1)));", links)
    assert not dangling, f"TOC links without a target: {dangling}"
    # every in-page link anywhere on the page, not only in the TOC
    assert not _js(browser, "return Array.from(document.querySelectorAll('a[href^=\"#\"]'))"
                            ".filter(a => !document.getElementById(a.getAttribute('href').slice(1))).length;")
    # following one lands on its section: the URL names it and the section is scrolled to the top
    browser.find_element("css selector", "nav a[href='#table-rates']").click()
    assert _js(browser, "return location.hash;") == "#table-rates"
    top = _js(browser, "return document.getElementById('table-rates').getBoundingClientRect().top;")
    assert abs(top) < 50


def test_every_file_link_points_to_an_existing_file(report, browser):
    hrefs = _js(browser, "return Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))"
                         ".filter(h => !h.startsWith('#'));")
    assert hrefs and not [h for h in hrefs if not (report / h).is_file()]
    assert {Path(h).suffix for h in hrefs} >= {".csv", ".tex", ".pdf"}
    # each table section links its CSV and LaTeX, each figure section the PDF of its image
    sections = _js(browser, "return Array.from(document.querySelectorAll('section[id]')).map(s => ["
                            "s.querySelector('table') !== null, Array.from(s.querySelectorAll('img')).map("
                            "i => i.getAttribute('src')), Array.from(s.querySelectorAll('p.files a')).map("
                            "a => a.getAttribute('href'))]);")
    for has_table, images, files in sections:
        if has_table:
            assert any(f.endswith(".csv") for f in files) and any(f.endswith(".tex") for f in files), files
        for png in images:
            assert png[:-4] + ".pdf" in files, (png, files)


def _column(browser, slug, col):
    """The raw data-v values of one column of a section's table, in the order shown."""
    return _js(browser, "var t = document.querySelector('#' + arguments[0] + ' table');"
                        "var i = Array.from(t.tHead.rows[0].cells).findIndex(h => h.dataset.col === arguments[1]);"
                        "return Array.from(t.tBodies[0].rows).map(r => r.cells[i].dataset.v);", slug, col)


def _rows(browser, slug):
    return _js(browser, "return Array.from(document.querySelectorAll('#' + arguments[0] + ' tbody tr')).map("
                        "r => Array.from(r.cells).map(c => c.dataset.v).join('|'));", slug)


def _click_header(browser, slug, col):
    browser.find_element("css selector", f"#{slug} th[data-col='{col}']").click()


def _numbers(values):
    return [float(v) for v in values]  # data-v holds Python's repr of the float, or ±Infinity


@pytest.mark.parametrize("col", ["final_loss", "rate_slope", "t_sep_median"])
def test_clicking_a_header_sorts_numerically_then_reverses(report, browser, col):
    # final_loss spans 1e-41 … 1e269 (a text sort would interleave them), the rate slopes are
    # negative, and both the slope (too few points to fit) and t_sep (a setting that did not
    # separate) have missing cells, which go last in both directions.
    raw = pd.read_csv(report / "tables" / "rates.csv")[col]
    present, missing = [float(v) for v in raw.dropna()], int(raw.isna().sum())
    assert len(set(present)) > 3 and (missing > 0) == (col != "final_loss")
    before = sorted(_rows(browser, "table-rates"))
    _click_header(browser, "table-rates", col)
    shown = _column(browser, "table-rates", col)
    # the expected order is Python's sorted() on the raw CSV values of the column
    assert shown[len(present):] == [""] * missing, shown
    assert _numbers(shown[:len(present)]) == sorted(present)
    _click_header(browser, "table-rates", col)
    shown = _column(browser, "table-rates", col)
    assert shown[len(present):] == [""] * missing, shown
    assert _numbers(shown[:len(present)]) == sorted(present, reverse=True)
    assert sorted(_rows(browser, "table-rates")) == before  # whole rows moved, none lost or changed
    order = _js(browser, "return document.querySelector(\"#table-rates th[data-col='\" + arguments[0] + \"']\")"
                         ".getAttribute('aria-sort');", col)
    assert order == "descending"


def test_infinities_and_missing_values_sort_where_they_belong(tmp_path):
    # a table made here, so that ±∞ (the exponential loss overflows) and a missing value are
    # certain to be there: ∞ sorts as the largest number, the missing value last either way
    table = pd.DataFrame({"model": ["a", "b", "c", "d", "e", "f"],
                          "final_loss": [3.0, np.inf, np.nan, -np.inf, 1e-5, 20.0]})
    table.attrs["keys"] = ["model"]
    (tmp_path / "index.html").write_text(index.page(index.Header("t", "s", "ok"), [
        index.Section(slug="table-x", title="x", caption="x", table=table)]))
    with _chromium() as driver:
        driver.get((tmp_path / "index.html").as_uri())
        _click_header(driver, "table-x", "final_loss")
        assert _column(driver, "table-x", "model") == ["d", "e", "a", "f", "b", "c"]
        _click_header(driver, "table-x", "final_loss")
        assert _column(driver, "table-x", "model") == ["b", "f", "a", "e", "d", "c"]


def test_text_columns_sort_too(browser):
    _click_header(browser, "table-summary", "model")
    models = _column(browser, "table-summary", "model")
    assert models == sorted(models) and len(set(models)) == 2


def test_no_raw_markdown_outside_code(browser):
    # the visible text with <code>, <script> and <style> taken out: no Markdown or TeX source left
    text = _js(browser, "var b = document.body.cloneNode(true);"
                        "b.querySelectorAll('code, script, style').forEach(e => e.remove());"
                        "return b.textContent;")
    for mark in ("`", "**", "|:--", "--|", "](", "$"):
        assert mark not in text, (mark, text[max(0, text.find(mark) - 80):text.find(mark) + 80])
    assert "\\" not in text  # no TeX commands (from the figures' axis labels in headline captions)


def test_every_footnote_mark_in_a_table_is_explained_under_it(browser):
    marks = "ⁿᵈᶠˣˡᶻᵉᵗˢ"
    tables = _js(browser, "return Array.from(document.querySelectorAll('section[id]')).filter("
                          "s => s.querySelector('table')).map(s => [s.id, "
                          "Array.from(s.querySelectorAll('td')).map(c => c.textContent).join(' '), "
                          "Array.from(s.querySelectorAll('p.note')).map(p => p.textContent)]);")
    assert {"table-rates", "table-summary"} <= {slug for slug, *_ in tables}
    for slug, cells, notes in tables:
        explained = {n[0] for n in notes if n[0] in marks}
        assert {m for m in marks if m in cells} == explained, slug
    rates = dict((slug, notes) for slug, _, notes in tables)["table-rates"]
    assert any(n.startswith("All rows: ") for n in rates)  # dataset and algorithm are constant here


def _markdown_sections(md: str) -> list:
    return re.findall(r'<a id="([^"]+)"></a>\n\n#+ (.+)', md)


def test_html_says_what_the_markdown_says(report, browser):
    md = (report / "index.md").read_text()
    html_sections = _js(browser, "return Array.from(document.querySelectorAll('main section[id]')).map("
                                 "s => [s.id, s.querySelector('h2, h3').textContent]);")
    # the titles of this sweep carry no inline markup, so the Markdown title is the visible text
    assert [tuple(s) for s in html_sections] == _markdown_sections(md)
    toc_md = re.findall(r"\]\(#([^)]+)\)", md)
    toc_html = _js(browser, "return Array.from(document.querySelectorAll('nav a')).map(a => a.getAttribute('href').slice(1));")
    assert toc_md == toc_html
    md_links = {h for h in re.findall(r"(?<!!)\[[^\]]*\]\(([^)#][^)]*)\)", md)}
    html_links = set(_js(browser, "return Array.from(document.querySelectorAll('main a[href]')).map("
                                  "a => a.getAttribute('href')).filter(h => !h.startsWith('#'));"))
    assert md_links == html_links
    md_tables = len(re.findall(r"^\|[:-]", md, flags=re.M))
    assert md_tables == _js(browser, "return document.querySelectorAll('table').length;") > 0
    assert md.count("> **Note.**") == _js(browser, "return document.querySelectorAll('.notice').length;")
    md_prov = re.findall(r"^- ([^:\n]+): `", md.split('<a id="provenance"></a>')[1], flags=re.M)
    assert md_prov == _js(browser, "return Array.from(document.querySelectorAll('#provenance dt')).map(d => d.textContent);")
    assert "git_commit" in md_prov
