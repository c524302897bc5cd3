"""Explicit Runge--Kutta steps and fixed-step solves.

One step of an explicit method ``(a, b, c)`` with step ``h`` (Hairer, Norsett & Wanner,
*Solving ODEs I*, II.1):

    Z_i = z + h sum_{j<i} a_ij k_j,   k_i = f(t + c_i h, Z_i),   z_next = z + h sum_i b_i k_i.

A network layer is one such step with the layer's own parameters ``theta^k`` held fixed,
so the vector field of a solve is ``f(k, t, z)``: step index, time, state.  With the Euler
tableau and ``h = 1`` a step is exactly the ResNet layer ``z + f(z)``.

The stage sums are fused: each term ``h a_ij k_j`` is one ``torch.add(..., alpha=...)``
kernel and zero coefficients cost nothing.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .tableaux import ButcherTableau, get_tableau

Field = Callable[[float, torch.Tensor], torch.Tensor]
LayerField = Callable[[int, float, torch.Tensor], torch.Tensor]


def require_explicit(tableau: ButcherTableau) -> ButcherTableau:
    """Return ``tableau`` if it is explicit, else raise a ``ValueError`` saying why."""
    if not tableau.is_explicit:
        raise ValueError(
            f"tableau {tableau.name!r} is implicit (a_ij != 0 for some j >= i); "
            "the explicit stepper needs a strictly lower-triangular a")
    return tableau


def _check_step(h: float) -> float:
    if isinstance(h, torch.Tensor) or not isinstance(h, (int, float)):
        raise TypeError(f"h must be a Python number, got {type(h).__name__}")
    if not math.isfinite(h) or h == 0:
        raise ValueError(f"h must be finite and non-zero, got {h!r}")
    return float(h)


def weighted_sum(z: torch.Tensor, terms, weights, h: float) -> torch.Tensor:
    """``z + h * sum_i w_i terms_i``, one fused kernel per non-zero weight."""
    out = z
    for w, term in zip(weights, terms):
        if w != 0.0:
            out = torch.add(out, term, alpha=h * w) if out is z else out.add_(term, alpha=h * w)
    return out


def rk_step(f: Field, t: float, z: torch.Tensor, h: float, tableau: ButcherTableau) -> torch.Tensor:
    """One explicit Runge--Kutta step from ``(t, z)`` of size ``h`` for ``z' = f(t, z)``."""
    return _step(f, t, z, _check_step(h), require_explicit(get_tableau(tableau)))


def _step(f: Field, t: float, z: torch.Tensor, h: float, tableau: ButcherTableau) -> torch.Tensor:
    k: list[torch.Tensor] = []
    for i in range(tableau.stages):
        Z = weighted_sum(z, k, tableau.a[i][:i], h)
        k.append(f(t + tableau.c[i] * h, Z))
    return weighted_sum(z, k, tableau.b, h)


def rk_solve(f: LayerField, z0: torch.Tensor, h: float, steps: int, tableau,
             t0: float = 0.0, trajectory: bool = False) -> torch.Tensor:
    """``steps`` explicit RK steps of size ``h`` from ``z(t0) = z0``.

    ``f(k, t, z)`` is the vector field used during step ``k`` (a network holds its
    layer parameters ``theta^k`` fixed there).  Returns ``z^K``, or with
    ``trajectory=True`` the stacked states ``[z^0, ..., z^K]`` of shape ``[K+1, *z0.shape]``.
    """
    if not isinstance(z0, torch.Tensor):
        raise TypeError(f"z0 must be a torch.Tensor, got {type(z0).__name__}")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    tableau = require_explicit(get_tableau(tableau))
    h = _check_step(h)
    z = z0
    states = [z0]
    for k in range(steps):
        z = _step(lambda t, x, k=k: f(k, t, x), t0 + k * h, z, h, tableau)
        if trajectory:
            states.append(z)
    return torch.stack(states) if trajectory else z
