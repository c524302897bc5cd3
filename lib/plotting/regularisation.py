"""Figures for the regularisation experiments (chapter 6): the learned parameters ``theta(t)``
of networks trained with different weights ``lambda`` of the time-smoothness regulariser, the
same for networks of growing depth (the deep limit), the distances between consecutive
refinements, and an explorer of all of it with the stability curves of
:func:`lib.one_sided.network_curves`."""
from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import LogLocator, NullFormatter, NullLocator, ScalarFormatter

from ..models import ODENet
from ..growth import GrowthComparison
from ..one_sided import StabilityCurves
from ..parameter_path import parameter_path
from .classification import _transition_panel, decision_regions
from .explorer import figure_widget
from .stability import EIGENVALUE_COLOUR, LIPSCHITZ_COLOUR
from .style import panels

__all__ = ["entry_labels", "theta_paths", "growth_predictions", "deep_limit_paths",
           "refinement_distances", "ExplorerRun", "explorer_figure", "explorer"]


def _single(net, name: str = "net") -> ODENet:
    if not isinstance(net, ODENet):
        raise TypeError(f"{name} must be an ODENet, got {type(net).__name__}")
    if net.members is not None:
        raise ValueError(f"{name} has {net.members} members; draw one of them: net.member(s)")
    return net


def entry_labels(net: ODENet) -> list[str]:
    """The names of the columns of :func:`lib.parameter_path.parameter_path`, e.g. ``$A_{12}$`` for the
    entry in row 1, column 2 of ``A^k`` and ``$b_{1}$`` for the first entry of ``b^k``."""
    labels = []
    for name, stack in net.field.stacks().items():
        shape = stack.shape[1:] if net.members is None else stack.shape[2:]
        for index in torch.cartesian_prod(*(torch.arange(1, n + 1) for n in shape)).reshape(
                -1, len(shape)).tolist():
            labels.append(f"${name}_{{{''.join(map(str, index))}}}$")
    return labels


def _steps(ax, net: ODENet, values: torch.Tensor, **style) -> None:
    """Draw per-layer values ``[K]`` as the piecewise-constant function on ``[t_k, t_{k+1})``."""
    values = values.detach().cpu()
    t = net.h * torch.arange(net.depth + 1, dtype=torch.float64)
    ax.step(t, torch.cat([values, values[-1:]]), where="post", **style)


def _theta_panel(ax, net: ODENet, title: str, entries: Sequence[int] | None = None,
                 legend: bool = False) -> None:
    """The entries of ``theta(t)`` against ``t``: those of the field's first stack (``A``)
    solid, the others (``b``) dashed, one colour per entry."""
    theta, labels = parameter_path(net), entry_labels(net)
    first = next(iter(net.field.stacks().values()))[0].numel()
    for p in range(theta.shape[1]) if entries is None else entries:
        _steps(ax, net, theta[:, p], color=f"C{p % 10}", ls="-" if p < first else "--",
               lw=1.2, label=labels[p])
    ax.set(title=title, xlabel="time $t$", ylabel=r"entries of $\theta(t)$")
    if legend:
        ax.legend(ncol=3, loc="best", fontsize="small", handlelength=1.5, columnspacing=0.8)


def theta_paths(nets: Mapping[str, ODENet], legend_below: bool = True):
    """One panel per named single network: the entries of ``theta^k = (A^k, b^k)`` against the
    time ``t`` as piecewise-constant functions (``A`` solid, ``b`` dashed), as in the talk's
    figures of the spiral experiment.  Panels share the vertical axis."""
    if not nets:
        raise ValueError("nets must name at least one network")
    fig, axes = panels(len(nets), height=2.6, sharey=True)
    for ax, (name, net) in zip(axes, nets.items()):
        _theta_panel(ax, _single(net, name), name)
    if legend_below:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center",
                   ncol=min(6, len(entry_labels(next(iter(nets.values()))))))
    return fig


