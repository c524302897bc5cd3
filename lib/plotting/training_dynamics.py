"""Figures of chapter 7 (training as dynamics): objective curves of optimisers, with the
median and range over seeds where there are several.  These functions draw; they never train."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from . import style

__all__ = ["curves", "curves_figure", "loss_and_time"]


def _as_runs(values) -> torch.Tensor:
    """``[S, N]`` runs from one sequence or from several of the same length."""
    t = torch.as_tensor(values, dtype=torch.float64)
    return t.unsqueeze(0) if t.dim() == 1 else t


def curves(ax, series: Mapping[str, object], x=None, *, xlabel: str = "iteration $k$",
           ylabel: str = "objective", title: str | None = None, logx: bool = False,
           logy: bool = True, styles: Mapping[str, str] | None = None) -> None:
    """Draw each named series on ``ax``: one run as a line, several runs ``[S, N]`` as their
    median with the range shaded.  ``x`` is shared (default ``0..N-1``) or, as a mapping, one
    per series (each ``[N]`` or ``[S, N]``, the median of the runs is used)."""
    for i, (label, values) in enumerate(series.items()):
        runs = _as_runs(values)
        xs = x.get(label) if isinstance(x, Mapping) else x
        xs = torch.arange(runs.shape[1], dtype=torch.float64) if xs is None else _as_runs(xs)
        xs = xs.median(0).values if xs.dim() == 2 else xs
        median = runs.median(0).values
        line = (styles or {}).get(label, "-")
        ax.plot(xs, median, line, color=f"C{i}", label=label)
        if runs.shape[0] > 1:
            ax.fill_between(xs, runs.min(0).values, runs.max(0).values, color=f"C{i}",
                            alpha=0.2, linewidth=0)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.legend()


def curves_figure(panels: Sequence[Mapping], height: float = 2.8):
    """A figure of :func:`curves` panels, one per mapping of its keyword arguments (``series``
    required).  Returns the figure."""
    if not panels:
        raise ValueError("panels must name at least one panel")
    fig, axes = style.panels(len(panels), height=height)
    for ax, panel in zip(axes, panels):
        curves(ax, **panel)
    return fig


def loss_and_time(losses: Mapping[str, object], seconds: Mapping[str, Sequence[float]],
                  target: float | None = None, height: float = 3.0):
    """Two panels: the objective before iteration ``k = 1..N`` against ``k``, and against the
    wall-clock seconds (each run's iterations spread evenly over its measured time);
    ``target`` is drawn as a dotted line.  ``losses[name]`` is ``[S, N]``, ``seconds[name]`` the ``S`` run times."""
    times, counts = {}, {}
    for name, values in losses.items():
        runs = _as_runs(values)
        counts[name] = torch.arange(1, runs.shape[1] + 1, dtype=torch.float64)
        per_iteration = torch.as_tensor(seconds[name], dtype=torch.float64) / runs.shape[1]
        times[name] = per_iteration[:, None] * counts[name]
    fig = curves_figure([dict(series=losses, x=counts, logx=True, xlabel="iteration"),
                         dict(series=losses, x=times, logx=True, xlabel="seconds")],
                        height=height)
    for ax in fig.axes:
        if target is not None:
            ax.axhline(target, color="0.4", linestyle=":", linewidth=1)
        if ax is not fig.axes[0]:
            ax.get_legend().remove()
    return fig
