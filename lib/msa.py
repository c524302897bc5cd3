"""Training by the maximum principle: the method of successive approximations (chapter 7).

The network ``z^{k+1} = Phi_h(z^k; theta^k)`` with the data loss ``E`` has the costates
``p^k = dE/dz^k`` of :func:`lib.bilinear.costates` (lib's sign: Pontryagin's costate is
``-p``).  With ``lambda_n = n p_n``, the costate of point ``n``'s own loss, the discrete
maximum principle (Li, Chen, Tai & E, JMLR 2018, Theorem 3) says that at an optimum each
``theta^k`` maximises the layer's Hamiltonian

    H_k(theta) = -1/n sum_n < lambda_n^{k+1}, Phi_h(z_n^k; theta) >.

The *method of successive approximations* (MSA) iterates: sweep forward for ``z``, backward
for ``p``, then set every ``theta^k`` to a maximiser of ``H_k`` (:func:`maximise_hamiltonian`).
Basic MSA can overshoot, because a maximiser far from the current ``theta`` invalidates the
states and costates it was computed from.  The *extended* MSA (E-MSA) maximises the augmented
Hamiltonian

    H~_k(theta) = H_k(theta) - rho / (2n) sum_n ( |z_n^{k+1} - Phi_h(z_n^k; theta)|^2
                                  + |lambda_n^k - d_z < lambda_n^{k+1}, Phi_h(z_n^k; theta) >|^2 ),

which penalises the violation of the state and costate equations.  For continuous weights the
maximisation is a few steps of gradient ascent (its first step is exactly a gradient descent
step on ``E``).  For a field linear in binary weights ``A in {-1, +1}`` (:class:`BinaryField`)
``H_k`` is linear in ``A`` and its maximiser is a sign (Li & Hao, ICML 2018):
:func:`sign_rule`, with the E-MSA penalty in its proximal form ``-rho |A - A_old|^2 / 2``.

:func:`msa` gives a strategy for :func:`lib.train`'s ``optimizer``; the classifier's
parameters, outside the layers, take a gradient step of size ``lr``.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from .bilinear import costates
from .fields import VectorField, draw_normal, member_generators
from .losses import LOSSES
from .models import ODENet
from .validate import flag, non_negative, positive, positive_int

__all__ = ["BinaryField", "layer_maps", "augmented_hamiltonian", "maximise_hamiltonian",
           "sign_rule", "MSA", "msa", "StraightThrough"]


class BinaryField(VectorField):
    """``f(z; A) = A sigma(z) / sqrt(d)`` with ``A^k in {-1, +1}^{d x d}``, drawn as the signs
    of ``N(0, 1)`` entries: a field linear in its weights, so that the layer's Hamiltonian is
    linear in ``A`` (Li & Hao 2018)."""

    theta_names = ("A",)

    def __init__(self, width: int, layers: int, activation: str = "tanh", generator=None):
        super().__init__(width, layers, activation, generator)
        gens, S = member_generators(generator)
        self.A = nn.Parameter(draw_normal(gens, S, (layers, width, width), 1.0, 1).sign())

    def signs(self) -> torch.Tensor:
        """The weights ``A^k in {-1, +1}^{d x d}``, stacked ``[K, (S,) d, d]`` (the parameter
        itself, for :class:`StraightThrough`'s ``binary``)."""
        return self.A

    def forward(self, z: torch.Tensor, theta: tuple[torch.Tensor]) -> torch.Tensor:
        (A,) = theta
        return torch.matmul(self.sigma(z), A.mT) / math.sqrt(self.width)


def layer_maps(net: ODENet, states: torch.Tensor, thetas) -> torch.Tensor:
    """``Phi_h(z^k; theta^k)`` for all layers at once: ``states`` ``[K, n, d]`` holds ``z^k``,
    ``thetas`` the stacked ``[K, ...]`` parameters; the layers are the batch of one step of
    the network's own field and tableau (:meth:`lib.models.ODENet.batched_layers`)."""
    return net.batched_layers(thetas)(states)


def augmented_hamiltonian(net: ODENet, states: torch.Tensor, lam: torch.Tensor, thetas,
                          rho: float) -> torch.Tensor:
    """``sum_k H~_k(theta^k)`` of the module docstring for stacked ``thetas``, from the
    states ``[z^0..z^K]`` and the per-point costates ``lam = n p`` ``[K+1, n, d]``;
    ``rho = 0`` is the plain ``sum_k H_k``."""
    z, z_next, lam_k, lam_next = states[:-1], states[1:], lam[:-1], lam[1:]
    with torch.enable_grad():
        z = z.detach().requires_grad_(rho > 0)
        phi = layer_maps(net, z, thetas)
        n = z.shape[-2]
        H = -(lam_next * phi).sum() / n
        if rho == 0:
            return H
        (dz,) = torch.autograd.grad(phi, z, lam_next, create_graph=True)
        violation = (z_next - phi).square().sum() + (lam_k - dz).square().sum()
        return H - rho / (2 * n) * violation


def maximise_hamiltonian(net: ODENet, states: torch.Tensor, lam: torch.Tensor,
                         rho: float, steps: int, lr: float) -> list[torch.Tensor]:
    """Maximise ``sum_k H~_k`` over the stacked layer parameters by ``steps`` steps of
    gradient ascent of size ``lr``, from the network's current ones; the layers decouple
    (the states and costates are held fixed), so all are maximised at once.  Returns the
    new stacked parameters."""
    thetas = [p.detach().clone() for p in net.field.stacks().values()]
    for _ in range(steps):
        with torch.enable_grad():
            leaves = [t.requires_grad_(True) for t in thetas]
            H = augmented_hamiltonian(net, states, lam, leaves, rho)
            grads = torch.autograd.grad(H, leaves)
        thetas = [t.detach() + lr * g for t, g in zip(leaves, grads)]
    return thetas


def sign_rule(M: torch.Tensor, A_old: torch.Tensor, rho: float = 0.0) -> torch.Tensor:
    """The maximiser over ``A in {-1, +1}`` (entry by entry) of
    ``<A, M> - rho |A - A_old|^2 / 2 = <A, M + rho A_old> + const``:
    ``sign(M + rho A_old)``, keeping ``A_old`` where that is zero.  With ``M = dH_k/dA``
    this maximises the layer's Hamiltonian exactly when ``H_k`` is linear in ``A``
    (:class:`BinaryField`)."""
    score = M + rho * A_old
    return torch.where(score == 0, A_old, score.sign())


class MSA(torch.optim.Optimizer):
    """One iteration of the MSA as a ``torch.optim.Optimizer`` over ``net``'s parameters, for
    :func:`lib.train`.  ``step()`` sweeps forward for ``[z^0..z^K]`` and backward for
    the exact costates (:func:`lib.bilinear.costates`), then sets the layer parameters to the
    maximiser of the (augmented, ``rho > 0``) Hamiltonian: by ``inner_steps`` steps of
    gradient ascent of size ``inner_lr``, or, with ``binary``, by :func:`sign_rule`.  The
    classifier takes a gradient step ``lr`` with the gradient ``train`` left in ``.grad``."""

    def __init__(self, net: ODENet, X: torch.Tensor, y: torch.Tensor, *, loss: str, lr: float,
                 rho: float = 0.0, inner_steps: int = 10, inner_lr: float = 0.1,
                 binary: bool = False):
        if not isinstance(net, ODENet) or net.members is not None:
            raise TypeError("net must be a single lib.models.ODENet (no members)")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)}")
        positive(lr, "lr"), positive(inner_lr, "inner_lr"), non_negative(rho, "rho")
        positive_int(inner_steps, "inner_steps"), flag(binary, "binary")
        super().__init__(net.classifier.parameters(), dict(lr=float(lr)))
        self.net, self.X, self.y, self.loss = net, X, y, loss
        self.rho, self.inner_steps, self.inner_lr = float(rho), inner_steps, float(inner_lr)
        self.binary = binary

    @torch.no_grad()
    def step(self, closure=None):
        net = self.net
        states = net.trajectory(self.X)
        lam = costates(net, self.X, self.y, loss=self.loss) * self.X.shape[0]
        if self.binary:
            new = self._binary(states, lam)
        else:
            new = maximise_hamiltonian(net, states, lam, self.rho, self.inner_steps,
                                       self.inner_lr)
        for p, value in zip(net.field.stacks().values(), new):
            p.copy_(value)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    raise ValueError("MSA needs the classifier's gradient in .grad "
                                     "(lib.train leaves it there)")
                p.sub_(group["lr"] * p.grad)

    def _binary(self, states, lam):
        stacks = [p.detach() for p in self.net.field.stacks().values()]
        with torch.enable_grad():
            leaves = [t.clone().requires_grad_(True) for t in stacks]
            grads = torch.autograd.grad(augmented_hamiltonian(self.net, states, lam, leaves, 0.0),
                                        leaves)
        return [sign_rule(M, A, self.rho) for M, A in zip(grads, stacks)]


