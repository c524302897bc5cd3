"""Figures for classification networks: the data, decision regions, the layer-by-layer
transitions of the features, and training curves."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.colors import ListedColormap

from ..models import ODENet
from ..training import History
from .style import MAX_COLUMNS, panels

CLASS_COLOURS = ("#1f77b4", "#d62728")
"""Colours of class 0 and class 1 in every figure of the book."""


def scatter_classes(ax, points: torch.Tensor, y: torch.Tensor, size: float = 6.0, legend: bool = True):
    """Scatter 2-D ``points`` on ``ax`` coloured by the labels ``y``."""
    points, y = points.detach().cpu(), y.cpu()
    for label, colour in enumerate(CLASS_COLOURS):
        mask = y == label
        ax.scatter(points[mask, 0], points[mask, 1], s=size, c=colour, label=f"class {label}",
                   linewidths=0)
    if legend:
        ax.legend(loc="upper right", markerscale=2)


def datasets(data: Mapping[str, tuple[torch.Tensor, torch.Tensor]]):
    """One panel per named data set ``{name: (X, y)}``."""
    fig, axes = panels(len(data), columns=min(len(data), 2), height=2.9)
    for ax, (name, (X, y)) in zip(axes, data.items()):
        scatter_classes(ax, X, y)
        ax.set(title=name, xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
    return fig


def _grid(X: torch.Tensor, resolution: int, margin: float):
    lo = X.min(0).values.cpu() - margin
    hi = X.max(0).values.cpu() + margin
    u = torch.linspace(float(lo[0]), float(hi[0]), resolution, dtype=X.dtype)
    v = torch.linspace(float(lo[1]), float(hi[1]), resolution, dtype=X.dtype)
    U, V = torch.meshgrid(u, v, indexing="xy")
    return U, V, torch.stack([U.reshape(-1), V.reshape(-1)], 1)


def decision_regions(net: ODENet, X: torch.Tensor, y: torch.Tensor, ax=None, title: str | None = None,
                     resolution: int = 150, margin: float = 0.3):
    """The predicted probability of class 1, ``eta(w^T z^K + w0)``, over the plane in three
    bands, blue for ``eta < 1/4``, white for ``1/4 <= eta <= 3/4`` (the classifier is unsure)
    and red for ``eta > 3/4``, with the decision boundary ``eta = 1/2`` and the data.  Returns
    the figure."""
    if net.classifier.classes != 2:
        raise ValueError("decision_regions draws two-class networks only")
    fig, ax = (plt.subplots(figsize=(3.6, 3.4)) if ax is None else (ax.figure, ax))
    U, V, points = _grid(X, resolution, margin)
    device = next(net.parameters()).device
    with torch.no_grad():
        prob = torch.sigmoid(net(points.to(device))).cpu().reshape(U.shape)
    cmap = ListedColormap(["#aec7e8", "#ffffff", "#ff9896"])
    ax.contourf(U, V, prob, levels=[0, 0.25, 0.75, 1], cmap=cmap, alpha=0.8)
    ax.contour(U, V, prob, levels=[0.5], colors="k", linewidths=1)
    scatter_classes(ax, X, y, size=4)
    ax.set(xlabel="$x_1$", ylabel="$x_2$", aspect="equal", title=title or "decision regions")
    return fig


def _project(z: torch.Tensor) -> torch.Tensor:
    """The 2-D view of features ``[n, d]``: themselves for ``d = 2``, else the two leading
    principal components."""
    if z.shape[1] == 2:
        return z
    centred = z - z.mean(0)
    _, _, Vh = torch.linalg.svd(centred, full_matrices=False)
    return centred @ Vh[:2].T


def _layers(net: ODENet, layers: Sequence[int] | None, count: int) -> list[int]:
    """The chosen layer indices, checked, or ``count`` evenly spaced ones (first and last
    included)."""
    K = net.depth
    layers = list(layers) if layers is not None else sorted(
        {round(i * K / (count - 1)) for i in range(count)})
    if not layers or min(layers) < 0 or max(layers) > K:
        raise ValueError(f"layers must be indices in 0..{K}, got {layers}")
    return layers


def _transition_panel(ax, net: ODENet, z: torch.Tensor, y: torch.Tensor, k: int, legend: bool,
                      title: str | None = None, line_legend: bool = True) -> None:
    """Draw the features ``z = z^k`` ``[n, d]`` of one layer on ``ax`` (projected to 2-D when
    wider), coloured by class (with their legend if ``legend``); for width 2 at the last layer
    also the classifier's line (with a legend of the panel if ``line_legend``)."""
    z = _project(z)
    scatter_classes(ax, z, y, size=3, legend=legend)
    ax.set(title=title or f"$k = {k}$, $t = {k * net.h:g}$", xlabel="$z_1$", ylabel="$z_2$")
    if k == net.depth and net.width == 2 and net.classifier.classes == 2:
        w = net.classifier.matrix()[0].detach().cpu()
        w0 = float(net.classifier.bias().detach())
        s = torch.linspace(float(z[:, 0].min()), float(z[:, 0].max()), 2)
        if abs(float(w[1])) > 1e-12:
            ax.plot(s, -(w0 + w[0] * s) / w[1], "k--", lw=1, label="$w^Tz+w_0=0$")
            ax.set_ylim(float(z[:, 1].min()) - 0.2, float(z[:, 1].max()) + 0.2)
            if line_legend:
                ax.legend(loc="upper right")


