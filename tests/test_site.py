"""The website as a reader meets it, in a real browser: every page of the built site
(``_build/html``, the README's first command) opened in headless Chromium, offline (served from
127.0.0.1; every other host fails to resolve), at a 1280 px and at a 390 px wide window.

On every page, at both widths:
  - the mathematics is typeset: no raw TeX or MyST role left in the text, no MathJax error;
  - every image is decoded, and its alt text is a description, not a file name;
  - the console is clean (no error, no uncaught exception, no failed request, e.g. a missing
    favicon), and no request leaves the site;
  - no display equation is cut off (one too wide scrolls inside its own box), and the page
    itself does not scroll sideways;
  - a favicon is declared.
At 1280 px also: no display equation wider than the text column, no figure wider than the
column or shrunk so much that its labels become unreadable, and no code cell or output that
scrolls sideways (with every dropdown opened: solutions and hidden set-up cells too).  Chapter pages have their launch buttons (Colab, JupyterHub); the
bibliography's labels read like the author–year citations.  Screenshots go to
``_build/screenshots/``: every page whole at 1280 px, its first screen at 390 px.

Skipped when the site is not built or Chromium is missing, unless ``BOOK_REQUIRE_BROWSER=1``
(``.ci/run`` sets it), which turns those skips into failures.  ``BOOK_SITE_HTML`` points the test
at another copy of the site (e.g. one with defects planted in it).
"""
import functools
import http.server
import os
import pathlib
import re
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
HTML = pathlib.Path(os.environ.get("BOOK_SITE_HTML", ROOT / "_build" / "html"))
SCREENSHOTS = HTML.parent / "screenshots"
TOC_FILES = re.findall(r"file:\s*([\w./-]+)", (ROOT / "_toc.yml").read_text())
CHAPTERS = {f + ".html" for f in TOC_FILES if (ROOT / (f + ".ipynb")).exists()}
REQUIRED = os.environ.get("BOOK_REQUIRE_BROWSER") == "1"
WIDTHS = (1280, 390)
MAX_SHRINK = 1.25
"""A figure shown at less than 1/MAX_SHRINK of its natural size has unreadable labels (the
book's style draws figures 6.8 in x 110 dpi = 748 px wide for the 676 px column)."""


def pages():
    if not HTML.is_dir():
        return []
    found = (p.relative_to(HTML) for p in HTML.rglob("*.html"))
    skip = ("_static", "_sources", "_images")
    return sorted(str(p) for p in found  # index.html at the top only redirects to the intro
                  if p.parts[0] not in skip and str(p) != "index.html")


