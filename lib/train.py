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
:func:`lib.adjoint.otd_gradient` for the talk's "standard procedure".
"""
from __future__ import annotations

import math
import sys
import weakref
from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from .fields import positive_int
from .models import ODENet

__all__ = ["cross_entropy", "least_squares", "mean_squared", "LOSSES",
           "REGRESSION_LOSSES", "accuracy", "time_smoothness",
           "parameter_path", "roughness", "path_distance", "History",
           "check_data", "train"]


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

REGRESSION_LOSSES = frozenset({"mean_squared"})
"""The losses whose targets are real numbers, not class labels."""
"""The data losses by name; each returns one value per member."""


def accuracy(net: ODENet, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of correctly classified points, per member (no host synchronisation)."""
    with torch.no_grad():
        return (net.predict(X) == y).to(X.dtype).mean(-1)


def time_smoothness(lam: float) -> Callable[[ODENet], torch.Tensor]:
    """The regulariser ``R_h(theta) = lam h sum_k |(theta^{k+1} - theta^k) / h|^2``,
    the talk's discretisation of ``lam int |theta'(t)|^2 dt``, over all stacked field
    parameters; one value per member."""
    if isinstance(lam, bool) or not (isinstance(lam, (int, float))
                                     and math.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")

    def regulariser(net: ODENet) -> torch.Tensor:
        total = 0.0
        for theta in net.field.stacks().values():
            jumps = (theta[1:] - theta[:-1]).square()
            if net.members is not None:  # one sum per member: [K-1, S, ...] -> [S]
                jumps = jumps.transpose(0, 1).reshape(net.members, -1).sum(1)
            total = total + (jumps.sum() if net.members is None else jumps)
        return lam * total / net.h

    return regulariser


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


def train(net: ODENet, X: torch.Tensor, y: torch.Tensor, *, iterations: int = 1000,
          optimizer: str | Callable[..., torch.optim.Optimizer] = "adam", lr: float = 0.05,
          loss: str = "cross_entropy",
          regulariser: Callable[[ODENet], torch.Tensor] | None = None,
          gradient: Callable[..., dict] | None = None,
          validation: tuple[torch.Tensor, torch.Tensor] | None = None,
          record_every: int = 10, progress: bool | None = None,
          constraint: Callable[[ODENet], None] | None = None) -> History:
    """Train ``net`` on all of ``(X, y)`` at once and return its :class:`History`.

    ``optimizer`` is ``"gd"`` (``theta <- theta - lr grad E``) or ``"adam"`` with step ``lr``, or
    a factory ``optimizer(params) -> torch.optim.Optimizer`` (e.g. an optimiser of
    :mod:`lib.optim` with its settings bound by ``functools.partial``, or :func:`lib.msa.msa`),
    which then sets its own steps (``lr`` is unused); ``loss`` a name in
    :data:`LOSSES`; ``regulariser(net)`` is added to the data loss.  ``gradient(net, X, y,
    loss=loss)`` computes the data loss's gradient as a dict keyed like ``net.named_parameters()``
    (default: autograd); the regulariser's gradient is always autograd's.  With members, the data
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
    if isinstance(lr, bool) or not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if gradient is not None and not callable(gradient):
        raise TypeError(f"gradient must be callable as gradient(net, X, y, loss=...), got {gradient!r}")
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
        if gradient is None:
            return data_loss(net(X), y)
        grads = gradient(net, X, y, loss=loss)
        for name, p in params.items():
            p.grad = grads[name]
        with torch.no_grad():
            return data_loss(net(X), y)

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
