"""The deep limit: a trained network as a time discretisation of one continuous model.

A network of depth ``K`` and final time ``T`` holds piecewise-constant parameters
``theta(t) = theta^k`` for ``t`` in ``[k h, (k+1) h)``, ``h = T/K``.  Refining it by ``m`` keeps
``theta(t)`` and ``T`` and takes ``m`` steps of size ``h/m`` per layer; as ``m`` grows the
features ``z^K`` converge to the exact flow of ``z' = f(z; theta(t))`` at the order ``p`` of the
Runge--Kutta method (Benning et al. 2019, section 3; Hairer, Norsett & Wanner, II.3).
"""
from __future__ import annotations

import copy
import math
from typing import Sequence

import torch

from .losses import cross_entropy
from .models import ODENet
from .parameter_path import path_distance
from .regularisers import time_smoothness, weight_penalty
from .training import train


def objective(net: ODENet, X: torch.Tensor, y: torch.Tensor, lam: float,
              size: float) -> torch.Tensor:
    """The deep limit's objective ``E_K(theta) = cross-entropy + R_h(theta) + size penalty``
    (:func:`lib.regularisers.time_smoothness` of weight ``lam``; the size penalty
    ``size (h sum_k |theta^k|^2 + |w|^2 + w0^2)``, which is
    :func:`lib.regularisers.weight_penalty` of weight ``2 size``) at the current parameters;
    one value per member."""
    with torch.no_grad():
        return (cross_entropy(net(X), y) + time_smoothness(lam)(net)
                + weight_penalty(2 * size)(net))


def path_steps(net: ODENet, X: torch.Tensor, y: torch.Tensor, m: int, optimizer: str,
               lr: float, iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """How far ``iterations`` steps of ``optimizer`` (``"gd"`` or ``"adam"``, rate ``lr``, data
    loss only) move ``theta(t)`` in ``L^2(0, T)`` (:func:`lib.parameter_path.path_distance`), from
    ``net`` and from the same ``theta(t)`` on an ``m`` times finer grid (:meth:`~lib.models.ODENet.refined`):
    ``(coarse, fine)``, one value per member.  The gradient of layer ``k`` is ``h`` times the
    ``L^2`` gradient at ``t_k``, so with a fixed rate gradient descent moves the fine network
    about ``m`` times less; Adam's steps do not depend on the scale of the gradient."""
    moved = []
    for start in (net, net.refined(m)):
        trained = copy.deepcopy(start)
        train(trained, X, y, iterations=iterations, optimizer=optimizer, lr=lr,
              record_every=iterations)
        moved.append(path_distance(start, trained))
    return moved[0], moved[1]


def observed_order(steps: Sequence[float], errors: Sequence[float]) -> float:
    """The slope ``p`` of the least-squares line ``log(error) = p log(h) + c``: the measured
    order of convergence of errors that behave like ``C h^p``."""
    if len(steps) != len(errors) or len(steps) < 2:
        raise ValueError("steps and errors must be sequences of the same length >= 2")
    if min(steps) <= 0 or min(errors) <= 0:
        raise ValueError("steps and errors must be positive to be fitted on a log-log scale")
    x = [math.log(h) for h in steps]
    v = [math.log(e) for e in errors]
    mx, mv = sum(x) / len(x), sum(v) / len(v)
    return sum((a - mx) * (b - mv) for a, b in zip(x, v)) / sum((a - mx) ** 2 for a in x)


def feature_convergence(net: ODENet, x: torch.Tensor, refinements: Sequence[int],
                        reference: int) -> list[float]:
    """``max_n |z^K_m(x_n) - z^K_ref(x_n)|`` for each refinement ``m``: the distance of the final
    features from those of a much finer discretisation (``reference`` steps per layer)."""
    with torch.no_grad():
        exact = net.refined(reference).features(x)
        return [float((net.refined(m).features(x) - exact).abs().max()) for m in refinements]
