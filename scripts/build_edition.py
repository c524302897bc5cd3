"""Build the printed edition and check it: the book as one PDF and the exercise sheets.

    python scripts/build_edition.py            # build into _build/latex, copy to _build/edition
    python scripts/build_edition.py --check    # only check the PDFs already built

Jupyter Book's LaTeX builder writes ``book.tex`` and, through ``book/_ext/edition.py``, two
sheets for every page with exercises (``exercises-<page>.tex`` without solutions,
``solutions-<page>.tex`` with them); XeLaTeX (Debian's ``texlive-xetex``) typesets them with
latexmk, two at a time. Then the checks, each failing the run:

- the book has at least 3 pages per page of ``_toc.yml`` and at most 600 pages;
- every page title of ``_toc.yml`` is in the book's text (``pdftotext``);
- the book holds at least as many images as the notebooks have numbered figures;
- every solution is in the appendix *Solutions to the exercises*, none in the chapters;
- each sheet holds its page's exercises (as many as the source poses); the handout has no
  solution, the lecturer's sheet one per exercise;
- no LaTeX log reports an overfull box wider (or higher) than 5 pt, or an undefined reference.

The PDFs are copied to ``_build/edition/`` and, when the website has been built, to
``_build/html/edition/``, where the footer's link finds the book.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
LATEX = ROOT / "_build" / "latex"
EDITION = ROOT / "_build" / "edition"
SITE = ROOT / "_build" / "html"
BOOK = "book"
PDF_NAME = "structure-preserving-deep-learning.pdf"
"""The book's file name on the website (``_config.yml``'s footer links it)."""
LIMIT_PT = 5.0
EXERCISE = re.compile(r"^\s*`{3,}\{exercise\}", re.M)
SOLUTION_TITLE = "Solution to Exercise"
NUMBER = r"\d+(?:\.\d+)*"
"""An exercise's number as the book prints it: "3.8.1", or "2" in an appendix."""
SOLUTIONS_HEADING = "SOLUTIONS TO THE EXERCISES"


def toc_pages() -> list[pathlib.Path]:
    """The source of every page of ``_toc.yml``, in its order (the root first)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    names = [toc["root"]]

    def walk(entries):
        for entry in entries:
            if "file" in entry:
                names.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    found = []
    for name in names:
        path = next((ROOT / (name + ext) for ext in (".ipynb", ".md")
                     if (ROOT / (name + ext)).exists()), None)
        if path is None:
            raise SystemExit(f"_toc.yml lists {name}, which does not exist")
        found.append(path)
    return found


def markdown(path: pathlib.Path) -> str:
    """The markdown of a page (a notebook's markdown cells)."""
    if path.suffix == ".md":
        return path.read_text()
    cells = json.loads(path.read_text())["cells"]
    return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def title(path: pathlib.Path) -> str:
    heading = re.search(r"^# (.+)$", markdown(path), re.M)
    return heading.group(1).strip() if heading else ""


def figures(path: pathlib.Path) -> int:
    """Numbered figures of a notebook (cells with ``mystnb.figure`` metadata)."""
    if path.suffix != ".ipynb":
        return 0
    cells = json.loads(path.read_text())["cells"]
    return sum(1 for c in cells if c.get("metadata", {}).get("mystnb", {}).get("figure"))


def plain(text: str) -> str:
    """Text for comparing: typographic quotes and dashes folded, whitespace collapsed,
    inline markup (``$``, backticks, ``*``) dropped."""
    text = text.translate(str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-",
                                         "—": "-", "‐": "-", "\u00ad": ""}))
    text = re.sub(r"[`*$]", "", text)
    return re.sub(r"\s+", " ", text).strip()


def pdftext(pdf: pathlib.Path) -> str:
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout


def page_count(pdf: pathlib.Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True,
                          text=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


def image_count(pdf: pathlib.Path) -> int:
    listing = subprocess.run(["pdfimages", "-list", str(pdf)], check=True,
                             capture_output=True, text=True).stdout.splitlines()
    return sum(1 for line in listing[2:] if " image " in line)


def bad_boxes(log: pathlib.Path) -> list[str]:
    """Overfull boxes beyond the limit, and undefined references, from a LaTeX log."""
    text = log.read_text(errors="replace")
    found = [f"{log.name}: {m.group(0)}" for m in re.finditer(
        r"Overfull \\[hv]box \(([\d.]+)pt too (?:wide|high)\)[^\n]*", text)
        if float(m.group(1)) > LIMIT_PT]
    found += [f"{log.name}: {m.group(0)}" for m in re.finditer(
        r"LaTeX Warning: (?:Hyper )?[Rr]eference `[^']+' on page \d+\s+undefined", text)]
    return found


def build() -> dict[str, float]:
    """Sphinx's LaTeX builder, then latexmk on every .tex, two at a time."""
    timings = {}
    start = time.perf_counter()
    shutil.rmtree(LATEX, ignore_errors=True)  # no stale sheet, log or support file
    jupyter_book = pathlib.Path(sys.executable).with_name("jupyter-book")
    subprocess.run([str(jupyter_book), "build", str(ROOT), "--builder", "latex", "-W", "-n",
                    "--keep-going"], check=True, cwd=ROOT)
    timings["LaTeX sources (Sphinx)"] = time.perf_counter() - start
    start = time.perf_counter()
    env = {**os.environ, "LATEXOPTS": "-interaction=nonstopmode -halt-on-error"}

    def typeset(tex: pathlib.Path):
        return tex, subprocess.run(["latexmk", "-pdf", "-dvi-", "-ps-", tex.name], cwd=LATEX,
                                   env=env, capture_output=True, text=True)

    sources = sorted(LATEX.glob("*.tex"), key=lambda p: p.stem != BOOK)  # the book first
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for tex, run in pool.map(typeset, sources):
            if run.returncode:
                print(run.stdout[-3000:], run.stderr[-3000:])
                log = tex.with_suffix(".log")
                if log.exists():
                    errors = re.findall(r"^! .*(?:\n.*){0,3}", log.read_text(errors="replace"),
                                        re.M)
                    print("\n".join(errors[:5]))
                raise SystemExit(f"latexmk failed on {tex.name}")
    timings["PDFs (XeLaTeX via latexmk)"] = time.perf_counter() - start
    return timings


def check() -> list[str]:
    """Every check of the module docstring; returns the failures."""
    failures = []
    pages = toc_pages()
    book_pdf = LATEX / f"{BOOK}.pdf"
    text = plain(pdftext(book_pdf))
    count = page_count(book_pdf)
    print(f"{book_pdf.name}: {count} pages")
    if not 3 * len(pages) <= count <= 600:
        failures.append(f"{book_pdf.name} has {count} pages for {len(pages)} pages of _toc.yml")
    for page in pages[1:]:
        name = plain(title(page))
        if not name or name not in text:
            failures.append(f"{book_pdf.name} lacks the title of {page.name}: {name!r}")
    wanted = sum(figures(page) for page in pages)
    images = image_count(book_pdf)
    print(f"{book_pdf.name}: {images} images for {wanted} numbered figures")
    if images < wanted:
        failures.append(f"{book_pdf.name} has {images} images for {wanted} numbered figures")
    heading = text.find(SOLUTIONS_HEADING)
    posed = sum(len(EXERCISE.findall(markdown(page))) for page in pages)
    if heading < 0:
        failures.append(f"{book_pdf.name} has no appendix {SOLUTIONS_HEADING!r}")
    else:
        inline = text[:heading].count(SOLUTION_TITLE)
        gathered = text[heading:].count(SOLUTION_TITLE)
        print(f"{book_pdf.name}: {gathered} solutions in the appendix, {inline} in chapters")
        if inline or gathered != posed:
            failures.append(f"{book_pdf.name}: {inline} solutions in the chapters and "
                            f"{gathered} in the appendix for {posed} exercises")
    sheets = 0
    for page in pages:
        exercises = len(EXERCISE.findall(markdown(page)))
        if not exercises:
            continue
        for kind, solutions in (("exercises", 0), ("solutions", exercises)):
            pdf = LATEX / f"{kind}-{page.stem}.pdf"
            if not pdf.exists():
                failures.append(f"no {pdf.name} for the {exercises} exercises of {page.name}")
                continue
            sheets += 1
            sheet = plain(pdftext(pdf))
            shown = set(re.findall(rf"(?<!Solution to )Exercise ({NUMBER})", sheet))
            given = set(re.findall(rf"{SOLUTION_TITLE} ({NUMBER})", sheet))
            if len(shown) < exercises or len(given) != solutions or (
                    plain(title(page)) not in sheet):
                failures.append(f"{pdf.name}: exercises {sorted(shown)} and solutions "
                                f"{sorted(given)} for the {exercises} exercises of "
                                f"{page.name} (and its title)")
    print(f"{sheets} exercise sheets")
    for log in sorted(LATEX.glob("*.log")):
        if log.with_suffix(".tex").exists():
            failures += bad_boxes(log)
    return failures


def publish() -> None:
    """Copy the PDFs where the website and a reader find them."""
    targets = [EDITION] + ([SITE / "edition"] if SITE.exists() else [])
    for target in targets:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(LATEX / f"{BOOK}.pdf", target / PDF_NAME)
        sheets = sorted(p for p in LATEX.glob("*.pdf")
                        if p.stem.startswith(("exercises-", "solutions-")))
        for pdf in sheets:
            shutil.copy(pdf, target / pdf.name)
        items = "".join(f'<li><a href="{p.name}">{p.stem}</a></li>' for p in sheets)
        (target / "index.html").write_text(
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            'content="width=device-width, initial-scale=1"><link rel="icon" '
            'href="../_static/favicon.svg"><title>The printed edition</title></head><body>'
            '<h1>The printed edition</h1><p><a href="'
            f'{PDF_NAME}">The book as one PDF</a>. Exercise sheets, one per chapter, without '
            f'solutions (exercises-) and with them (solutions-):</p><ul>{items}</ul></body>'
            '</html>\n')
    print("PDFs in", ", ".join(str(t.relative_to(ROOT)) for t in targets))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="check the PDFs already built")
    args = parser.parse_args()
    timings = {} if args.check else build()
    start = time.perf_counter()
    failures = check()
    timings["checks"] = time.perf_counter() - start
    for step, seconds in timings.items():
        print(f"{step}: {seconds:.0f} s")
    if failures:
        print("\n".join(["FAILED:", *failures]))
        return 1
    publish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