def unavailable(reason):
    if REQUIRED:
        pytest.fail(f"{reason} (BOOK_REQUIRE_BROWSER=1: CI must run the browser test)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def site():
    if not (HTML / "index.html").exists():
        unavailable("the book is not built here (run the README's build command)")
    import chromium
    binary = chromium.find_binary()
    if binary is None:
        unavailable("Chromium is not installed (apt-get install chromium)")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(HTML)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    browser = chromium.Browser(binary)
    try:
        yield browser, f"http://127.0.0.1:{server.server_port}/"
    finally:
        browser.close()
        server.shutdown()
        server.server_close()


EXPAND = """(async () => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
})()"""
"""Open every dropdown (solutions, hidden inputs): what a reader can expand must fit too."""

INSPECT = r"""(() => {
  const article = document.querySelector('article.bd-article') || document.querySelector('main')
                  || document.body;
  const cs = getComputedStyle(article), box = article.getBoundingClientRect();
  const left = box.left + parseFloat(cs.paddingLeft);
  const right = box.right - parseFloat(cs.paddingRight);
  const r = {column: right - left, columnRight: right,
             pageOverflow: document.documentElement.scrollWidth
                           - document.documentElement.clientWidth};
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight, .MathJax';
  const raw = new RegExp(String.raw`\\\(|\\\[|\$\$|\\begin\{|\\frac\b|\\mathbb|\\mathrm|`
                         + '\\{(cite(:[a-z]+)?|numref|ref|eq|math)\\}`');
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  r.rawTex = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode())
    if (!n.parentElement.closest(skip) && raw.test(n.textContent))
      r.rawTex.push(n.textContent.trim().slice(0, 80));
  r.mathErrors = [...document.querySelectorAll('mjx-merror, [data-mjx-error]')].map(
      e => e.getAttribute('data-mjx-error') || e.textContent.slice(0, 80));
  r.untypeset = [...article.querySelectorAll('span.math, div.math')]
      .filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80));
  const label = e => (e.getAttribute('aria-label') || e.textContent || '').slice(0, 70);
  r.equations = [...article.querySelectorAll('mjx-container[display="true"]')].map(e => {
    const math = e.querySelector('mjx-math');
    const width = math ? math.getBoundingClientRect().width : e.scrollWidth;
    let overflow = 'visible';
    for (let a = e; a && a !== document.documentElement; a = a.parentElement) {
      const o = getComputedStyle(a).overflowX;
      if (o !== 'visible') { overflow = o; break; }
    }
    return {width, box: e.clientWidth, overflow, tex: label(e)};
  });
  r.images = [...document.images].filter(img => img.offsetParent !== null || article.contains(img))
    .map(img => {
      const b = img.getBoundingClientRect();
      return {src: img.getAttribute('src'), alt: img.getAttribute('alt'),
              decoded: img.complete && img.naturalWidth > 0, natural: img.naturalWidth,
              width: b.width, right: b.right, inArticle: article.contains(img),
              visible: img.offsetParent !== null};
  });
  r.pres = [...article.querySelectorAll('pre')]
    .filter(p => p.offsetParent !== null && p.scrollWidth > p.clientWidth + 1)
    .map(p => ({scroll: p.scrollWidth, client: p.clientWidth,
                line: p.textContent.split('\n').reduce((a, b) => a.length >= b.length ? a : b)
                        .slice(0, 100)}));
  r.colab = [...document.querySelectorAll('a[href^="https://colab.research.google.com/github/"]')]
    .map(a => a.href);
  r.launchMenu = !!document.querySelector('.dropdown-launch-buttons');
  r.favicon = (document.querySelector('link[rel~="icon"]') || {}).href || null;
  r.citationLabels = [...document.querySelectorAll('div.citation span.label')]
    .map(e => e.textContent);
  r.thebeConfigs = [...document.scripts].filter(s => /\bTHEBE_JS_URL\s*=/.test(s.textContent))
    .length;
  return r;
})()"""


def problems_on(report, page, width, browser, base):
    """Everything wrong with one page at one width, as readable lines."""
    found = [f"console: {e}" for e in browser.errors()]
    found += [f"off-site request: {u}" for u in browser.requests()
              if not u.startswith((base, "data:", "blob:", "about:"))]
    found += [f"raw TeX or MyST in the text: {t!r}" for t in report["rawTex"]]
    found += [f"MathJax error: {t!r}" for t in report["mathErrors"]]
    found += [f"formula not typeset: {t!r}" for t in report["untypeset"]]
    if report["thebeConfigs"] > 1:
        found.append(f"the thebe configuration script is on the page "
                     f"{report['thebeConfigs']} times")
    if not report["favicon"]:
        found.append("no favicon declared")
    if report["pageOverflow"] > 1:
        found.append(f"the page scrolls sideways by {report['pageOverflow']} px")
    for e in report["equations"]:
        if e["width"] > e["box"] + 1 and e["overflow"] not in ("auto", "scroll"):
            found.append(f"display equation cut off ({e['width']:.0f} px in a "
                         f"{e['box']} px box, overflow {e['overflow']}): {e['tex']!r}")
    for img in report["images"]:
        if not img["decoded"]:
            found.append(f"image not decoded: {img['src']}")
        alt = (img["alt"] or "").strip()
        if img["inArticle"] and (not alt or re.search(r"[/\\]|\.(png|jpe?g|svg|gif)$", alt)):
            found.append(f"image alt text is not a description: {alt!r} ({img['src']})")
    if width == 1280:
        column = report["column"]
        for e in report["equations"]:
            if e["width"] > column + 1:
                found.append(f"display equation wider than the {column:.0f} px column "
                             f"({e['width']:.0f} px; break it with aligned): {e['tex']!r}")
        for img in report["images"]:
            if not (img["inArticle"] and img["visible"] and img["decoded"]):
                continue
            if img["right"] > report["columnRight"] + 1:
                found.append(f"figure wider than the column: {img['src']}")
            if img["natural"] > MAX_SHRINK * img["width"] + 1:
                found.append(f"figure {img['src']} is {img['natural']} px wide, shown at "
                             f"{img['width']:.0f} px: its labels are unreadable (draw it with "
                             f"lib.plotting.style)")
        for p in report["pres"]:
            found.append(f"code or output scrolls sideways ({p['scroll']} px in "
                         f"{p['client']} px): {p['line']!r}")
    if page in CHAPTERS:
        if not report["colab"] or not report["launchMenu"]:
            found.append("no launch buttons (Colab) on a chapter page")
    labels = report["citationLabels"]
    wrong = [t for t in labels if not re.fullmatch(r"\[[^\]\d]+, (\d{4}[a-z]?|n\.d\.)\]", t)]
    if wrong:
        found.append(f"bibliography labels are not author-year: {wrong[:4]}")
    return shorten(found)


def shorten(problems, most=6):
    """Each kind of problem at most ``most`` times (repeats dropped), then a count."""
    kept, counts = [], {}
    for p in dict.fromkeys(problems):
        kind = p.split(":")[0].split("(")[0]
        counts[kind] = counts.get(kind, 0) + 1
        if counts[kind] <= most:
            kept.append(p)
    kept += [f"... and {n - most} more of: {kind}" for kind, n in counts.items() if n > most]
    return kept


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", pages() or ["(no site built)"])
def test_page_reads_well(site, page, width):
    browser, base = site
    browser.viewport(width)
    browser.open(base + page)
    browser.evaluate(EXPAND)
    report = browser.evaluate(INSPECT)
    # the whole page at 1280 px, the first screen at 390 px (a full capture costs seconds)
    browser.screenshot(SCREENSHOTS / str(width) / (page.replace("/", "_")[:-5] + ".png"),
                       max_height=16000 if width == 1280 else 900)
    problems = problems_on(report, page, width, browser, base)
    assert not problems, f"{page} at {width} px:\n  " + "\n  ".join(problems)


def test_every_chapter_has_a_page():
    if not HTML.is_dir():
        unavailable("the book is not built here (run the README's build command)")
    missing = sorted(c for c in CHAPTERS if not (HTML / c).exists())
    assert not missing, f"chapters without a page: {missing}"
