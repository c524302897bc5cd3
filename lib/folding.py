"""Folding (chapter 1): the Jacobian determinant of each layer map.

A layer of a network is the map ``Phi_h(y) = y + h sum_i b_i f(Y_i; theta^k)``
(:meth:`lib.models.ODENet.layer`).  For Euler and the ResNet field ``f = sigma(A z + b)``,
``D Phi_h = I + h diag(sigma'(A z + b)) A``.  Where ``det D Phi_h < 0`` the layer reverses
orientation: it folds the space.  An injective ``C^1`` map of ``R^d`` never has a Jacobian
determinant of both signs (its local degree is constant), so a layer whose determinant takes
both signs is not a homeomorphism.  When ``h Lip f < 1`` it is one: ``Phi_h`` is bi-Lipschitz
and its inverse is the fixed point of ``z = w - h f(z)`` (Banach), and ``det D Phi_h > 0``
everywhere.  A Hamiltonian network's layers act on ``(z, p)``: their Jacobians are those of
the joined map (:func:`lib.state.on_joined`), and a symplectic layer's determinant is 1.
"""
from __future__ import annotations

import torch

from . import state as tree
from .fields import ResNetField
from .models import ODENet, single_network
from .spectra import _row_jacobians
from .validate import tensor

__all__ = ["layer_jacobians", "layer_determinants", "step_lipschitz_bounds"]


def layer_jacobians(net: ODENet, x: torch.Tensor) -> torch.Tensor:
    """``D Phi_h(z^k_n; theta^k)``, the Jacobian of the map of layer ``k`` at the state
    ``z^k_n`` of every input of ``x`` (``[n, in_features]``) that the layer acts on: shape
    ``[K, n, d, d]``.

    ``Phi_h(z; theta^k)`` is the layer map (:meth:`lib.models.ODENet.layer`), one step of size
    ``h`` of the network's explicit method for ``z' = f(z; theta^k)`` (Hairer, Norsett &
    Wanner, *Solving ODEs I*, II.1); for a pair state ``[K, n, 2 width, 2 width]``.  Its Jacobian is computed per point by reverse-mode
    differentiation of the step (``d`` backward passes for all points at once, as the step
    acts on each point alone), so any tableau and any field is covered.  For Euler and the
    ResNet field it is ``I + h diag(sigma'(A^k z + b^k)) A^k``.  One network at a time: pass
    ``net.member(s)``."""
    single_network(net, "layer_jacobians")
    tensor(x, "x")
    with torch.no_grad():
        states = net.states(x)[:-1]

    jacobians = []
    for layer, state in zip(net.layers(), states):  # each layer's map of joined states
        layer = layer.with_theta(p.detach() for p in layer.theta)
        jacobians.append(_row_jacobians(lambda y, m, like=state: tree.on_joined(m, like)(y),
                                        layer, tree.join(state)))
    return torch.stack(jacobians)


def layer_determinants(net: ODENet, x: torch.Tensor) -> torch.Tensor:
    """``det D Phi_h(z^k_n; theta^k)`` for every layer ``k`` at the states ``z^k_n`` of the inputs
    ``x`` (``[n, in_features]``) that the layer acts on: shape ``[K, n]``, the determinants of
    :func:`layer_jacobians`.  For Euler and the ResNet field it is
    ``det(I + h diag(sigma'(A^k z + b^k)) A^k)``; it is positive everywhere when
    ``h ||A^k||_2 < 1`` (:func:`step_lipschitz_bounds`), and a negative value marks a point
    where the layer folds the space (chapter 1).  One network at a time: pass ``net.member(s)``.
    """
    return torch.linalg.det(layer_jacobians(net, x))


def step_lipschitz_bounds(net: ODENet) -> torch.Tensor:
    """``h ||A^k||_2`` for every layer ``k`` of a network with the ResNet field
    ``f = sigma(A z + b)``: shape ``[K]``, or ``[K, S]`` for a network with ``S`` members.

    With ``0 <= sigma' <= 1`` (every activation of :mod:`lib.activations`) the field is
    Lipschitz with constant ``||A^k||_2``, so ``h ||A^k||_2`` bounds ``h Lip f``; where it is
    below 1 the Euler layer ``z + h f(z; theta^k)`` is a bi-Lipschitz homeomorphism of ``R^d``
    (chapter 1; Banach's fixed point theorem gives the inverse, as for the invertible ResNets
    of Behrmann et al. 2019)."""
    if not isinstance(net, ODENet):
        raise TypeError(f"net must be an ODENet, got {type(net).__name__}")
    if not isinstance(net.field, ResNetField):
        raise TypeError("step_lipschitz_bounds needs the ResNet field sigma(A z + b), got "
                        f"{type(net.field).__name__}")
    return net.h * torch.linalg.matrix_norm(net.field.linear_parts().detach(), ord=2)
