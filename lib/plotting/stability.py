"""Figures for the stability of the forward problem: Jacobian eigenvalues against one-sided
Lipschitz constants per layer, the growth of input perturbations against its bound, the
numerical check of the gradient-flow theorem, and the accuracy of restricted architectures."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import torch

from ..stability import PerturbationGrowth, StabilityCurves
from .style import panels

EIGENVALUE_COLOUR = "#1f77b4"
"""Blue: the largest real part of the Jacobian eigenvalues (the talk's colours)."""
LIPSCHITZ_COLOUR = "#d62728"
"""Red: the one-sided Lipschitz constant."""


def _legend_below(fig, ax, ncol: int = 3):
    """The legend of ``ax`` under all panels, so it hides no data."""
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=ncol)


def eigenvalues_vs_lipschitz(curves: Mapping[str, StabilityCurves]):
    """One panel per named network: against the layer time ``t_k``, the largest real part of
    the Jacobian eigenvalues (blue), the largest logarithmic norm ``mu_2(J)`` (red) and the
    pair-sampled lower estimate of ``nu`` (red, dotted), all over the states of the layer."""
    fig, axes = panels(len(curves), height=2.6)
    for ax, (name, c) in zip(axes, curves.items()):
        t = c.t.cpu()
        if len(t) > 1:  # close the last layer's step at t_K = t_{K-1} + h
            t = torch.cat([t, t[-1:] + (t[-1] - t[-2])])

        def step(values, **style):
            values = values.cpu()
            ax.step(t, torch.cat([values, values[-1:]])[:len(t)], where="post", **style)

        ax.axhline(0.0, color="0.6", lw=0.8)
        step(c.spectral_abscissa, color=EIGENVALUE_COLOUR,
             label=r"$\max_z \max_i \mathrm{Re}\,\lambda_i(J)$")
        step(c.log_norm, color=LIPSCHITZ_COLOUR, label=r"$\nu \approx \max_z \mu_2(J)$")
        step(c.pairs, color=LIPSCHITZ_COLOUR, ls=":", label=r"$\nu$ from sampled pairs")
        ax.set(title=name, xlabel="time $t$ (layer $t_k = kh$)", ylabel="rate")
    _legend_below(fig, axes[0])
    return fig


def growth_vs_bound(runs_by_panel: Mapping[str, Mapping[str, PerturbationGrowth]]):
    """One panel per named network; in it, for each labelled :class:`PerturbationGrowth`
    (e.g. the network itself and a finer discretisation of its flow), the largest and the
    median growth factor over the inputs (solid and thin) and the bound ``exp(int nu)``
    (dashed, same colour), on a logarithmic scale."""
    fig, axes = panels(len(runs_by_panel), height=2.8)
    for ax, (name, runs) in zip(axes, runs_by_panel.items()):
        for i, (label, g) in enumerate(runs.items()):
            colour = f"C{i + 2}"
            t = g.t.cpu()
            factor = g.factor.cpu()
            ax.plot(t, factor.amax(1), color=colour, lw=1.8, label=f"{label}: max")
            ax.plot(t, factor.median(1).values, color=colour, lw=0.8, label=f"{label}: median")
            ax.plot(t, g.bound.cpu(), color="k", ls=("--", ":", "-.")[i % 3], lw=1.2,
                    label=rf"{label}: bound $e^{{\int\nu}}$")
        ax.set_yscale("log")
        ax.set(title=name, xlabel="time $t$",
               ylabel=r"$\|z_2(t)-z_1(t)\| \,/\, \|z_2(0)-z_1(0)\|$")
    _legend_below(fig, axes[0])
    return fig


def theorem_check(results: Mapping[str, tuple[torch.Tensor, torch.Tensor]]):
    """One panel per activation ``{name: (lower, nu)}``: each random instance ``(A, b)`` as a
    point ``(-mu_*^2, nu)``, with the theorem's bounds ``nu = -mu_*^2`` and ``nu = 0``."""
    fig, axes = panels(len(results), height=2.6)
    for ax, (name, (lower, nu)) in zip(axes, results.items()):
        lower, nu = lower.cpu(), nu.cpu()
        left = float(lower.min()) * 1.05
        ax.fill_between([left, 0.0], [left, 0.0], [0.0, 0.0], color="0.92",
                        label="allowed: $-\\mu_*^2 \\leq \\nu \\leq 0$")
        ax.plot([left, 0.0], [left, 0.0], color="k", lw=1, label="$\\nu = -\\mu_*^2$")
        ax.axhline(0.0, color="k", lw=1, ls="--", label="$\\nu = 0$")
        ax.scatter(lower, nu, s=8, color=LIPSCHITZ_COLOUR, label="random instances", zorder=3)
        ax.set(title=f"$\\sigma$ = {name}", xlabel="$-\\mu_*^2$", ylabel="estimated $\\nu$")
    _legend_below(fig, axes[0], ncol=4)
    return fig


def accuracy_bars(table: Mapping[str, Mapping[str, Sequence[float]]],
                  labels: Sequence[str] = ("train", "validation")):
    """Grouped bars: one panel per data set ``{dataset: {architecture: (train, validation)}}``,
    one group per architecture, one bar per accuracy in ``labels``."""
    fig, axes = panels(len(table), height=2.8)
    for ax, (dataset, rows) in zip(axes, table.items()):
        names = list(rows)
        width = 0.8 / len(labels)
        for j, label in enumerate(labels):
            values = [rows[name][j] for name in names]
            positions = [i + (j - (len(labels) - 1) / 2) * width for i in range(len(names))]
            ax.bar(positions, values, width, color=f"C{j}", label=label)
        ax.set_xticks(range(len(names)), names, rotation=20)
        low = min(min(v) for v in rows.values())
        ax.set(title=dataset, ylabel="accuracy", ylim=(max(0.0, low - 0.1), 1.01))
    _legend_below(fig, axes[0], ncol=len(labels))
    return fig
