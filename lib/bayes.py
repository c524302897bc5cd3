"""The Bayes accuracy of the toy problems: the best accuracy any classifier can reach.

Every problem of :mod:`lib.data` draws a clean point ``c``, labels it by a rule on ``c`` and
only then adds Gaussian noise, ``x = c + s N(0, I)`` (``s`` in the units of ``x``: 0.5 for
donut1d, 0.2 for donut2d, 0.3 for squares, 1/5 for the spiral, times ``noise``).  Near the
boundary of the rule the two classes overlap, so no classifier is right on every point.
With the posterior ``eta(x) = P(class 1 | x)`` the best classifier predicts class 1 where
``eta > 1/2`` and its accuracy is the *Bayes accuracy*

    a* = E_x[max(eta(x), 1 - eta(x))],

and any classifier ``c(x)`` has the accuracy ``E_x[eta(x) [c = 1] + (1 - eta(x)) [c = 0]]``
(Devroye, Györfi & Lugosi 1996, section 2.1).  :func:`posterior` computes ``eta`` in closed
form or by quadrature over the clean point (``Phi`` the normal distribution function):

- donut1d, ``c_1 ~ U(-4, 4)``: ``P(|c_1| < 1 | x) = [Phi((1 - x_1)/s) - Phi((-1 - x_1)/s)]
  / [Phi((4 - x_1)/s) - Phi((-4 - x_1)/s)]``;
- donut2d, ``c = 1.2 u``, ``u ~ N(0, I)``: ``u | x ~ N(m, v I)`` with ``m = 1.2 x / (1.44 + s^2)``,
  ``v = s^2 / (1.44 + s^2)``, and ``P(|u| < 1 | x) = int_0^1 (r/v) exp(-(r^2 + |m|^2)/(2v))
  I_0(r |m| / v) dr`` (a non-central chi-square), by Gauss--Legendre quadrature;
- squares, ``c ~ U([-4, 4]^2)``: with ``q_i = P(c_i > 0 | x_i)`` (as for donut1d),
  ``P(class 0 | x) = q_1 q_2 + (1 - q_1)(1 - q_2)``;
- spiral, equal priors: the likelihood of each arm, ``int f(phi) exp(-|5x - r(phi)(cos phi,
  sin phi)|^2 / (2 noise^2)) dphi`` with ``f(phi) = phi / (2 pi^2)`` on ``[0, 2 pi]``, by the
  midpoint rule.

:func:`expected_accuracy` averages over points drawn by :mod:`lib.data` itself (Monte Carlo
over ``x``), and returns the estimate with its standard error.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np
import torch

from .data import DATASETS, make_dataset
from .validate import integer, positive

__all__ = ["NOISE_SCALE", "posterior", "Estimate", "expected_accuracy", "bayes_rule",
           "bayes_accuracy", "channel_rule"]

NOISE_SCALE = {"donut1d": 0.5, "donut2d": 0.2, "squares": 0.3, "spiral": 0.2}
"""The standard deviation ``s`` of the noise of each problem in the units of ``x``
(``noise = 1``; the spiral's unit noise is divided by 5 with its points)."""


def _check(name: str, x: torch.Tensor, noise: float) -> float:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(DATASETS)}")
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != 2 \
            or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor of points [n, 2], got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise > 0 \
            or not math.isfinite(noise):
        raise ValueError(f"noise must be a finite number > 0 (without noise the classes do "
                         f"not overlap and the Bayes accuracy is 1), got {noise!r}")
    return NOISE_SCALE[name] * noise


def _inside(x: torch.Tensor, low: float, high: float, s: float) -> torch.Tensor:
    """``P(low < c < high | x)`` for ``c ~ U(-4, 4)`` and ``x = c + s N(0, 1)``."""
    mass = lambda a, b: torch.special.ndtr((b - x) / s) - torch.special.ndtr((a - x) / s)  # noqa: E731
    return mass(low, high) / mass(-4.0, 4.0)


def _disc(x: torch.Tensor, s: float, nodes: int) -> torch.Tensor:
    """``P(|u| < 1 | x)`` for donut2d (the non-central chi-square integral)."""
    v = s * s / (1.44 + s * s)
    rho = (1.2 * x / (1.44 + s * s)).norm(dim=1, keepdim=True)
    r, w = (torch.as_tensor(a, dtype=x.dtype, device=x.device)
            for a in np.polynomial.legendre.leggauss(nodes))
    r, w = (r + 1) / 2, w / 2
    # exp(-(r^2 + rho^2)/(2v)) I_0(r rho / v) = exp(-(r - rho)^2/(2v)) i0e(r rho / v)
    density = r / v * torch.exp(-(r - rho) ** 2 / (2 * v)) * torch.special.i0e(r * rho / v)
    return (density * w).sum(1)