def msa(net: ODENet, X: torch.Tensor, y: torch.Tensor, **options) -> Callable:
    """The strategy for ``lib.train(net, X, y, optimizer=msa(net, X, y, ...))``: a
    factory ``params -> MSA(net, X, y, **options)`` (``options`` as :class:`MSA`'s)."""
    def make(params) -> MSA:
        return MSA(net, X, y, **options)
    return make


class StraightThrough(torch.optim.Optimizer):
    """The straight-through estimator for binary weights (Courbariaux et al. 2015): latent real
    weights ``W`` take Adam steps with the gradient at ``A = sign(W)``, and the network holds
    ``sign(W)``.  Parameters in ``binary`` are binarised; the others take plain Adam steps."""

    def __init__(self, params, binary, lr: float):
        positive(lr, "lr")
        params = list(params)
        binary_ids = {id(p) for p in binary}
        if not binary_ids or not binary_ids <= {id(p) for p in params}:
            raise ValueError("binary must name some of the parameters being optimised")
        self.pairs = [(p, p.detach().clone()) for p in params if id(p) in binary_ids]
        others = [p for p in params if id(p) not in binary_ids]
        latent = [w.requires_grad_(True) for _, w in self.pairs]
        super().__init__(params, dict(lr=lr))
        self.inner = torch.optim.Adam(latent + others, lr=lr)

    @torch.no_grad()
    def step(self, closure=None):
        for p, w in self.pairs:
            w.grad = None if p.grad is None else p.grad.clone()
        self.inner.step()
        for p, w in self.pairs:
            p.copy_(torch.where(w == 0, p, w.sign()))
