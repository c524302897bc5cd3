"""Figures for the stability of the forward problem: Jacobian eigenvalues against lower
estimates of the one-sided Lipschitz constant per layer, the growth of input perturbations
against its estimated bound, the search for the supremum of nu against the gradient-flow
theorem, and the accuracy of restricted architectures over several seeds."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from ..one_sided import PerturbationGrowth, StabilityCurves
from .style import panels

EIGENVALUE_COLOUR = "#1f77b4"
"""Blue: the largest real part of the Jacobian eigenvalues (the talk's colours)."""
LIPSCHITZ_COLOUR = "#d62728"
"""Red: the one-sided Lipschitz constant (its estimates)."""
CONTRAST_COLOUR = "#7f7f7f"
"""Grey: a field outside the theorem's hypotheses (the ResNet field)."""


def _legend_below(fig, ax, ncol: int = 3):
    """The legend of ``ax`` under all panels, so it hides no data."""
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=ncol)


def eigenvalues_vs_lipschitz(curves: Mapping[str, StabilityCurves]):
    """One panel per named network: against the layer time ``t_k``, the largest real part of
    the Jacobian eigenvalues (blue), and two lower estimates of the layer's one-sided
    Lipschitz constant ``nu``: the largest logarithmic norm ``mu_2(J)`` (red) and the largest
    sampled pair quotient (red, dotted), all over the states of the layer."""
    fig, axes = panels(len(curves), columns=2 if len(curves) == 4 else None, height=2.6)
    for ax, (name, c) in zip(axes, curves.items()):
        t = c.t.cpu()
        if len(t) > 1:  # close the last layer's step at t_K = t_{K-1} + h
            t = torch.cat([t, t[-1:] + (t[-1] - t[-2])])

        def step(values, **style):
            values = values.cpu()
            ax.step(t, torch.cat([values, values[-1:]])[:len(t)], where="post", **style)

        ax.axhline(0.0, color="0.6", lw=0.8)
        step(c.spectral_abscissa, color=EIGENVALUE_COLOUR, label=r"$\max_z \alpha(J)$")
        step(c.log_norm, color=LIPSCHITZ_COLOUR, label=r"$\max_z \mu_2(J) \leq \nu$")
        step(c.pairs, color=LIPSCHITZ_COLOUR, ls=":", label=r"pair quotients $\leq \nu$")
        ax.set(title=name, xlabel="time $t$ (layer $t_k = kh$)", ylabel="rate")
    _legend_below(fig, axes[0])
    return fig


def growth_vs_bound(runs_by_panel: Mapping[str, Mapping[str, PerturbationGrowth]]):
    """One panel per named network; in it, for each labelled :class:`PerturbationGrowth`
    (e.g. the network itself and a finer discretisation of its flow), the largest and the
    median growth ``|z_2(t) - z_1(t)| / |z_2(0) - z_1(0)|`` over the inputs (solid and
    thin) and the estimated bound ``exp(int nu_hat)`` from the lower estimates ``nu_hat``
    of ``nu`` (black, dashed or dotted), on a logarithmic scale."""
    fig, axes = panels(len(runs_by_panel), height=2.8)
    for ax, (name, runs) in zip(axes, runs_by_panel.items()):
        for i, (label, g) in enumerate(runs.items()):
            colour = f"C{i + 2}"
            t = g.t.cpu()
            factor = g.factor.cpu()
            ax.plot(t, factor.amax(1), color=colour, lw=1.8, label=f"{label}: max")
            ax.plot(t, factor.median(1).values, color=colour, lw=0.8, label=f"{label}: median")
            ax.plot(t, g.bound.cpu(), color="k", ls=("--", ":", "-.")[i % 3], lw=1.2,
                    label=rf"{label}: $e^{{\int\hat\nu}}$ (estimated bound)")
        ax.set_yscale("log")
        ax.set(title=name, xlabel="time $t$", ylabel="growth")
    _legend_below(fig, axes[0], ncol=2)
    return fig


