"""The largest growth of perturbations through a network, beside what the spectra say.

A perturbation ``delta`` of the state ``z^0`` of an input grows through the layers by the
end-to-end Jacobian ``Phi^k = d z^k / d z^0 = D Phi_h^{k-1} ... D Phi_h^0``, the product of the
layer maps' Jacobians along the input's trajectory (:func:`lib.folding.layer_jacobians`).
The *largest* growth over all directions is its spectral norm ``|Phi^k|_2``
(:func:`largest_growth`); a perturbation in one random direction ``u`` grows by
``|Phi^k u| / |u|``, which is smaller, often by a sizeable factor.  The statements that chapter
6 tests are statements about the largest growth:

- the eigenvalues' (frozen-coefficient) prediction ``exp(int alpha(J))``
  (:func:`lib.spectra.eigenvalue_growth`) is exact for a constant normal ``J`` and fails for a
  constant non-normal one by the factor ``|e^{TJ}|_2 / e^{T alpha(J)}``; for
  ``J = [[a, c], [0, a]]`` that factor is ``c T / 2 + (1 + (c T / 2)^2)^(1/2)``
  (:func:`jordan_growth`);
- the logarithmic norm bounds it for the flow, ``|Phi(t)|_2 <= exp(int mu_2(J))`` (Dahlquist
  1959), and so does ``exp(int nu)`` with each layer's ``nu`` at least ``mu_2`` on the layer's
  states.

Measured on a network with explicit Euler steps, ``Phi^K = prod (I + h J_k)`` differs from the
flow's by the method's ``O(h)``; :func:`lib.examples.constant_network` builds the controls (a linear network
with the same ``J`` in every layer) on which that difference is known in closed form.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .models import ODENet
from .folding import layer_jacobians
from .one_sided import growth_bound
from .spectra import TrajectorySpectra, eigenvalue_growth, trajectory_spectra
from .validate import number

__all__ = ["flow_jacobians", "largest_growth", "GrowthComparison", "growth_comparison",
           "jordan_growth"]


def flow_jacobians(net: ODENet, x: torch.Tensor) -> torch.Tensor:
    """The end-to-end Jacobians ``Phi^k = d z^k / d z^0`` of a single network at the
    inputs ``x`` ``[n, in_features]``, for ``k = 0..K``: shape ``[K+1, n, d, d]``,
    ``Phi^0 = I``.  ``Phi^{k+1} = D Phi_h(z^k; theta^k) Phi^k`` by the chain rule, with
    the layer Jacobians of :func:`lib.folding.layer_jacobians` (any tableau, any
    field)."""
    steps = layer_jacobians(net, x)
    eye = torch.eye(steps.shape[-1], dtype=steps.dtype, device=steps.device)
    products = [eye.expand(steps.shape[1:])]
    for step in steps:
        products.append(step @ products[-1])
    return torch.stack(products)


def largest_growth(net: ODENet, x: torch.Tensor) -> torch.Tensor:
    """``|Phi^k|_2 = max_{delta != 0} |Phi^k delta| / |delta|``, the largest growth of an
    infinitesimal perturbation of ``z^0`` after each layer ``k = 0..K``: shape ``[K+1, n]``
    (:func:`flow_jacobians`)."""
    return torch.linalg.matrix_norm(flow_jacobians(net, x), ord=2)


class GrowthComparison(NamedTuple):
    """The growth of perturbations of each input beside what the spectra say, against the
    layer times ``t`` ``[K+1]``: ``largest`` ``[K+1, n]`` (:func:`largest_growth`),
    ``random`` ``[K+1, n]`` (``|Phi^k u| / |u|`` for one random direction ``u`` per input),
    ``eigenvalues`` ``[K+1, n]`` (:func:`lib.spectra.eigenvalue_growth` along each
    trajectory), ``log_norms`` ``[K+1, n]`` (``exp(int mu_2(J))`` along each trajectory, a
    bound on the flow's largest growth), ``bound`` ``[K+1]`` (:func:`lib.one_sided.growth_bound`
    with each layer's estimated ``nu``, the largest ``mu_2`` over its states) and the
    :class:`~lib.spectra.TrajectorySpectra` they come from."""

    t: torch.Tensor
    largest: torch.Tensor
    random: torch.Tensor
    eigenvalues: torch.Tensor
    log_norms: torch.Tensor
    bound: torch.Tensor
    spectra: TrajectorySpectra

    def log_error(self, growth: str = "largest") -> torch.Tensor:
        """``log(growth at T) - int_0^T alpha(J_n)`` per input ``[n]``, in ``e``-folds: how
        far the eigenvalues' prediction is from the ``"largest"`` (or ``"random"``) growth;
        positive where the perturbation grows more than predicted."""
        if growth not in ("largest", "random"):
            raise ValueError(f"growth must be 'largest' or 'random', got {growth!r}")
        return getattr(self, growth)[-1].log() - self.eigenvalues[-1].log()


def growth_comparison(net: ODENet, x: torch.Tensor,
                      generator: torch.Generator | None = None) -> GrowthComparison:
    """Set the largest growth of perturbations of the inputs ``x`` through ``net`` (and the
    growth in one random direction per input, drawn with ``generator``) beside the eigenvalues'
    prediction, the trajectory's log-norm bound and the estimated bound ``exp(int nu)``.  To
    compare with the flow of ``theta(t)`` rather than with the network's own steps, pass
    ``net.refined(m)``."""
    spectra = trajectory_spectra(net, x)
    jac = flow_jacobians(net, x)
    u = torch.randn(x.shape[0], jac.shape[-1], generator=generator, dtype=x.dtype)
    u = (u / u.norm(dim=-1, keepdim=True)).to(x.device)
    random = (jac @ u[:, :, None]).squeeze(-1).norm(dim=-1)
    t = net.h * torch.arange(net.depth + 1, dtype=x.dtype, device=x.device)
    return GrowthComparison(t, torch.linalg.matrix_norm(jac, ord=2), random,
                            eigenvalue_growth(spectra.alpha, net.h),
                            eigenvalue_growth(spectra.log_norm, net.h),
                            growth_bound(spectra.log_norm.amax(1), net.h), spectra)


def jordan_growth(c: float, T: float) -> float:
    """``|e^{TJ}|_2 / e^{T alpha(J)}`` for ``J = [[a, c], [0, a]]`` (any ``a``): the factor by
    which the eigenvalues' prediction underestimates the largest growth of the flow.  As
    ``e^{TJ} = e^{aT} [[1, cT], [0, 1]]`` and the larger singular value of ``[[1, b], [0, 1]]``
    is ``|b| / 2 + (1 + b^2 / 4)^(1/2)``, the factor is ``e^{asinh(|c| T / 2)}``."""
    for name, value in (("c", c), ("T", T)):
        number(value, name)
    if T < 0:
        raise ValueError(f"T must be >= 0, got {T!r}")
    b = abs(c) * T / 2
    return b + math.sqrt(1 + b * b)
