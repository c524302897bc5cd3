"""What every gradient strategy shares: the gradient as a dict keyed like
``net.named_parameters()``, the checks of a call, the terminal costate ``p^K = dE/dy^K`` and
the assembly of per-layer gradients.

A strategy is an object with a ``name``; :meth:`Strategy.refusal` says why a network is
outside what it supports (``None`` when it is inside), and :meth:`Strategy.gradient` computes
the gradient of the data loss.  Every strategy accepts a network with ``S`` members: the
objective is then the sum of the members' losses, so each member's block of the gradient is
that member's own gradient, ``S`` networks as one computation.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .. import state as tree
from ..models import ODENet
from ..losses import LOSSES, per_member

Gradient = dict[str, torch.Tensor]

__all__ = ["Gradient", "Strategy", "layer_keys", "relative_difference"]


class Strategy:
    """Base class of the gradient strategies.  Subclasses set ``name``, implement
    :meth:`_compute` and may narrow :meth:`refusal`."""

    name = "strategy"

    def refusal(self, net: ODENet) -> str | None:
        """Why ``net`` is outside this strategy's reach, or ``None``."""
        return None

    def check(self, net: ODENet) -> ODENet:
        """``net`` if the strategy supports it, else a ``ValueError`` saying why."""
        if not isinstance(net, ODENet):
            raise TypeError(f"net must be a lib.models.ODENet, got {type(net).__name__}")
        reason = self.refusal(net)
        if reason is not None:
            raise ValueError(f"{self!r} does not apply to this network: {reason}")
        return net

    def value_and_gradient(self, net: ODENet, x: torch.Tensor, y: torch.Tensor,
                           loss: str = "cross_entropy") -> tuple[torch.Tensor, Gradient]:
        """The data loss ``E = L(net(x), y)`` per member (detached) and ``dE/dparameters``
        (of ``E`` summed over the members), keyed like ``net.named_parameters()``: the one
        entry point, which :func:`lib.train` calls once per iteration."""
        self.check(net)
        data_loss, x, y = setup(net, x, y, loss)
        return self._compute(net, x, y, data_loss)

    def gradient(self, net: ODENet, x: torch.Tensor, y: torch.Tensor,
                 loss: str = "cross_entropy") -> Gradient:
        """``dE/dparameters`` alone (:meth:`value_and_gradient`)."""
        return self.value_and_gradient(net, x, y, loss)[1]

    __call__ = gradient

    def costates(self, net: ODENet, x, y, loss: str = "cross_entropy") -> list:
        """The costates ``[p^0, ..., p^K]`` of a strategy that sweeps them backwards
        (:class:`~lib.gradients.OTD`, :class:`~lib.gradients.Backsolve`); the others have none."""
        raise ValueError(f"{self!r} computes no costates; use OTD(...) or Backsolve()")

    def differentiable_loss(self, net: ODENet, x, y, data_loss: Callable):
        """The data loss per member with the graph whose backward pass *is* this strategy
        (:class:`~lib.gradients.DTO`'s), or ``None`` for a strategy that computes its gradient
        itself; :func:`lib.train` then adds the regulariser to it and calls ``backward``."""
        return None

    def _compute(self, net: ODENet, x, y, data_loss: Callable) -> tuple[torch.Tensor, Gradient]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def setup(net: ODENet, x, y, loss: str) -> tuple[Callable, torch.Tensor, torch.Tensor]:
    """The data loss and the data, repeated for each member when a network with members is
    given one data set shared by all; the per-layer parameters must be all the field's."""
    if not callable(loss) and loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)} or a callable")
    x, y = per_member(net, x, y, "(x, y)", loss)
    layered = set(layer_keys(net))
    other = [name for name, _ in net.field.named_parameters(prefix="field") if name not in layered]
    if other:
        raise ValueError(f"the gradient strategies need every field parameter stacked per layer "
                         f"(in field.stacks()); {other} are not")
    return (loss if callable(loss) else LOSSES[loss]), x, y


def terminal(net: ODENet, final, y: torch.Tensor, data_loss: Callable) -> tuple:
    """The data loss per member, ``p^K = dE/dy^K`` (a state: for a pair ``(dE/dz^K, 0)``) and
    the classifier's gradient, by autograd through ``E`` alone."""
    params = dict(net.classifier.named_parameters(prefix="classifier"))
    with torch.enable_grad():
        final = tree.detached(final, requires_grad=True)
        E = data_loss(net.classifier(net.field.readout(final)), y)
        grads = torch.autograd.grad(E.sum(), (*tree.components(final), *params.values()),
                                    materialize_grads=True)
    n = len(tree.components(final))
    pK = grads[0] if isinstance(final, torch.Tensor) else tuple(grads[:n])
    return E.detach(), pK, dict(zip(params, grads[n:]))


def assemble(net: ODENet, layer_grads: list, classifier: Gradient) -> Gradient:
    """Stack the per-layer gradients ``[theta^0, ..., theta^{K-1}]`` and order the dict like
    ``net.named_parameters()``."""
    out = dict(classifier)
    for m, key in enumerate(layer_keys(net)):
        out[key] = torch.stack([g[m] for g in layer_grads])
    return {name: out[name] for name, _ in net.named_parameters()}


def autograd_gradient(net: ODENet, E: torch.Tensor) -> tuple[torch.Tensor, Gradient]:
    """``E`` detached and ``d(sum E)/dparameters`` by autograd, keyed like
    ``net.named_parameters()`` (zero for a parameter that ``E`` does not read, as in the sweeps)."""
    params = dict(net.named_parameters())
    grads = torch.autograd.grad(E.sum(), tuple(params.values()), materialize_grads=True)
    return E.detach(), dict(zip(params, grads))


def layer_keys(net: ODENet) -> list[str]:
    """The names of the per-layer parameters ``theta^k`` in a gradient dict; their gradients
    scale like ``h``, so relative differences over them measure the adjoint's error alone."""
    return [f"field.{name}" for name in net.field.stacks()]


def relative_difference(g: Gradient, reference: Gradient, keys=None) -> float:
    """``|g - g_ref| / |g_ref|`` over the entries named in ``keys`` (default: all of
    ``reference``), the norms taken over all those entries together."""
    keys = list(reference) if keys is None else list(keys)
    missing = [k for k in keys if k not in g or k not in reference]
    if missing:
        raise ValueError(f"both gradients must have the entries {missing}")
    diff = math.sqrt(sum(float((g[k] - reference[k]).square().sum()) for k in keys))
    ref = math.sqrt(sum(float(reference[k].square().sum()) for k in keys))
    return diff / ref
