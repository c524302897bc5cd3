"""Figures for Hamiltonian networks (chapter 5): energy errors over long runs, phase portraits,
the extended phase space of a non-autonomous Hamiltonian, the reconstruction error of the
inverse network and the memory of the gradients against the depth."""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
from matplotlib.ticker import NullFormatter

from ..hamiltonian import EnergyRun, ExtendedRun
from ..one_sided import PerturbationGrowth
from .style import panels


def _log_axes(ax, xlabel: str, ylabel: str, title: str | None = None) -> None:
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(True, which="major", alpha=0.3)


def _depth_ticks(ax, depths: Sequence[int]) -> None:
    """Label the log-scaled depth axis at the depths measured, and nowhere else."""
    ax.set_xticks(list(depths), [str(K) for K in depths])
    ax.xaxis.set_minor_formatter(NullFormatter())


def energy_errors(runs: Mapping[str, EnergyRun], linear: Sequence[str] = ()):
    """Left: the largest ``|H(z^k, p^k) - H(z^0, p^0)|`` over the initial points of each named
    run against time, on a logarithmic scale.  Right (when ``linear`` names runs): the signed
    error of the first initial point of those runs on a linear scale, where a bounded
    oscillation and a drift look different."""
    fig, axes = panels(2 if linear else 1, height=2.8)
    for i, (name, run) in enumerate(runs.items()):
        error = run.error.abs().amax(1).cpu()
        axes[0].semilogy(run.t.cpu()[1:], error[1:], color=f"C{i}", lw=1.0, label=name)
    _log_axes(axes[0], "time $t$", r"$\max\,|H - H_0|$")
    if linear:
        for i, (name, run) in enumerate(runs.items()):
            if name in linear:
                axes[1].plot(run.t.cpu(), run.error[:, 0].cpu(), color=f"C{i}", lw=0.6)
        axes[1].axhline(0.0, color="0.6", lw=0.8)
        _log_axes(axes[1], "time $t$", "$H - H_0$ (first point)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center",
               ncol=len(runs))
    return fig


def phase_portraits(runs: Mapping[str, EnergyRun], energy: Callable, steps: int | None = None,
                    limits: tuple[float, float] = (-3.0, 3.0)):
    """One panel per named run of a system with one degree of freedom: the orbits ``(z^k, p^k)``
    of each initial point (the first ``steps`` kept states, joined by lines), over the level
    sets of ``H`` (``energy(z, p)`` on a grid, thin grey lines) through the initial points."""
    fig, axes = panels(len(runs), height=2.4, sharey=True)
    grid = torch.linspace(*limits, 201, dtype=torch.float64)
    Zg, Pg = torch.meshgrid(grid, grid, indexing="xy")
    Hg = energy(Zg.reshape(-1, 1), Pg.reshape(-1, 1)).reshape(Zg.shape)
    first = next(iter(runs.values()))
    levels = sorted(set(float(v) for v in energy(first.z[0].cpu().double(),
                                                first.p[0].cpu().double())))
    for ax, (name, run) in zip(axes, runs.items()):
        ax.contour(Zg, Pg, Hg, levels=levels, colors="0.7", linewidths=0.8)
        z, p = run.z[:steps].cpu(), run.p[:steps].cpu()
        for j in range(z.shape[1]):
            ax.plot(z[:, j, 0], p[:, j, 0], "-", lw=0.7, color=f"C{j}")
        ax.set(title=name, xlabel="$z$", ylabel="$p$", xlim=limits, ylim=limits,
               aspect="equal")
    return fig


