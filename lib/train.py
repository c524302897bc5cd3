"""Full-batch training: the discrete optimal control problem of the talk,

    min_theta  E(theta) = 1/N sum_n L_n(eta(w^T z_n^K + mu)) + R(theta),

solved by gradient descent ``theta <- theta - tau grad E`` or by Adam (Kingma & Ba 2015).

A training step (forward, loss, backward, update) never synchronises with the host: the
loss is written into a preallocated tensor and checked for finiteness once per block of
``record_every`` steps, so on a GPU the whole step can be captured as one CUDA graph.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from .models import ODENet


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy: with one logit ``-[y log s + (1-y) log(1-s)]``, ``s = sigmoid``;
    with several, ``-log softmax(logits)_y``."""
    if logits.dim() == 1:
        return F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype))
    return F.cross_entropy(logits, y)


def least_squares(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean of ``1/2 |eta - y|^2`` with ``eta`` the sigmoid (one logit) or the softmax and
    ``y`` the label (one-hot for several classes): the loss of Benning et al. (2019)."""
    if logits.dim() == 1:
        return 0.5 * (torch.sigmoid(logits) - y.to(logits.dtype)).square().mean()
    onehot = F.one_hot(y, logits.shape[1]).to(logits.dtype)
    return 0.5 * (torch.softmax(logits, 1) - onehot).square().sum(1).mean()


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cross_entropy": cross_entropy, "least_squares": least_squares}
"""The data losses by name."""


def accuracy(net: ODENet, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of correctly classified points, as a 0-dim tensor (no host synchronisation)."""
    with torch.no_grad():
        return (net.predict(X) == y).to(X.dtype).mean()


def time_smoothness(lam: float) -> Callable[[ODENet], torch.Tensor]:
    """The regulariser ``R_h(theta) = lam h sum_k |(theta^{k+1} - theta^k) / h|^2`` (the talk's
    discretisation of ``lam int |theta'(t)|^2 dt``), over all stacked field parameters."""
    if not (isinstance(lam, (int, float)) and lam >= 0):
        raise ValueError(f"lam must be a number >= 0, got {lam!r}")

    def regulariser(net: ODENet) -> torch.Tensor:
        total = 0.0
        for name in net.field.theta_names:
            theta = getattr(net.field, name)
            total = total + (theta[1:] - theta[:-1]).square().sum() / net.h
        return lam * total

    return regulariser


@dataclass
class History:
    """What happened during training: the objective ``E`` at every iteration, and the
    accuracies at the recorded iterations (``validation_accuracy`` is empty without
    validation data)."""

    loss: list[float] = field(default_factory=list)
    recorded: list[int] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    validation_accuracy: list[float] = field(default_factory=list)


def check_data(net: ODENet, X, y, name: str) -> None:
    """Raise a clear error unless ``X`` is ``[n, in_features]`` and ``y`` holds ``n`` class labels
    of ``net``; ``name`` says which argument is meant."""
    if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must be a pair of tensors (X, y)")
    if X.dim() != 2 or X.shape[1] != net.in_features:
        raise ValueError(f"{name}: X must have shape [n, {net.in_features}], got {list(X.shape)}")
    if y.shape != X.shape[:1] or y.dtype != torch.long:
        raise ValueError(f"{name}: y must be a long tensor of shape [{X.shape[0]}], "
                         f"got {y.dtype} {list(y.shape)}")
    classes = net.classifier.classes
    if y.numel() and (y.min() < 0 or y.max() >= classes):
        raise ValueError(f"{name}: labels must lie in 0..{classes - 1}")


def train(net: ODENet, X: torch.Tensor, y: torch.Tensor, *, iterations: int = 1000,
          optimizer: str = "adam", lr: float = 0.05, loss: str = "cross_entropy",
          regulariser: Callable[[ODENet], torch.Tensor] | None = None,
          validation: tuple[torch.Tensor, torch.Tensor] | None = None,
          record_every: int = 10, progress: bool | None = None) -> History:
    """Train ``net`` on all of ``(X, y)`` at once and return its :class:`History`.

    ``optimizer`` is ``"gd"`` (``theta <- theta - lr grad E``) or ``"adam"``; ``loss`` a name in
    :data:`LOSSES`; ``regulariser(net)`` is added to the data loss.  Accuracies are recorded
    every ``record_every`` iterations and at the end.  ``progress`` shows a tqdm bar; by
    default only when standard error is a terminal, so notebooks never print one.

    Iterations are numbered from 0; ``History.recorded`` holds the number of iterations completed
    when the accuracies were recorded.  Raises ``ValueError`` naming the first iteration whose
    objective is not finite.
    """
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    if not isinstance(record_every, int) or isinstance(record_every, bool) or record_every < 1:
        raise ValueError(f"record_every must be a positive integer, got {record_every!r}")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)}")
    optimizers = {"gd": torch.optim.SGD, "adam": torch.optim.Adam}
    if optimizer not in optimizers:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {sorted(optimizers)}")
    if isinstance(lr, bool) or not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    check_data(net, X, y, "(X, y)")
    if validation is not None:
        if not (isinstance(validation, (tuple, list)) and len(validation) == 2):
            raise TypeError("validation must be a pair of tensors (X, y)")
        check_data(net, *validation, "validation")
    data_loss = LOSSES[loss]
    opt = optimizers[optimizer](net.parameters(), lr=lr)
    losses = torch.empty(iterations, dtype=X.dtype, device=X.device)
    history = History()
    show = sys.stderr.isatty() if progress is None else progress

    def step(i: int) -> None:
        opt.zero_grad(set_to_none=True)
        objective = data_loss(net(X), y)
        if regulariser is not None:
            objective = objective + regulariser(net)
        objective.backward()
        opt.step()
        losses[i] = objective.detach()

    with tqdm(total=iterations, desc="training", leave=False, disable=not show) as bar:
        for start in range(0, iterations, record_every):
            stop = min(start + record_every, iterations)
            for i in range(start, stop):
                step(i)
            block = losses[start:stop]
            finite = torch.isfinite(block)
            if not bool(finite.all()):
                first = start + int((~finite).nonzero()[0, 0])
                raise ValueError(f"the objective became non-finite ({block[first - start].item()}) "
                                 f"at iteration {first}; lower the learning rate lr or the step h")
            history.recorded.append(stop)
            history.train_accuracy.append(float(accuracy(net, X, y)))
            if validation is not None:
                history.validation_accuracy.append(float(accuracy(net, *validation)))
            bar.update(stop - start)
    history.loss = losses.tolist()
    return history