def transitions(net: ODENet, X: torch.Tensor, y: torch.Tensor, layers: Sequence[int] | None = None):
    """The features ``z^k`` of the data after the chosen ``layers`` (default: six evenly spaced,
    first and last included), coloured by class.  Features wider than 2 are shown in their two
    leading principal components; for width 2 the last panel also shows the classifier's line
    ``w^T z + w0 = 0``."""
    layers = _layers(net, layers, 6)
    with torch.no_grad():
        states = net.trajectory(X).cpu()
    fig, axes = panels(len(layers), height=2.3)
    for ax, k in zip(axes, layers):
        _transition_panel(ax, net, states[k], y, k, legend=k == layers[0])
    return fig


def transition_grid(nets: Mapping[str, ODENet], X: torch.Tensor, y: torch.Tensor,
                    layers: Sequence[int] | None = None):
    """The transitions of several networks of equal depth (e.g. one per Runge--Kutta method) as
    a grid: one row per named network, one column per layer in ``layers`` (at most three;
    default: ``K/3``, ``2K/3`` and ``K``, rounded), each panel drawn as in :func:`transitions`.
    The legend of the classes stands under the grid."""
    if not nets:
        raise ValueError("nets must name at least one network")
    depths = {net.depth for net in nets.values()}
    if len(depths) != 1:
        raise ValueError(f"the networks must have equal depth, got {sorted(depths)}")
    first = next(iter(nets.values()))
    layers = _layers(first, layers, 4)[-3:] if layers is None else _layers(first, layers, 4)
    if len(layers) > MAX_COLUMNS:
        raise ValueError(f"at most {MAX_COLUMNS} layers fit a row, got {len(layers)}")
    fig, axes = panels(len(nets) * len(layers), columns=len(layers), height=2.1)
    for row, (name, net) in enumerate(nets.items()):
        with torch.no_grad():
            states = net.trajectory(X).cpu()
        for ax, k in zip(axes[row * len(layers):], layers):
            _transition_panel(ax, net, states[k], y, k, legend=False,
                              title=f"{name}, $k = {k}$", line_legend=False)
    fig.legend(*axes[len(layers) - 1].get_legend_handles_labels(), loc="outside lower center",
               ncol=3, markerscale=2)
    return fig


def decision_region_grid(rows: Mapping[str, Mapping[str, tuple[ODENet, torch.Tensor,
                                                                 torch.Tensor]]],
                         resolution: int = 80):
    """A grid of :func:`decision_regions`: one row per name of ``rows`` (e.g. a method), one
    column per name in it (e.g. a data set, at most three), each cell a network with the
    points ``(X, y)`` to draw.  Titles name the cell; the legend stands under the grid."""
    if not rows:
        raise ValueError("rows must name at least one row")
    columns = list(next(iter(rows.values())))
    if any(list(row) != columns for row in rows.values()):
        raise ValueError("every row must name the same columns in the same order")
    if not 1 <= len(columns) <= MAX_COLUMNS:
        raise ValueError(f"rows must hold 1 to {MAX_COLUMNS} columns, got {len(columns)}")
    fig, axes = panels(len(rows) * len(columns), columns=len(columns), height=2.2)
    cells = [(r, c) for r in rows for c in columns]
    for ax, (r, c) in zip(axes, cells):
        net, X, y = rows[r][c]
        decision_regions(net, X, y, ax=ax, title=f"{r}, {c}", resolution=resolution)
        ax.get_legend().remove()
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2,
               markerscale=2)
    return fig