def extended_phase_space(run: ExtendedRun, starts: Sequence[str] | None = None):
    """Left: ``H(t, z(t), p(t)) - H(0)`` (solid, one colour per initial point, named in the
    legend by ``starts``) and ``-p_t(t)`` (dashed): ``H`` changes along the flow and ``p_t``
    records the change.  Right: the drift of the extended Hamiltonian ``|K(t) - K(0)|``,
    ``K = H + p_t``, largest over the initial points, on a logarithmic scale."""
    points = run.H.shape[1]
    starts = [f"point {j + 1}" for j in range(points)] if starts is None else list(starts)
    if len(starts) != points:
        raise ValueError(f"starts must name the {points} initial points, got {len(starts)}")
    fig, axes = panels(2, height=2.6)
    t = run.t.cpu()
    for j in range(points):
        axes[0].plot(t, (run.H[:, j] - run.H[0, j]).cpu(), color=f"C{j}", lw=1.4,
                     label=f"$H(t) - H(0)$, {starts[j]}")
        axes[0].plot(t, -run.p_t[:, j].cpu(), color="k", ls="--", lw=0.8)
    axes[0].plot([], [], color="k", ls="--", label="$-p_t(t)$")
    axes[0].set(xlabel="time $t$", ylabel="change of $H$")
    axes[0].legend(loc="upper left")
    drift = (run.K - run.K[:1]).abs().amax(1).cpu()
    axes[1].semilogy(t[1:], drift[1:], color="C3")
    _log_axes(axes[1], "time $t$", r"$\max\,|K(t) - K(0)|$")
    return fig


def reconstruction_errors(depths: Sequence[int], errors: Mapping[str, Sequence[float]],
                          units: Mapping[str, float]):
    """The largest reconstruction error ``|x - Phi^(-1)(Phi(x))|`` against the depth ``K`` on
    log-log axes, one line per named precision, each beside the line ``K eps`` of its unit
    roundoff ``units[name]`` (dotted)."""
    fig, axes = panels(1, height=2.8)
    ax = axes[0]
    for i, (name, values) in enumerate(errors.items()):
        ax.loglog(depths, values, "o-", color=f"C{i}", label=name)
        ax.loglog(depths, [K * units[name] for K in depths], ":", color=f"C{i}",
                  label=rf"$K\varepsilon$, {name}")
    _log_axes(ax, "depth $K$", "largest reconstruction error")
    _depth_ticks(ax, depths)
    ax.legend(loc="center right", ncol=2)
    return fig


def growth_factors(runs: Mapping[str, PerturbationGrowth]):
    """The growth ``|z_2(t_k) - z_1(t_k)| / |z_2(0) - z_1(0)|`` of input perturbations through
    each named network (a :class:`lib.one_sided.PerturbationGrowth`): the largest (solid),
    median (thin) and smallest (dashed) factor over the inputs after each layer, log scale."""
    fig, axes = panels(1, height=2.8)
    ax = axes[0]
    for i, (name, g) in enumerate(runs.items()):
        t, factor = g.t.cpu(), g.factor.cpu()
        ax.semilogy(t, factor.amax(1), color=f"C{i}", lw=1.8, label=f"{name}: largest")
        ax.semilogy(t, factor.median(1).values, color=f"C{i}", lw=0.8, label="median")
        ax.semilogy(t, factor.amin(1), color=f"C{i}", lw=1.0, ls="--", label="smallest")
    ax.axhline(1.0, color="0.6", lw=0.8)
    _log_axes(ax, "time $t$", "growth of a perturbation")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=3)
    return fig


def inversion_growth(points: Mapping[str, tuple], unit: float):
    """The reconstruction error of each input (``y``) against the worst-direction growth
    ``max_k ||dy^k/dy^0||_2`` along its trajectory (``x``), log-log, one colour per named
    group ``{name: (growth, error)}``, beside the line ``error = unit * growth`` (dashed):
    round-off of size ``unit`` amplified by the inverse flow."""
    fig, axes = panels(1, height=2.8)
    ax = axes[0]
    low, high = float("inf"), 0.0
    for i, (name, (growth, error)) in enumerate(points.items()):
        growth, error = torch.as_tensor(growth).cpu(), torch.as_tensor(error).cpu()
        ax.loglog(growth, error, ".", ms=3, color=f"C{i}", label=name)
        low, high = min(low, float(growth.min())), max(high, float(growth.max()))
    ax.loglog([low, high], [unit * low, unit * high], "k--", lw=0.8,
              label=r"$\varepsilon\,\max_k \|\partial y^k/\partial y^0\|_2$")
    _log_axes(ax, r"growth $\max_k \|\partial y^k/\partial y^0\|_2$",
              "reconstruction error")
    ax.legend(loc="upper left")
    return fig
