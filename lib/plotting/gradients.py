"""Figures for the gradient computations of :mod:`lib.gradients`: how far the black-box adjoint's
backward reconstruction of the states drifts from the forward states, and how the peak memory
of each gradient method grows with the depth."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import NullFormatter

MiB = 2 ** 20


def reconstruction_drift(t: torch.Tensor, drifts: Mapping[str, torch.Tensor],
                         title: str | None = None):
    """For each labelled curve, the relative drift ``|zhat(t_k) - z(t_k)| / |z(t_k)|`` of the
    backward reconstruction against the layer time ``t_k``, on a logarithmic scale (the final
    time, where the reconstruction starts and the drift is zero, is left out)."""
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    t = t.cpu()
    for i, (label, drift) in enumerate(drifts.items()):
        drift = drift.cpu()
        keep = drift > 0
        ax.semilogy(t[keep], drift[keep], color=f"C{i}", label=label)
    ax.set(xlabel="time $t$ (the reconstruction runs from $t = T$ to $t = 0$)",
           ylabel=r"$\|\hat z(t) - z(t)\| \,/\, \|z(t)\|$", title=title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    return fig


def memory_vs_depth(depths: Sequence[int], peaks: Mapping[str, Sequence[float]],
                    title: str | None = None):
    """For each named gradient method, its peak memory in bytes (converted to MiB) against the
    depth ``K``, on log-log axes."""
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for i, (label, values) in enumerate(peaks.items()):
        ax.loglog(depths, [v / MiB for v in values], "o-", color=f"C{i}", label=label)
    ax.set(xlabel="depth $K$", ylabel="peak memory (MiB)", title=title)
    ax.set_xticks(list(depths), [str(k) for k in depths])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    return fig


def layer_gradients(t: torch.Tensor, curves: Mapping[str, torch.Tensor],
                    title: str | None = None):
    """For each labelled set of networks, the norm of the discrete ``dH/dtheta + dR/dtheta``
    per layer (:func:`lib.pontryagin.hamiltonian_gradient`, :func:`lib.pontryagin.layer_norms`)
    against the layer time ``t_k``, on a logarithmic scale: one colour per label, one line per
    network (rows of a ``[S, K]`` tensor, or a single ``[K]`` curve)."""
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    t = t.cpu()
    for i, (label, values) in enumerate(curves.items()):
        values = values.detach().cpu()
        for s, row in enumerate(values.reshape(-1, values.shape[-1])):
            ax.semilogy(t, row, "o-", color=f"C{i}", alpha=0.8, markersize=4,
                        label=label if s == 0 else None)
    ax.set(xlabel="layer time $t_k$",
           ylabel=r"$\|\partial H/\partial\theta + \partial R/\partial\theta\|$", title=title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    return fig


def invariant_drift(t: torch.Tensor, invariants: Mapping[str, torch.Tensor],
                    eps: float | None = None, title: str | None = None):
    """For each labelled backward sweep, the relative change of the bilinear quantity
    ``<p^k, dz^k>`` (:func:`lib.bilinear.bilinear_invariant`) from its value at ``t_K = T``,
    ``|I_k - I_K| / |I_K|``, against ``t_k`` on a logarithmic scale (exact zeros, such as
    ``k = K`` itself, are left out).  ``eps``, if given, is drawn as a dotted line: the unit
    round-off."""
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    t = t.cpu()
    for i, (label, values) in enumerate(invariants.items()):
        values = values.detach().cpu()
        change = (values - values[-1]).abs() / values[-1].abs()
        keep = change > 0
        ax.semilogy(t[keep], change[keep], "o-", color=f"C{i}", markersize=4, label=label)
    if eps is not None:
        ax.axhline(eps, color="0.4", linestyle=":", label=r"unit round-off $\varepsilon$")
    ax.set(xlabel="layer time $t_k$",
           ylabel=r"$|I_k - I_K| \,/\, |I_K|$, $I_k = \langle p^k, \delta z^k \rangle$",
           title=title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    return fig
