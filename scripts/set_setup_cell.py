"""Make the first code cell of every notebook in ``_toc.yml`` the book's set-up cell.

    python scripts/set_setup_cell.py          # rewrite the cells that differ
    python scripts/set_setup_cell.py --check  # only list them; exit status 1 if any

The set-up cell is ``SETUP_CELL`` of ``tests/test_notebooks.py`` (the version from
``lib.__version__``, the repository from ``_config.yml``), which the tests require in every
chapter. Only the cell's source changes: its outputs, execution count, metadata and every other
cell stay as they are, so after a new version or a changed set-up cell the notebooks need not be
executed again (the cell's output does not depend on its source beyond what it prints).
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
from test_notebooks import SETUP_CELL, toc_notebooks  # noqa: E402


def stale(path: pathlib.Path) -> nbformat.NotebookNode | None:
    """The notebook with its set-up cell replaced, or None when it already has the cell."""
    nb = nbformat.read(path, as_version=4)
    first = next((c for c in nb.cells if c.cell_type == "code"), None)
    if first is None:
        raise SystemExit(f"{path.name} has no code cell")
    if first.source == SETUP_CELL:
        return None
    first.source = SETUP_CELL
    return nb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list, do not rewrite")
    args = parser.parse_args()
    changed = []
    for path in toc_notebooks():
        nb = stale(path)
        if nb is None:
            continue
        changed.append(path.relative_to(ROOT))
        if not args.check:
            nbformat.write(nb, path)
    verb = "differ" if args.check else "rewritten"
    print(f"{len(changed)} set-up cells {verb}" + "".join(f"\n  {p}" for p in changed))
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