def growth_predictions(comparisons: Mapping[str, GrowthComparison]):
    """One panel per named :class:`~lib.growth.GrowthComparison`: for every input, the
    logarithm of its largest growth at ``t = T`` against what the spectra along its trajectory
    say, ``int alpha(J)`` (blue, the eigenvalues' prediction) and ``int mu_2(J)`` (red, a bound);
    the diagonal is a perfect prediction, the dashed line the estimated bound ``int nu^``."""
    if not comparisons:
        raise ValueError("comparisons must name at least one GrowthComparison")
    fig, axes = panels(len(comparisons), height=2.7)
    for ax, (name, c) in zip(axes, comparisons.items()):
        measured = c.largest[-1].log().cpu()
        ax.scatter(measured, c.log_norms[-1].log().cpu(), s=5, color=LIPSCHITZ_COLOUR,
                   linewidths=0, label=r"$\int \mu_2(J)$ (bound)")
        ax.scatter(measured, c.eigenvalues[-1].log().cpu(), s=5, color=EIGENVALUE_COLOUR,
                   linewidths=0, label=r"$\int \alpha(J)$ (eigenvalues)")
        ax.axhline(float(c.bound[-1].log()), color="k", ls="--", lw=1,
                   label=r"$\int \hat\nu$ (estimated bound)")
        low, high = float(measured.min()), float(measured.max())
        ax.plot([low, high], [low, high], color="0.4", lw=1, label="prediction = growth")
        ax.set(title=name, xlabel=r"largest $\log$ growth at $T$",
               ylabel=r"predicted $\log$ growth")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2,
               markerscale=2)
    return fig


def deep_limit_paths(runs: Mapping[str, Mapping[int, ODENet]], entries: Sequence[int] = (0,)):
    """The deep limit: one row per named setting (e.g. a value of ``lambda``), one panel per
    entry of ``theta`` (indices into :func:`lib.parameter_path.parameter_path`, at most three), and in
    each panel that entry of ``theta(t)`` of the networks of every depth ``K`` (one colour per
    ``K``, darker for deeper).  Settling onto one curve as ``K`` grows is the deep limit."""
    if not runs or not entries or len(entries) > 3:
        raise ValueError("runs must name at least one setting and entries hold 1 to 3 indices")
    fig, axes = panels(len(runs) * len(entries), columns=len(entries), height=2.4, sharex=True)
    for row, (name, by_depth) in enumerate(runs.items()):
        depths = sorted(by_depth)
        for ax, p in zip(axes[row * len(entries):], entries):
            for i, K in enumerate(depths):
                net = _single(by_depth[K], f"{name}, K = {K}")
                shade = plt.cm.viridis(0.85 * (1 - i / max(1, len(depths) - 1)))
                _steps(ax, net, parameter_path(net)[:, p], color=shade, lw=1.2, label=f"$K = {K}$")
            ax.set(title=f"{name}: {entry_labels(net)[p]}", xlabel="time $t$",
                   ylabel=entry_labels(net)[p])
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=len(depths))
    return fig


def _median_range(ax, x: torch.Tensor, values: torch.Tensor, colour: str, label: str,
                  shift: float) -> None:
    """Median over the columns (seeds) of ``values`` ``[len(x), S]`` against ``x``, with the
    range as error bars, slightly shifted so that several settings stay apart."""
    median = values.median(1).values
    ax.errorbar(x * (1 + shift), median, yerr=torch.stack([median - values.amin(1),
                                                           values.amax(1) - median]),
                fmt="o-", color=colour, capsize=3, label=label)


def _log_depth_axes(ax, depths: torch.Tensor) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(depths.tolist(), [f"{int(K)}" for K in depths.tolist()])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="major", alpha=0.3)