def _median_and_band(ax, x, values: torch.Tensor, colour: str, label: str, style: str = "-"):
    """Plot ``values`` ``[steps]``, or ``[steps, S]`` as the median over the members with the band
    between the smallest and the largest."""
    if values.dim() == 1:
        ax.plot(x, values, style, color=colour, label=label)
        return
    ax.plot(x, values.median(1).values, style, color=colour, label=f"{label} (median)")
    ax.fill_between(x, values.amin(1), values.amax(1), color=colour, alpha=0.2, lw=0)


def training_curves(histories: Mapping[str, History], legend_below: bool = False):
    """Objective (log scale) and accuracies against the iteration for several named runs; a run
    with members is drawn as its median with the range over the seeds shaded.  With
    ``legend_below`` one legend for both panels goes below them, off the curves."""
    fig, (left, right) = panels(2, height=2.9)
    for i, (name, h) in enumerate(histories.items()):
        colour = f"C{i}"
        _median_and_band(left, range(1, len(h.loss) + 1), h.loss, colour, name)
        _median_and_band(right, h.recorded, h.train_accuracy, colour, f"{name}, train")
        if h.validation_accuracy is not None:
            _median_and_band(right, h.recorded, h.validation_accuracy, colour,
                             f"{name}, validation", "--")
    left.set_yscale("log")
    left.set(xlabel="iteration", ylabel="objective $E(\\theta)$", title="training objective")
    right.set(xlabel="iteration", ylabel="accuracy", title="accuracy")
    if legend_below:
        fig.legend(*right.get_legend_handles_labels(), loc="outside lower center", ncol=2)
    else:
        left.legend()
        right.legend()
    return fig


# --- chapter 1: the median run of several experiments, and where the layers fold ------------

from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:
    from ..experiments import Experiment


def median_regions(experiments: Mapping[str, "Experiment"], resolution: int = 120):
    """The decision regions of each named experiment's median run
    (:meth:`lib.experiments.Experiment.median_member`, the seed whose validation accuracy is
    the median) with its validation points, one panel per experiment."""
    if not experiments:
        raise ValueError("experiments must name at least one experiment")
    fig, axes = panels(len(experiments), height=2.6)
    for ax, (name, run) in zip(axes, experiments.items()):
        one = run.member(run.median_member())
        decision_regions(one.net, one.X_val, one.y_val, ax=ax, title=name,
                         resolution=resolution)
        if ax is not axes[0]:
            ax.get_legend().remove()
    return fig


def determinant_signs(net: ODENet, X: torch.Tensor, y: torch.Tensor,
                      layers: Sequence[int] | None = None, resolution: int = 100,
                      margin: float = 0.3):
    """Where each chosen layer folds: the input plane shaded where ``det D Phi_h < 0`` at the
    state ``z^k(x)`` that layer ``k`` receives (:func:`lib.folding.layer_determinants`), with
    the curve ``det = 0`` and the data ``(X, y)``.  By default the (at most three) layers that
    fold the largest part of the plotted box."""
    from ..folding import layer_determinants

    if net.in_features != 2:
        raise ValueError("determinant_signs draws networks with 2-D inputs only")
    U, V, points = _grid(X, resolution, margin)
    device = next(net.parameters()).device
    dets = layer_determinants(net, points.to(device=device, dtype=X.dtype)).cpu()
    folded = (dets < 0).double().mean(1)
    if layers is None:
        top = folded.argsort(descending=True, stable=True)[:3]
        layers = sorted(int(k) for k in top)
    layers = list(layers)
    if not layers or min(layers) < 0 or max(layers) >= net.depth:
        raise ValueError(f"layers must be indices in 0..{net.depth - 1}, got {layers}")
    fig, axes = panels(len(layers), height=2.5)
    cmap = ListedColormap(["#fdae6b", "#ffffff"])
    for ax, k in zip(axes, layers):
        det = dets[k].reshape(U.shape)
        ax.contourf(U, V, (det > 0).double(), levels=[-0.5, 0.5, 1.5], cmap=cmap)
        if bool((det < 0).any()) and bool((det > 0).any()):
            ax.contour(U, V, det, levels=[0.0], colors="k", linewidths=0.8)
        scatter_classes(ax, X, y, size=3, legend=False)
        ax.set(title=f"layer $k = {k}$", xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
    return fig
