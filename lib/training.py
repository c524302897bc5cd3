"""Full-batch training: the discrete optimal control problem of the talk,

    min_theta  E(theta) = 1/N sum_n L_n(eta(w^T z_n^K + mu)) + R(theta),

solved by gradient descent ``theta <- theta - tau grad E`` or by Adam (Kingma & Ba 2015).

A network with members (one per seed, :class:`lib.models.ODENet`) is trained as one computation:
its objective is the sum of the members' objectives, whose gradient is each member's own
gradient, and both optimisers act entry by entry, so every member follows exactly the path it
would follow alone (to round-off).

A training step (forward, loss, backward, update) never synchronises with the host: the
objective is written into a preallocated tensor and checked for finiteness once per block of
``record_every`` steps, so on a GPU the whole step can be captured as one CUDA graph.  The
gradient is autograd's (DTO) unless another strategy is passed, e.g.
:class:`lib.gradients.OTD` for the talk's "standard procedure".
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

import torch
from tqdm.auto import tqdm

from .config import DEFAULTS
from .gradients import DTO, Strategy
from .losses import LOSSES, accuracy, per_member
from .models import ODENet
from .validate import positive, positive_int

__all__ = ["History", "train"]


@dataclass
class History:
    """What happened during training, as CPU float64 tensors with the member axis last when
    there are members: the objective ``E`` before each update ``[iterations(, S)]``, and the
    accuracies ``[records(, S)]`` after the iterations counted in ``recorded``
    (``validation_accuracy`` is ``None`` without validation data)."""

    loss: torch.Tensor
    recorded: list[int]
    train_accuracy: torch.Tensor
    validation_accuracy: torch.Tensor | None


def train(net: ODENet, X: torch.Tensor, y: torch.Tensor, *, iterations: int = DEFAULTS.iterations,
          optimizer: str | Callable[..., torch.optim.Optimizer] = DEFAULTS.optimizer,
          lr: float = DEFAULTS.lr, loss: str | Callable = DEFAULTS.loss,
          regulariser: Callable[[ODENet], torch.Tensor] | None = None,
          gradient: Strategy | None = None,
          validation: tuple[torch.Tensor, torch.Tensor] | None = None,
          record_every: int = DEFAULTS.record_every, progress: bool | None = None,
          constraint: Callable[[ODENet], None] | None = None) -> History:
    """Train ``net`` on all of ``(X, y)`` at once and return its :class:`History`.

    ``optimizer`` is ``"gd"`` (``theta <- theta - lr grad E``) or ``"adam"`` with step ``lr``, or
    a factory ``optimizer(params) -> torch.optim.Optimizer`` (e.g. an optimiser of
    :mod:`lib.optim` with its settings bound by ``functools.partial``, or :func:`lib.msa.msa`),
    which then sets its own steps (``lr`` is unused); ``loss`` a name in
    :data:`lib.losses.LOSSES`; ``regulariser(net)`` is added to the data loss.  ``gradient`` is
    the strategy of :mod:`lib.gradients` that computes the data loss's gradient (default
    :class:`~lib.gradients.DTO`, autograd), once per iteration with the loss's value, so no
    extra forward pass; the regulariser's gradient is always autograd's.  With members, the data
    may be one set per member (``[S, n, in_features]``) or one set shared by all.  Accuracies are
    recorded every ``record_every`` iterations and at the end.  ``progress`` shows a tqdm bar; by
    default only when standard error is a terminal, so notebooks never print one.

    ``loss`` may also be a callable ``loss(logits, y)`` returning one value per member.
    ``constraint(net)`` (e.g. :func:`lib.lipschitz.nonexpansive_constraint`) is applied without
    gradient before the first iteration and after every update: a projection onto a constraint
    set, so the parameters satisfy it after every step (projected gradient descent).

    Iterations are numbered from 0.  Raises ``ValueError`` naming the first iteration (and
    member) whose objective is not finite.
    """
    positive_int(iterations, "iterations")
    positive_int(record_every, "record_every")
    if not callable(loss) and loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)}")
    optimizers = {"gd": torch.optim.SGD, "adam": torch.optim.Adam}
    if not (callable(optimizer) or optimizer in optimizers):
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {sorted(optimizers)} "
                         "or a factory params -> torch.optim.Optimizer")
    positive(lr, "lr")
    strategy = DTO() if gradient is None else gradient
    if not isinstance(strategy, Strategy):
        raise TypeError(f"gradient must be a lib.gradients.Strategy such as OTD(), got "
                        f"{gradient!r}")
    strategy.check(net)
    if constraint is not None and not callable(constraint):
        raise TypeError(f"constraint must be callable as constraint(net), got {constraint!r}")
    X, y = per_member(net, X, y, "(X, y)", loss)
    if validation is not None:
        if not (isinstance(validation, (tuple, list)) and len(validation) == 2):
            raise TypeError("validation must be a pair of tensors (X, y)")
        validation = per_member(net, *validation, "validation", loss)
    data_loss = loss if callable(loss) else LOSSES[loss]
    params = dict(net.named_parameters())
    if callable(optimizer):
        opt = optimizer(list(params.values()))
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(f"optimizer(params) must return a torch.optim.Optimizer, got "
                            f"{type(opt).__name__}")
    else:
        opt = optimizers[optimizer](params.values(), lr=lr)
    members = () if net.members is None else (net.members,)
    losses = torch.empty((iterations, *members), dtype=X.dtype, device=X.device)
    show = sys.stderr.isatty() if progress is None else progress

    def objective() -> torch.Tensor:
        E = strategy.differentiable_loss(net, X, y, data_loss)
        if E is None:
            E, grads = strategy.value_and_gradient(net, X, y, loss)
            for name, p in params.items():
                p.grad = grads[name]
        return E

    def step(i: int) -> None:
        opt.zero_grad(set_to_none=True)
        E = objective()
        if regulariser is not None:
            E = E + regulariser(net)
        if E.requires_grad:
            E.sum().backward()
        opt.step()
        if constraint is not None:
            with torch.no_grad():
                constraint(net)
        losses[i] = E.detach()

    if constraint is not None:
        with torch.no_grad():
            constraint(net)
    recorded, train_acc, val_acc = [], [], []
    with tqdm(total=iterations, desc="training", leave=False, disable=not show) as bar:
        for start in range(0, iterations, record_every):
            stop = min(start + record_every, iterations)
            for i in range(start, stop):
                step(i)
            block = losses[start:stop]
            if not bool(torch.isfinite(block).all()):
                first = (~torch.isfinite(block)).nonzero()[0].tolist()
                where = f"iteration {start + first[0]}" + (
                    f" (member {first[1]}, seed {net.seeds[first[1]]})" if members else "")
                raise ValueError(f"the objective became non-finite ({block[tuple(first)].item()}) "
                                 f"at {where}; lower the learning rate lr or the step h")
            recorded.append(stop)
            train_acc.append(accuracy(net, X, y))
            if validation is not None:
                val_acc.append(accuracy(net, *validation))
            bar.update(stop - start)
    cpu = dict(dtype=torch.float64, device="cpu")
    return History(losses.to(**cpu), recorded, torch.stack(train_acc).to(**cpu),
                   torch.stack(val_acc).to(**cpu) if val_acc else None)