def refinement_distances(depths: Sequence[int], distances: Mapping[str, torch.Tensor],
                         objectives: Mapping[str, torch.Tensor] | None = None):
    """For each named setting, the ``L^2`` distance between the ``theta(t)`` trained at depth
    ``K`` and at ``2K`` (``distances[name]`` of shape ``[len(depths) - 1, S]``, one column per
    seed) against ``K``, and, with ``objectives`` (``[len(depths), S]``), a second panel with
    the final objective at every depth: medians over the seeds with the range as error bars,
    log-log axes."""
    fig, axes = panels(1 if objectives is None else 2, height=2.9)
    depths = torch.as_tensor(list(depths), dtype=torch.float64)
    for i, (name, d) in enumerate(distances.items()):
        d = torch.as_tensor(d, dtype=torch.float64)
        if d.dim() != 2 or d.shape[0] != len(depths) - 1:
            raise ValueError(f"distances[{name!r}] must have shape [{len(depths) - 1}, S], got "
                             f"{list(d.shape)}")
        _median_range(axes[0], depths[:-1], d, f"C{i}", name, 0.04 * i)
    _log_depth_axes(axes[0], depths[:-1])
    axes[0].set(xlabel="depth $K$ (distance to depth $2K$)",
                ylabel=r"$\|\theta_K - \theta_{2K}\|_{L^2(0,T)}$", title="distance")
    if objectives is not None:
        for i, (name, e) in enumerate(objectives.items()):
            e = torch.as_tensor(e, dtype=torch.float64)
            if e.dim() != 2 or e.shape[0] != len(depths):
                raise ValueError(f"objectives[{name!r}] must have shape [{len(depths)}, S], "
                                 f"got {list(e.shape)}")
            _median_range(axes[1], depths, e, f"C{i}", name, 0.04 * i)
        _log_depth_axes(axes[1], depths)
        axes[1].set(xlabel="depth $K$", ylabel=r"final objective $E_K(\theta_K)$",
                    title="objective")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2)
    return fig


class ExplorerRun(NamedTuple):
    """What the explorer shows for one value of ``lambda``: a trained single network, data to
    draw (``X`` ``[n, 2]``, labels ``y``) and its :class:`~lib.one_sided.StabilityCurves`."""

    net: ODENet
    X: torch.Tensor
    y: torch.Tensor
    curves: StabilityCurves


def explorer_figure(runs: Mapping[float, ExplorerRun], lam: float, layer: int):
    """Four panels for the run of weight ``lam`` with layer ``layer`` marked: ``theta(t)``; the
    largest real part of the Jacobian eigenvalues (blue) and the one-sided Lipschitz estimate
    ``max mu_2(J)`` (red) per layer; the decision regions; the features ``z^k`` at the layer."""
    if lam not in runs:
        raise ValueError(f"lam must be one of {sorted(runs)}, got {lam!r}")
    run = runs[lam]
    net = _single(run.net)
    if not isinstance(layer, int) or not 0 <= layer <= net.depth:
        raise ValueError(f"layer must be an integer in 0..{net.depth}, got {layer!r}")
    fig, axes = panels(4, columns=2, height=2.9)
    t_k = layer * net.h
    _theta_panel(axes[0], net, rf"$\theta(t)$, $\lambda = {lam:g}$", legend=True)
    curves = axes[1]
    curves.axhline(0.0, color="0.6", lw=0.8)
    _steps(curves, net, run.curves.spectral_abscissa, color=EIGENVALUE_COLOUR,
           label=r"$\max_z \alpha(J)$")
    _steps(curves, net, run.curves.log_norm, color=LIPSCHITZ_COLOUR,
           label=r"$\hat\nu = \max_z \mu_2(J)$")
    curves.set(title="stability per layer", xlabel="time $t$", ylabel="rate")
    curves.legend(loc="best")
    for ax in axes[:2]:
        ax.axvline(t_k, color="k", lw=0.8, ls=":")
    decision_regions(net, run.X, run.y, ax=axes[2], resolution=100, title="decision regions")
    with torch.no_grad():
        z = net.trajectory(run.X)[layer].cpu()
    _transition_panel(axes[3], net, z, run.y.cpu(), layer, legend=False,
                      title=f"features at $k = {layer}$, $t = {t_k:g}$")
    return fig


def explorer(runs: Mapping[float, ExplorerRun]):
    """The ipywidgets explorer of :func:`explorer_figure`: a slider over the values of
    ``lambda`` in ``runs`` and one over the layers, above the figure as a PNG
    (:func:`lib.plotting.explorer.figure_widget`).  Everything it draws is precomputed in
    ``runs`` except the decision regions (one forward pass over a grid)."""
    import ipywidgets as widgets

    values = sorted(runs)
    depth = runs[values[0]].net.depth
    controls = [
        widgets.SelectionSlider(options=values, value=values[len(values) // 2],
                                description="λ", continuous_update=False),
        widgets.IntSlider(value=depth // 2, min=0, max=depth, step=1, description="layer k",
                          continuous_update=False),
    ]
    return figure_widget(lambda lam, layer: explorer_figure(runs, lam, layer), controls,
                         lambda lam, layer: f"λ = {lam:g}, layer k = {layer}")
