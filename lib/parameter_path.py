"""The parameters of a network as one function of time, ``theta(t)``: the concept behind the
deep limit (chapter 6) and the non-autonomous Hamiltonian (chapter 5).

A network of depth ``K`` on ``[0, T]`` holds ``theta(t) = theta^k`` on ``[k h, (k+1) h)``
(piecewise constant, ``h = T / K``); :meth:`lib.models.ODENet.refined` samples the same path on
a finer grid.  This module reads the path (:func:`parameter_path`), measures it
(:func:`roughness`, :func:`path_distance`) and evaluates the continuous model through the
layers (:func:`theta_at`, linear between layers, and its rate :func:`theta_rate`).  Its
regulariser, ``lam int |theta'|^2``, is :func:`lib.regularisers.time_smoothness`.
"""
from __future__ import annotations

import math

import torch

from .fields import VectorField
from .models import ODENet

__all__ = ["parameter_path", "roughness", "path_distance", "theta_at", "theta_rate"]


def parameter_path(net: ODENet) -> torch.Tensor:
    """The piecewise-constant ``theta(t) = theta^k`` on ``[k h, (k+1) h)`` as a matrix: row ``k``
    holds all of layer ``k``'s field parameters flattened (in the order of
    ``net.field.stacks()``), shape ``[K, P]``, or ``[K, S, P]`` with members.  Detached."""
    K = net.depth
    batch = () if net.members is None else (net.members,)
    return torch.cat([p.detach().reshape(K, *batch, -1) for p in net.field.stacks().values()], -1)


def roughness(net: ODENet) -> torch.Tensor:
    """``sum_k |theta^{k+1} - theta^k|``, the total variation of the piecewise-constant
    ``theta(t)`` (Euclidean norm over all field parameters of a layer); one value per member.

    Unlike ``R_h`` it does not grow when a fixed ``theta(t)`` is sampled on a finer grid, so
    networks of different depth compare.  By Cauchy--Schwarz,
    ``roughness^2 <= (K - 1) sum_k |theta^{k+1} - theta^k|^2 = (K - 1) h R_h / lam``."""
    return parameter_path(net).diff(dim=0).norm(dim=-1).sum(0)


def path_distance(coarse: ODENet, fine: ODENet) -> torch.Tensor:
    """The ``L^2(0, T)`` distance between the piecewise-constant ``theta(t)`` of two networks with
    the same ``T`` and field, the depth of ``fine`` a multiple ``m K`` of that of ``coarse``:

        |theta_c - theta_f|_{L^2} = ( h_f sum_j |theta_c^{floor(j/m)} - theta_f^j|^2 )^{1/2},

    ``h_f = T / (m K)``; one value per member (both must have the same members).  The distance
    between consecutive refinements ``K -> 2K`` of trained networks measures whether training
    converges to one ``theta(t)`` as ``K -> infinity`` (Thorpe & van Gennip 2023)."""
    for name, net in (("coarse", coarse), ("fine", fine)):
        if not isinstance(net, ODENet):
            raise TypeError(f"{name} must be an ODENet, got {type(net).__name__}")
    if not math.isclose(coarse.T, fine.T, rel_tol=1e-12):
        raise ValueError(f"coarse and fine must share T, got {coarse.T:g} and {fine.T:g}")
    if fine.depth % coarse.depth:
        raise ValueError(f"the depth of fine ({fine.depth}) must be a multiple of the depth of "
                         f"coarse ({coarse.depth})")
    if coarse.members != fine.members:
        raise ValueError(f"coarse and fine must have the same members, got {coarse.members} and "
                         f"{fine.members}")
    theta_c, theta_f = parameter_path(coarse), parameter_path(fine)
    if theta_c.shape[1:] != theta_f.shape[1:]:
        raise ValueError("coarse and fine must have fields with the same parameters per layer")
    m = fine.depth // coarse.depth
    difference = theta_c.repeat_interleave(m, dim=0) - theta_f
    return (fine.h * difference.square().sum(-1).sum(0)).sqrt()


def _interpolation(field: VectorField, t: float, T: float, piece: int | None):
    """``(k, w)`` with ``t = (k + w) T / (K - 1)``: ``k`` the linear piece (clamped to
    ``0..K-2``, or ``piece`` when given, so that a step can stay on one piece up to its end)."""
    K = field.layers
    if K < 2:
        raise ValueError(f"field must have at least two layers to interpolate, got {K}")
    if isinstance(T, bool) or not isinstance(T, (int, float)) or not T > 0:
        raise ValueError(f"T must be a positive number, got {T!r}")
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        raise TypeError(f"t must be a Python number, got {type(t).__name__}")
    s = t / T * (K - 1)
    k = min(max(int(math.floor(s)), 0), K - 2) if piece is None else piece
    return k, s - k


def theta_at(field: VectorField, t: float, T: float, piece: int | None = None) -> tuple:
    """The parameters ``theta(t)`` of a continuous model through the layers of ``field``:
    linear between ``theta^k`` at ``t_k = k T / (K - 1)``, ``K = field.layers >= 2`` (with two
    layers ``theta(t) = (1 - t/T) theta^0 + (t/T) theta^1``, smooth in ``t``).  ``piece``
    chooses the linear piece ``[t_k, t_(k+1)]`` whose formula is used (default: the one that
    contains ``t``)."""
    k, w = _interpolation(field, t, T, piece)
    return tuple((1 - w) * a + w * b for a, b in zip(field.layer(k), field.layer(k + 1)))


def theta_rate(field: VectorField, t: float, T: float, piece: int | None = None) -> tuple:
    """``d theta / dt`` of :func:`theta_at` on its linear piece."""
    k, _ = _interpolation(field, t, T, piece)
    rate = (field.layers - 1) / T
    return tuple(rate * (b - a) for a, b in zip(field.layer(k), field.layer(k + 1)))
