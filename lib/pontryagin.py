"""Pontryagin's maximum principle in its gradient form (chapter 2): along an optimal control
the Hamiltonian is stationary in ``theta``, ``dH/dtheta(t) = 0``; for the discrete network
the gradient of layer ``k`` divided by ``h`` is the discrete ``dH/dtheta`` at ``t_k``
(Benning et al. 2019, section 3)."""
from __future__ import annotations

from typing import Callable

import torch

from .gradients import OTD, Gradient, layer_keys
from .models import ODENet

__all__ = ["hamiltonian_gradient", "layer_norms"]


def hamiltonian_gradient(net: ODENet, x: torch.Tensor, y: torch.Tensor,
                         regulariser: Callable | None = None,
                         loss: str = "cross_entropy") -> Gradient:
    """The discrete dH/dtheta + dR/dtheta at each layer time t_k: the gradient of
    layer k divided by h, (1/h) dE_h/dtheta^k, keyed like layer_keys(net), [K, ...].

    The data part comes from the backward sweep of OTD(); it approximates
    sum_n df/dtheta(z_n(t_k); theta)^T p_n(t_k) (Benning et al. 2019, section 3).
    """
    grads = OTD().gradient(net, x, y, loss=loss)
    keys = layer_keys(net)
    out = {key: grads[key] / net.h for key in keys}
    if regulariser is None:
        return out
    with torch.enable_grad():
        R = regulariser(net)
        if not isinstance(R, torch.Tensor) or R.dim() != 0:
            raise ValueError("regulariser(net) must return a 0-dim tensor")
        stacks = [dict(net.named_parameters())[key] for key in keys]
        dR = torch.autograd.grad(R, stacks, allow_unused=True)
    for key, g in zip(keys, dR):
        if g is not None:
            out[key] = out[key] + g / net.h
    return out


def layer_norms(g: Gradient) -> torch.Tensor:
    """The Euclidean norm of each layer's entries ``[K]``, over all the stacked ``[K, ...]``
    tensors of ``g`` (e.g. :func:`hamiltonian_gradient`) together."""
    if not g or len({v.shape[0] for v in g.values()}) != 1:
        raise ValueError("g must hold stacked per-layer tensors [K, ...] with one K")
    return torch.stack([v.flatten(1).square().sum(1) for v in g.values()]).sum(0).sqrt()