def theorem_check(results: Mapping[str, Sequence[torch.Tensor]]):
    """One panel per activation ``{name: (lower, nu_hat)}`` or ``{name: (lower, nu_hat,
    contrast)}``: each random instance ``(A, b)`` as a point ``(-s_*^2, nu_hat)``, with
    ``nu_hat`` the largest lower estimate of ``nu`` a search found for the gradient field
    (red) and, if given, for the ResNet field with the same ``A, b`` (grey), beside the
    theorem's bounds ``nu = -s_*^2`` and ``nu = 0``."""
    fig, axes = panels(len(results), height=2.6)
    for ax, (name, values) in zip(axes, results.items()):
        lower, nu = values[0].cpu(), values[1].cpu()
        left = float(lower.min()) * 1.05
        ax.fill_between([left, 0.0], [left, 0.0], [0.0, 0.0], color="0.9",
                        label=r"allowed: $-s_*^2 \leq \nu \leq 0$")
        ax.plot([left, 0.0], [left, 0.0], color="k", lw=1, label=r"$\nu = -s_*^2$")
        ax.axhline(0.0, color="k", lw=1, ls="--", label=r"$\nu = 0$")
        ax.scatter(lower, nu, s=10, color=LIPSCHITZ_COLOUR, zorder=3,
                   label=r"gradient field $-A^\top\sigma(Az+b)$")
        if len(values) > 2:
            ax.scatter(lower, values[2].cpu(), s=10, marker="^", color=CONTRAST_COLOUR,
                       zorder=3, label=r"ResNet field $\sigma(Az+b)$")
        ax.set(title=f"$\\sigma$ = {name}", xlabel=r"$-s_*^2$", ylabel=r"searched $\hat\nu$")
    _legend_below(fig, axes[0], ncol=3)
    return fig


def accuracy_bars(table: Mapping[str, Mapping[str, Sequence]],
                  labels: Sequence[str] = ("train", "validation"), bottom: float | None = None,
                  ceilings: Mapping[str, float] | None = None):
    """Grouped bars: one panel per data set ``{dataset: {architecture: (train, validation)}}``,
    one group per architecture, one bar per accuracy in ``labels``.  Each accuracy is a
    number or a tensor of per-seed values: the bar is then the median, the whisker the range
    over the seeds and the dots the seeds themselves.  The accuracy axis starts at ``bottom``
    (default: just below the lowest value); ``ceilings`` draws a dashed line per data set,
    such as its Bayes accuracy (:func:`lib.bayes.bayes_accuracy`)."""
    fig, axes = panels(len(table), height=2.8)
    lowest = 1.0
    for ax, (dataset, rows) in zip(axes, table.items()):
        names = list(rows)
        width = 0.8 / len(labels)
        for j, label in enumerate(labels):
            for i, name in enumerate(names):
                values = torch.as_tensor(rows[name][j], dtype=torch.float64).flatten().cpu()
                if values.numel() == 0:
                    raise ValueError(f"{dataset}, {name}: no {label} accuracy given")
                low, high = float(values.min()), float(values.max())
                median = float(values.sort().values[(len(values) - 1) // 2])
                lowest = min(lowest, low)
                x = i + (j - (len(labels) - 1) / 2) * width
                ax.bar(x, median, width, color=f"C{j}", alpha=0.75,
                       label=label if i == 0 else None)
                if values.numel() > 1:
                    ax.errorbar(x, median, [[median - low], [high - median]], color="k",
                                lw=1, capsize=2)
                    ax.scatter(torch.full_like(values, x), values, s=6, color="k", zorder=3)
        ax.set_xticks(range(len(names)), names, rotation=20)
        ax.set(title=dataset, ylabel="accuracy")
        if ceilings and dataset in ceilings:
            ax.axhline(ceilings[dataset], color="k", ls="--", lw=0.8, label="Bayes accuracy")
    for ax in axes:
        ax.set_ylim(max(0.0, lowest - 0.05) if bottom is None else bottom, 1.01)
    _legend_below(fig, axes[0], ncol=len(labels) + bool(ceilings))
    return fig
