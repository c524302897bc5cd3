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

from .fields import positive_int
from .models import ODENet


def refine(net: ODENet, m: int) -> ODENet:
    """The same continuous model as ``net`` (same ``T``, ``theta(t)``, field, method and
    classifier) discretised with ``m`` times as many steps: each ``theta^k`` is repeated ``m``
    times and the step becomes ``h / m``."""
    positive_int(m, "m")
    fine = copy.deepcopy(net)
    fine.field.repeat_layers(m)
    fine.depth = fine.field.layers
    fine.h = net.h / m
    return fine


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
        exact = refine(net, reference).features(x)
        return [float((refine(net, m).features(x) - exact).abs().max()) for m in refinements]
