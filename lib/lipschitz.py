"""Lipschitz bounds of explicit Euler networks, and the step constraint that makes the
gradient network non-expansive (chapter 8).

One explicit Euler step of the gradient field ``f = -A^T sigma(A z + b)`` (:class:`
lib.fields.GradientField`) is ``Phi(z) = z - h A^T sigma(A z + b)``, the gradient step
``z - h grad V(z)`` of the convex potential ``V(z) = sum_i gamma((A z + b)_i)``
(``gamma' = sigma``, ``0 <= sigma' <= 1``).  Its Jacobian ``I - h A^T D A`` is symmetric with
eigenvalues ``1 - h omega``, ``omega`` in ``[0, ||A||_2^2]``, so

    Lip(Phi) <= max(1, h ||A||_2^2 - 1),

which is 1 exactly when ``h ||A||_2^2 <= 2`` (Sherry et al. 2024, Physica D 463, Theorem 3.2;
Celledoni et al. 2023, SIAM J. Sci. Comput.).  A ResNet layer ``z + h sigma(A z + b)`` has
the bound ``1 + h ||A||_2`` (:func:`lib.folding.step_lipschitz_bounds`), above 1 whenever
``A != 0``.  A network ``x -> W Phi_K(... Phi_1(P x))`` is Lipschitz with the product of the
bounds of its lift ``P``, its layers and its read-out ``W`` (each ``||.||_2``).

:func:`nonexpansive_constraint` keeps ``h ||A^k||_2^2 <= limit`` (``limit = 2`` for
non-expansive layers) and ``||P||_2, ||W||_2 <= 1`` by rescaling after every optimiser step
(:func:`lib.train`'s ``constraint``), as spectral normalisation does (Miyato et al.
2018), with the exact largest singular value.  :func:`lipschitz_estimate` searches for the
largest quotient ``|F(x) - F(x')| / |x - x'|`` by gradient ascent, a lower estimate of the
Lipschitz constant.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .fields import GradientField, ResNetField
from .folding import step_lipschitz_bounds
from .models import ODENet
from .validate import positive, positive_int

__all__ = ["spectral_norms", "scale_to_norm", "nonexpansive_constraint", "layer_bounds",
           "network_bound", "lipschitz_estimate", "step_quotients"]


def spectral_norms(M: torch.Tensor) -> torch.Tensor:
    """The largest singular value ``||M||_2`` of each matrix in a stack ``[..., m, n]``."""
    if not isinstance(M, torch.Tensor) or M.dim() < 2:
        raise ValueError("M must be a tensor of matrices [..., m, n]")
    return torch.linalg.matrix_norm(M.detach(), ord=2)


def scale_to_norm(M: torch.Tensor, bound: float) -> None:
    """Rescale in place every matrix of ``M [..., m, n]`` whose ``||.||_2`` exceeds ``bound``
    to norm ``bound``; the others are left alone."""
    M.mul_((bound / spectral_norms(M)).clamp(max=1.0)[..., None, None])


def _euler_net(net, fields) -> ODENet:
    if not isinstance(net, ODENet):
        raise TypeError(f"net must be an ODENet, got {type(net).__name__}")
    if not isinstance(net.field, fields):
        raise TypeError(f"net.field must be one of {[f.__name__ for f in fields]}, got "
                        f"{type(net.field).__name__}")
    if net.tableau.name != "euler":
        raise ValueError(f"the bounds hold for explicit Euler layers, got {net.tableau.name!r}")
    return net


def _readout(net: ODENet) -> torch.Tensor:
    """The read-out as matrices ``[(S,) rows, width]`` (one row for two classes)."""
    return net.classifier.matrix()


def nonexpansive_constraint(limit: float = 2.0, readout: bool = True
                            ) -> Callable[[ODENet], None]:
    """The constraint for :func:`lib.train`: after it, every layer of the gradient
    network has ``h ||A^k||_2^2 <= limit``, the linear lift ``||P||_2 <= 1`` and, with
    ``readout``, the read-out ``||W||_2 <= 1`` (a 1-Lipschitz read-out).  ``limit = 2``
    makes every layer non-expansive; above 2 a layer may expand by ``limit - 1``."""
    positive(limit, "limit")

    def constraint(net: ODENet) -> None:
        _euler_net(net, (GradientField,))
        scale_to_norm(net.field.linear_parts(), math.sqrt(limit / net.h))
        if net.linear_lift is not None:
            scale_to_norm(net.linear_lift.matrix(), 1.0)
        if readout:
            scale_to_norm(_readout(net), 1.0)

    return constraint


def layer_bounds(net: ODENet) -> torch.Tensor:
    """The Lipschitz bound of every explicit Euler layer, ``[K]`` (``[K, S]`` with
    members): ``max(1, h ||A^k||^2 - 1)`` for the gradient field, ``1 + h ||A^k||`` for
    the ResNet field (``0 <= sigma' <= 1``)."""
    _euler_net(net, (GradientField, ResNetField))
    if isinstance(net.field, ResNetField):
        return 1 + step_lipschitz_bounds(net)
    step = net.h * spectral_norms(net.field.linear_parts()).square()
    return (step - 1).clamp(min=1.0)


def network_bound(net: ODENet) -> torch.Tensor:
    """The bound ``||W||_2 prod_k Lip(Phi_k) ||P||_2`` on the Lipschitz constant of the
    logits ``x -> F(x)`` in the Euclidean norm (``||P|| = 1`` for the zero-padding lift); a
    0-dim tensor, or ``[S]`` with members."""
    bound = layer_bounds(net).prod(0) * spectral_norms(_readout(net))
    if net.linear_lift is not None:
        bound = bound * spectral_norms(net.linear_lift.matrix())
    return bound


def lipschitz_estimate(F: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                       steps: int = 100, lr: float = 0.01, radius: float = 0.1,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """The largest quotient ``|F(x1) - F(x2)| / |x1 - x2|`` found by Adam ascent on the pairs,
    started from ``x1 = x`` and ``x2 = x + radius u`` (``u`` uniform on the unit sphere, drawn
    from ``generator``), over all pairs and all ``steps`` iterates: a lower estimate of the
    Lipschitz constant of ``F`` (``x [(S,) n, d]``, ``F`` acting on the last axis; the
    result is one value per leading batch index, ``[S]``, or 0-dim)."""
    positive_int(steps, "steps")
    if not isinstance(x, torch.Tensor) or x.dim() not in (2, 3):
        raise ValueError("x must be a tensor [n, d] or [S, n, d]")
    u = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    x1 = x.detach().clone().requires_grad_(True)
    x2 = (x.detach() + radius * u / u.norm(dim=-1, keepdim=True)).requires_grad_(True)
    opt = torch.optim.Adam([x1, x2], lr=lr)
    best = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
    for step in range(steps + 1):
        quotient = (F(x1) - F(x2)).norm(dim=-1) / (x1 - x2).norm(dim=-1)
        best = torch.maximum(best, quotient.detach())
        if step == steps:
            break
        opt.zero_grad()
        (-quotient.sum()).backward()
        opt.step()
    return best.amax(-1)


def step_quotients(net: ODENet, pairs: int = 4000, scale: float = 0.1,
                   separation: float = 1e-3, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
    """``|Phi(z1) - Phi(z2)| / |z1 - z2|`` of the first layer ``Phi`` of ``net`` on
    ``pairs`` random pairs: ``z1 ~ scale N(0, I)``, ``z2 = z1 + separation N(0, I)``, drawn on
    the CPU from ``generator`` and moved to the network's device.  A lower estimate of
    ``Lip(Phi)`` near the origin; ``[pairs]``."""
    positive_int(pairs, "pairs")
    like = next(net.parameters())
    z1 = scale * torch.randn(pairs, net.width, generator=generator, dtype=like.dtype)
    z2 = z1 + separation * torch.randn(pairs, net.width, generator=generator, dtype=like.dtype)
    z1, z2 = z1.to(like.device), z2.to(like.device)
    with torch.no_grad():
        layer = net.layer(0)
        return (layer(z1) - layer(z2)).norm(dim=1) / (z1 - z2).norm(dim=1)
