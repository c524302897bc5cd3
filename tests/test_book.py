"""The built website (``jupyter-book build .``, the README's first command, which CI runs before
the tests): every chapter of the table of contents is a page, and every figure a notebook
stores is on its page. Skipped when the book has not been built in this checkout."""
import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
TOC_FILES = re.findall(r"file:\s*([\w./-]+)", (ROOT / "_toc.yml").read_text())

pytestmark = pytest.mark.skipif(not (HTML / "index.html").exists(),
                                reason="the book is not built here (run the README's build command)")


@pytest.mark.parametrize("entry", TOC_FILES)
def test_every_chapter_is_rendered_with_its_figures(entry):
    page = HTML / (entry + ".html")
    assert page.exists(), f"{entry} has no page in _build/html"
    notebook = ROOT / (entry + ".ipynb")
    if notebook.exists():
        cells = json.loads(notebook.read_text())["cells"]
        figures = sum("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))
        html = page.read_text()
        shown = len(re.findall(r'<img[^>]+src="[^"]*_images/[0-9a-f]+\.png"', html))
        assert shown >= figures, f"{entry}: {figures} figures in the notebook, {shown} on the page"
