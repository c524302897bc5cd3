"""The book's notebooks: every one is in the table of contents, and every one is committed
executed (nbval then re-executes them and compares the outputs; it compares nothing for a
cell that has no stored outputs, so an unexecuted notebook must fail here)."""
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

import lib

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOC = (ROOT / "_toc.yml").read_text()
TOC_FILES = re.findall(r"file:\s*([\w./-]+)", TOC)
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
REPOSITORY = re.search(r"^repository:\s*\n\s*url:\s*(\S+)", (ROOT / "_config.yml").read_text(),
                       re.M).group(1)
SETUP_CELL = f"""\
# Set-up. On Colab, or wherever the book's library is missing, install it first.
import importlib.metadata, subprocess, sys
BOOK, VERSION = "structure-preserving-deep-learning", "{lib.__version__}"
URL = "{REPOSITORY}"
try:
    installed = importlib.metadata.version(BOOK)
except importlib.metadata.PackageNotFoundError:
    installed = None
if installed != VERSION:
    source = f"{{BOOK}} @ git+{{URL}}@v{{VERSION}}"
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    if subprocess.run([*pip, source], capture_output=True).returncode:
        raise SystemExit(
            f"pip could not install version {{VERSION}} of the book's library from "
            f"{{URL}} (tag v{{VERSION}} not published, or no network): run `%pip "
            f'install "{{BOOK}} @ git+{{URL}}@main"` for the main branch, or `pip '
            "install -e .` in a local clone, then run this cell again.")
import torch
import matplotlib.pyplot as plt
import lib
if getattr(lib, "__version__", None) != VERSION:  # some other module called lib
    raise ImportError(f"{{lib.__file__}} is not the book's library {{VERSION}}")
device = lib.setup_notebook(seed=0)  # seeds, determinism, threads, style; cuda if any"""
"""The first code cell of every chapter: the one place where the book's version (lib.__version__)
and its repository (_config.yml) reach a reader on Colab."""


def toc_notebooks():
    return [ROOT / (f + ".ipynb") for f in TOC_FILES if (ROOT / (f + ".ipynb")).exists()]


def test_every_toc_entry_exists():
    missing = [f for f in TOC_FILES
               if not any((ROOT / (f + ext)).exists() for ext in (".ipynb", ".md"))]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_in_toc(path):
    assert str(path.relative_to(ROOT).with_suffix("")) in TOC_FILES, f"{path.name} is not in _toc.yml"


@pytest.mark.parametrize("path", toc_notebooks(), ids=lambda p: p.name)
def test_notebook_committed_with_outputs(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    assert code, f"{path.name} has no code cells"
    unrun = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    assert not unrun, f"{path.name}: code cells {unrun} were committed without being executed"
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name} was not executed top to bottom in one fresh kernel (counts {counts})")
    errors = [i for i, c in enumerate(code) for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, f"{path.name}: code cells {errors} have error outputs"
    assert any(c.get("outputs") for c in code), f"{path.name} has no outputs at all"
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3", (
        f"{path.name} must use the python3 kernel")


@pytest.mark.parametrize("path", toc_notebooks(), ids=lambda p: p.name)
def test_notebook_opens_with_the_setup_cell(path):
    cells = json.loads(path.read_text())["cells"]
    first = next(c for c in cells if c["cell_type"] == "code")
    assert "".join(first["source"]) == SETUP_CELL, (
        f"{path.name}: the first code cell must be tests/test_notebooks.py's SETUP_CELL")
    assert "hide-input" in first["metadata"].get("tags", []), f"{path.name}: tag it hide-input"


@pytest.mark.parametrize("path", toc_notebooks(), ids=lambda p: p.name)
def test_code_lines_fit_the_column(path):
    cells = json.loads(path.read_text())["cells"]
    long = [(i, line) for i, c in enumerate(cells) if c["cell_type"] == "code"
            for line in "".join(c["source"]).splitlines() if len(line) > 88]
    assert not long, f"{path.name}: code lines longer than 88 characters: {long[:3]}"


def test_setup_cell_says_what_to_do_when_the_install_fails(tmp_path):
    """On Colab before the tag is published, pip fails: the cell stops with one sentence that
    names the main branch and a local clone, not a CalledProcessError traceback."""
    fake_pip = tmp_path / "pip"
    fake_pip.mkdir()
    (fake_pip / "__init__.py").write_text("")
    (fake_pip / "__main__.py").write_text(
        "import sys\nprint('ERROR: no tag v99.0.0', file=sys.stderr)\nsys.exit(1)\n")
    unpublished = SETUP_CELL.replace(f'"{lib.__version__}"', '"99.0.0"')
    assert unpublished != SETUP_CELL
    shell = ("from IPython.core.interactiveshell import InteractiveShell\n"
             "import sys\n"
             "result = InteractiveShell.instance().run_cell(sys.stdin.read())\n"
             "print('ERROR TYPE', type(result.error_in_exec).__name__)\n")
    run = subprocess.run([sys.executable, "-c", shell], input=unpublished, text=True,
                         capture_output=True, timeout=120, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(tmp_path)})
    output = re.sub(r"\x1b\[[0-9;]*m", "", run.stdout + run.stderr)  # IPython's colours
    assert "ERROR TYPE SystemExit" in output, output
    assert "CalledProcessError" not in output and "Traceback" not in output, output
    message = re.search(r"SystemExit: (.+)", output).group(1)
    assert "pip could not install version 99.0.0" in message
    assert "@main" in message and "local clone" in message
    prose = re.sub(r"`[^`]*`", "", message)
    assert ". " not in prose and prose.endswith("again."), f"not one sentence: {message}"
