"""The data losses of training, one value per member, and the checks of the data they read.

    E = 1/N sum_n L(eta(w^T z_n^K + w0), y_n)

with ``L`` the cross-entropy (the default), the squared error of the probabilities (Benning
et al. 2019) or, for regression, the squared error of the output.
"""
from __future__ import annotations

import weakref
from typing import Callable

import torch
from torch.nn import functional as F

from .models import ODENet

__all__ = ["cross_entropy", "least_squares", "mean_squared", "LOSSES", "REGRESSION_LOSSES",
           "accuracy", "check_data", "per_member"]


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the points, per member: with one logit
    ``-[y log s + (1-y) log(1-s)]``, ``s = sigmoid``; with several, ``-log softmax(logits)_y``.
    Shape ``[S]`` for members, else 0-dim."""
    if logits.dim() == y.dim():
        per_point = F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype), reduction="none")
    else:
        per_point = F.cross_entropy(logits.flatten(0, -2), y.flatten(), reduction="none")
        per_point = per_point.view(y.shape)
    return per_point.mean(-1)


def least_squares(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean of ``1/2 |eta - y|^2`` over the points, per member, with ``eta`` the sigmoid (one logit)
    or the softmax and ``y`` the label (one-hot for several classes): the loss of Benning et al.
    (2019)."""
    if logits.dim() == y.dim():
        return (0.5 * (torch.sigmoid(logits) - y.to(logits.dtype)).square()).mean(-1)
    onehot = F.one_hot(y, logits.shape[-1]).to(logits.dtype)
    return (0.5 * (torch.softmax(logits, -1) - onehot).square().sum(-1)).mean(-1)


def mean_squared(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Regression: the mean of ``1/2 (w^T z^K + w0 - y)^2`` over the points, per member, for
    one output (two "classes") and real targets ``y`` (Li, Chen, Tai & E 2018, the sin(x)
    problem of chapter 7)."""
    return (0.5 * (output - y).square()).mean(-1)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cross_entropy": cross_entropy, "least_squares": least_squares,
    "mean_squared": mean_squared}

"""The data losses by name; each returns one value per member."""

REGRESSION_LOSSES = frozenset({"mean_squared"})
"""The losses whose targets are real numbers, not class labels."""


def accuracy(net: ODENet, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of correctly classified points, per member (no host synchronisation)."""
    with torch.no_grad():
        return (net.predict(X) == y).to(X.dtype).mean(-1)


def check_data(net: ODENet, X, y, name: str, loss: str = "cross_entropy") -> None:
    """Raise a clear error unless ``X`` is ``[n, in_features]`` (or, with ``S`` members,
    ``[S, n, in_features]``) and ``y`` holds the matching long class labels of ``net`` (real
    targets for a loss in :data:`REGRESSION_LOSSES`); ``name`` says which argument is meant."""
    if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must be a pair of tensors (X, y)")
    S, d = net.members, net.in_features
    shapes = f"[n, {d}]" + ("" if S is None else f" or [{S}, n, {d}]")
    if (X.dim() not in ((2,) if S is None else (2, 3)) or X.shape[-1] != d
            or (X.dim() == 3 and X.shape[0] != S)):
        raise ValueError(f"{name}: X must have shape {shapes}, got {list(X.shape)}")
    if loss in REGRESSION_LOSSES:
        if y.shape != X.shape[:-1] or not y.is_floating_point() or net.classifier.classes != 2:
            raise ValueError(f"{name}: the loss {loss!r} needs one output and real targets y of "
                             f"shape {list(X.shape[:-1])}, got {y.dtype} {list(y.shape)}")
        return
    if y.shape != X.shape[:-1] or y.dtype != torch.long:
        raise ValueError(f"{name}: y must be a long tensor of shape {list(X.shape[:-1])}, "
                         f"got {y.dtype} {list(y.shape)}")
    _check_labels(y, net.classifier.classes, name)


_VALID_LABELS: dict[int, tuple] = {}
"""Label tensors found valid: ``id(y) -> (weakref to y, y._version, classes)``."""


def _check_labels(y: torch.Tensor, classes: int, name: str) -> None:
    """Labels must lie in ``0..classes-1``.  Reading them waits for the device, so a tensor that
    passed once is not read again until it is modified (its ``_version`` changes): the gradient
    strategies that ``train`` calls in every step then stay free of host synchronisation."""
    known = _VALID_LABELS.get(id(y))
    if known is not None and known[0]() is y and known[1:] == (y._version, classes):
        return
    if y.numel() and (y.min() < 0 or y.max() >= classes):
        raise ValueError(f"{name}: labels must lie in 0..{classes - 1}")
    _VALID_LABELS[id(y)] = (weakref.ref(y, lambda _, key=id(y): _VALID_LABELS.pop(key, None)),
                            y._version, classes)


def per_member(net: ODENet, X, y, name: str,
               loss: str = "cross_entropy") -> tuple[torch.Tensor, torch.Tensor]:
    """Checked data, with data shared by all members repeated for each."""
    check_data(net, X, y, name, loss)
    if net.members is not None and X.dim() == 2:
        X, y = X.expand(net.members, *X.shape), y.expand(net.members, *y.shape)
    return X, y
