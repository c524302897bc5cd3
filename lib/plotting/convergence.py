"""Log-log convergence figures: errors against the step size with fitted slopes."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter

from ..deep_limit import observed_order


def error_vs_step(steps: Sequence[float], errors: Mapping[str, Sequence[float]],
                  ylabel: str = "error", title: str | None = None, ax=None):
    """Plot each named error sequence against the step sizes ``h`` on log-log axes; the legend
    gives the slope fitted by :func:`lib.deep_limit.observed_order`.  Returns the figure."""
    fig, ax = (plt.subplots(figsize=(5.2, 3.6)) if ax is None else (ax.figure, ax))
    for i, (label, errs) in enumerate(errors.items()):
        slope = observed_order(steps, errs)
        ax.loglog(steps, errs, "o-", color=f"C{i}", label=f"{label} (slope {slope:.2f})")
    ax.set(xlabel="step size $h$", ylabel=ylabel, title=title)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    return fig
