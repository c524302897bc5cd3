"""Figures for chapter 8: accuracy under attack and certified accuracy against the radius,
the Lipschitz bound and its estimate against depth, accuracies along a sweep of a setting,
and the certified radius of each point against the radius at which an attack breaks it.

Outcomes over seeds are drawn as the median (line) and the range (band) of the per-seed
values, given as nested lists or tensors whose last axis is the seed."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from .style import panels

__all__ = ["accuracy_vs_radius", "lipschitz_vs_depth", "accuracy_sweep",
           "certified_vs_attacked"]


def _spread(values) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lower median, minimum and maximum over the last axis (the seeds)."""
    v = torch.as_tensor(values, dtype=torch.float64).sort(-1).values
    return v[..., (v.shape[-1] - 1) // 2], v[..., 0], v[..., -1]


def _band(ax, x, values, **style) -> None:
    median, low, high = _spread(values)
    ax.plot(x, median, **style)
    ax.fill_between(x, low, high, color=style.get("color"), alpha=0.2, lw=0)


def accuracy_vs_radius(results: Mapping[str, Mapping[str, Sequence]], radii: Sequence[float]):
    """One panel: for each network (``results[name]`` with ``"clean"`` ``[S]``, ``"attacked"``
    and ``"certified"`` ``[R][S]``), the accuracy under attack (solid) and the certified
    accuracy (dashed) against the radius, starting from the clean accuracy at 0."""
    fig, (ax,) = panels(1, height=3.0)
    x = [0.0, *radii]
    for i, (name, r) in enumerate(results.items()):
        clean = torch.as_tensor(r["clean"], dtype=torch.float64)[None]
        for key, ls in (("attacked", "-"), ("certified", "--")):
            values = torch.cat([clean, torch.as_tensor(r[key], dtype=torch.float64)])
            _band(ax, x, values, color=f"C{i}", ls=ls, marker="o", ms=3,
                  label=f"{name}, {'under PGD' if key == 'attacked' else 'certified'}")
    ax.set_xlabel(r"radius $\varepsilon$ ($\ell_2$, pixels in [0, 1])")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.legend()
    return fig


def lipschitz_vs_depth(depths: Sequence[int], bounds: Mapping[str, Sequence],
                       estimates: Mapping[str, Sequence]):
    """One panel, log scale: per network the Lipschitz bound (solid) and the estimate found
    by gradient ascent (dotted) against the depth ``K`` (each ``[D][S]``)."""
    fig, (ax,) = panels(1, height=3.0)
    for i, name in enumerate(bounds):
        _band(ax, depths, bounds[name], color=f"C{i}", marker="o", ms=3, label=f"{name}, bound")
        _band(ax, depths, estimates[name], color=f"C{i}", ls=":", marker="s", ms=3,
              label=f"{name}, estimate")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("depth $K$")
    ax.set_ylabel("Lipschitz constant of the logits")
    ax.legend()
    return fig


def accuracy_sweep(values: Sequence[float], curves: Mapping[str, Sequence], xlabel: str,
                   mark: float | None = None):
    """One panel: each curve ``[V][S]`` (e.g. clean, attacked and certified accuracy) against
    the swept setting ``values`` (e.g. the step limit ``h ||A||^2 <= c``, or the loss's
    margin), with a dashed line at ``mark``."""
    fig, (ax,) = panels(1, height=3.0)
    for i, (name, v) in enumerate(curves.items()):
        _band(ax, values, v, color=f"C{i}", marker="o", ms=3, label=name)
    if mark is not None:
        ax.axvline(mark, color="0.5", lw=0.8, ls="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.legend()
    return fig


def certified_vs_attacked(certified: torch.Tensor, found: torch.Tensor):
    """One panel: per test point, the certified radius against the smallest radius at which
    the attack changes the prediction (both ``[n]``); the diagonal is where they agree."""
    fig, (ax,) = panels(1, height=3.0, columns=1)
    c, f = certified.detach().cpu(), found.detach().cpu()
    top = float(max(c.max(), f.max())) * 1.05
    ax.plot([0, top], [0, top], color="0.5", lw=0.8)
    ax.scatter(f, c, s=8)
    ax.set_xlabel("radius at which PGD breaks the point")
    ax.set_ylabel("certified radius")
    ax.set_aspect("equal")
    return fig
