"""One style for every figure of the book, sized for its text column.

The website's text column is about 676 px wide at a 1280 px window, and a figure is drawn
:data:`COLUMN_WIDTH` inches wide, so one inch of figure is about 100 px on the page and a
``FONT_SIZE``-point label about as tall as the body text.  Figures have at most
:data:`MAX_COLUMNS` panels per row (:func:`panels` wraps more into further rows), so that no
panel's labels shrink below that size.
"""
from __future__ import annotations

import math

import matplotlib as mpl
import matplotlib.pyplot as plt

__all__ = ["COLUMN_WIDTH", "FONT_SIZE", "MAX_COLUMNS", "RC", "use", "panels"]

COLUMN_WIDTH = 6.8
"""The width of every figure in inches: the book's text column."""

FONT_SIZE = 11
"""Axis labels and titles in points; ticks and legends are one point smaller."""

MAX_COLUMNS = 3
"""The most panels in one row of a figure."""

RC = {
    "figure.figsize": (COLUMN_WIDTH, 3.2),
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "figure.facecolor": "white",
    "figure.constrained_layout.use": True,
    "font.size": FONT_SIZE,
    "axes.titlesize": FONT_SIZE,
    "axes.labelsize": FONT_SIZE,
    "xtick.labelsize": FONT_SIZE - 1,
    "ytick.labelsize": FONT_SIZE - 1,
    "legend.fontsize": FONT_SIZE - 1,
    "legend.frameon": False,
    "axes.grid": False,
    "lines.linewidth": 1.6,
    "image.cmap": "viridis",
}
"""The matplotlib settings of the book (applied by :func:`use`)."""


def use() -> None:
    """Apply :data:`RC` to matplotlib (``lib.setup_notebook`` calls it)."""
    mpl.rcParams.update(RC)


def panels(count: int, *, columns: int | None = None, height: float = 2.5,
           sharex: bool = False, sharey: bool = False, squeeze_last: bool = True):
    """A column-wide figure with ``count`` panels, at most :data:`MAX_COLUMNS` (or ``columns``)
    per row, each row ``height`` inches tall; returns ``(fig, axes)`` with ``axes`` a flat list of
    the ``count`` panels (unused cells of the last row are removed)."""
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    columns = min(count, MAX_COLUMNS if columns is None else columns)
    if not 1 <= columns <= MAX_COLUMNS:
        raise ValueError(f"columns must lie in 1..{MAX_COLUMNS}, got {columns!r}")
    rows = math.ceil(count / columns)
    fig, grid = plt.subplots(rows, columns, figsize=(COLUMN_WIDTH, height * rows),
                             sharex=sharex, sharey=sharey, squeeze=False)
    axes = list(grid.flat)
    if squeeze_last:
        for ax in axes[count:]:
            ax.remove()
    return fig, axes[:count]