def _spiral(x: torch.Tensor, noise: float, nodes: int) -> torch.Tensor:
    """``P(class 1 | x)`` for the spiral: the ratio of the two arms' likelihoods."""
    phi = (torch.arange(nodes, dtype=x.dtype, device=x.device) + 0.5) * (2 * math.pi / nodes)
    log_f = torch.log(phi / (2 * math.pi ** 2))
    y = 5 * x
    logs = []
    for sign in (1.0, -1.0):
        r = sign * (2 * phi + math.pi)
        arm = torch.stack([r * torch.cos(phi), r * torch.sin(phi)], 1)    # [nodes, 2]
        logs.append(torch.logsumexp(log_f - torch.cdist(y, arm).square() / (2 * noise ** 2),
                                    1))
    return torch.sigmoid(logs[1] - logs[0])


def posterior(name: str, x: torch.Tensor, noise: float = 1.0, nodes: int | None = None,
              chunk: int = 4096) -> torch.Tensor:
    """``eta(x) = P(class 1 | x)`` ``[n]`` for the points ``x`` ``[n, 2]`` of the problem
    ``name`` with the noise level ``noise`` of :func:`lib.data.make_dataset` (> 0); ``nodes``
    quadrature nodes (default 100 Gauss--Legendre nodes for donut2d, 2000 midpoints for the
    spiral), evaluated ``chunk`` points at a time (the formulas are in the module docstring)."""
    s = _check(name, x, noise)
    if nodes is None:
        nodes = {"donut2d": 100, "spiral": 2000}.get(name, 8)
    integer(nodes, "nodes", 8)
    if name == "donut1d":
        return 1 - _inside(x[:, 0], -1.0, 1.0, s)
    if name == "squares":
        q1, q2 = (_inside(x[:, i], 0.0, 4.0, s) for i in (0, 1))
        return 1 - (q1 * q2 + (1 - q1) * (1 - q2))
    if name == "donut2d":
        return torch.cat([1 - _disc(part, s, nodes) for part in x.split(chunk)])
    return torch.cat([_spiral(part, noise, nodes) for part in x.split(chunk)])


class Estimate(NamedTuple):
    """A Monte Carlo estimate and its standard error."""

    value: float
    standard_error: float


def bayes_rule(name: str, noise: float = 1.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """The Bayes classifier of a problem: ``x -> [eta(x) > 1/2]`` (the class, ``long``)."""
    return lambda x: (posterior(name, x, noise) > 0.5).long()


def expected_accuracy(name: str, rule: Callable[[torch.Tensor], torch.Tensor],
                      n: int = 200_000, seed: int = 0, noise: float = 1.0) -> Estimate:
    """The accuracy ``E_x[eta [c = 1] + (1 - eta) [c = 0]]`` of the classifier ``rule``
    (points ``[n, 2]`` to classes ``[n]`` in ``{0, 1}``) on the problem ``name``: the mean over
    ``n`` points drawn by :func:`lib.data.make_dataset` (seed ``seed``, float64), with its
    standard error ``std / sqrt(n)``."""
    x, _ = make_dataset(name, n, seed=seed, noise=noise, dtype=torch.float64)
    eta = posterior(name, x, noise)
    c = rule(x)
    if not isinstance(c, torch.Tensor) or c.shape != eta.shape:
        raise ValueError(f"rule must map points [n, 2] to classes [n], got "
                         f"{getattr(c, 'shape', type(c).__name__)}")
    right = torch.where(c == 1, eta, 1 - eta)
    return Estimate(float(right.mean()), float(right.std() / math.sqrt(n)))


def bayes_accuracy(name: str, n: int = 200_000, seed: int = 0, noise: float = 1.0) -> Estimate:
    """The Bayes accuracy ``E_x[max(eta, 1 - eta)]`` of the problem ``name``
    (:func:`expected_accuracy` of :func:`bayes_rule`)."""
    return expected_accuracy(name, bayes_rule(name, noise), n, seed, noise)


def channel_rule(width: float, noise: float = 1.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """A donut2d classifier that a homeomorphism of the plane allows: class 0 on the Bayes
    disc ``{eta < 1/2}`` joined to infinity by the channel ``{x_1 >= 0, |x_2| <= width/2}``.
    That region is closed, connected and unbounded, with one line as its boundary, so it is
    the preimage of a half-plane under a homeomorphism of the plane (Schoenflies), unlike
    the disc alone (chapter 1, corollary thm-ch1-ring)."""
    positive(width, "width")
    bayes = bayes_rule("donut2d", noise)

    def rule(x: torch.Tensor) -> torch.Tensor:
        channel = (x[:, 0] >= 0) & (x[:, 1].abs() <= width / 2)
        return torch.where(channel, torch.zeros_like(x[:, 0], dtype=torch.long), bayes(x))
    return rule
