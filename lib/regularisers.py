"""The regularisers of training, one value per member, each a discretisation of a penalty on
the continuous ``theta(t)`` (piecewise constant, ``theta^k`` on ``[k h, (k+1) h)``):

- :func:`time_smoothness`: ``lam int |theta'(t)|^2 dt`` (the talk's regulariser, chapter 6);
- :func:`weight_penalty`: ``(rho / 2) (int |theta(t)|^2 dt + |w|^2 + w0^2)`` (chapter 2's
  coercive objective, and the size penalty of the deep limit).

Each returns a function ``regulariser(net)`` for :func:`lib.train`.
"""
from __future__ import annotations

from typing import Callable

import torch

from .models import ODENet
from .validate import non_negative

__all__ = ["time_smoothness", "weight_penalty"]


def time_smoothness(lam: float) -> Callable[[ODENet], torch.Tensor]:
    """The regulariser ``R_h(theta) = lam h sum_k |(theta^{k+1} - theta^k) / h|^2``,
    the talk's discretisation of ``lam int |theta'(t)|^2 dt``, over all stacked field
    parameters; one value per member."""
    non_negative(lam, "lam")

    def regulariser(net: ODENet) -> torch.Tensor:
        total = 0.0
        for theta in net.field.stacks().values():
            jumps = (theta[1:] - theta[:-1]).square()
            if net.members is not None:  # one sum per member: [K-1, S, ...] -> [S]
                jumps = jumps.transpose(0, 1).reshape(net.members, -1).sum(1)
            total = total + (jumps.sum() if net.members is None else jumps)
        return lam * total / net.h

    return regulariser


def weight_penalty(rho: float) -> Callable[[ODENet], torch.Tensor]:
    """The weight penalty ``Omega_h = (rho / 2) (h sum_k |theta^k|^2 + |w|^2 + w0^2)``, the
    discretisation of ``(rho / 2) (int_0^T |theta(t)|^2 dt + |w|^2 + w0^2)``, over all stacked
    field parameters and the classifier; one value per member.  It makes the training objective
    coercive, so that a minimiser exists, and it adds ``rho theta(t)`` to ``dH/dtheta``
    (:func:`lib.pontryagin.hamiltonian_gradient`); with ``rho = 2 mu`` it is the size
    penalty of the deep limit (:mod:`lib.deep_limit`).  For :func:`lib.train`'s ``regulariser``."""
    non_negative(rho, "rho")

    def regulariser(net: ODENet) -> torch.Tensor:
        def squares(p: torch.Tensor, member_dim: int) -> torch.Tensor:
            if net.members is None:
                return p.square().sum()
            return p.square().transpose(0, member_dim).reshape(net.members, -1).sum(1)

        field = sum(squares(p, 1) for p in net.field.stacks().values())
        classifier = sum(squares(p, 0) for p in net.classifier.parameters())
        return 0.5 * rho * (net.h * field + classifier)

    return regulariser
