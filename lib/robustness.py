"""Adversarial attacks and certified robustness in the Euclidean norm (chapter 8).

**Attack.**  Projected gradient ascent (Madry et al. 2018, ICLR) on the margin loss
``max_{j != y} F_j(x + delta) - F_y(x + delta)`` over the ball ``|delta|_2 <= eps``: each step
moves ``delta`` by ``alpha g / |g|`` (``g`` the gradient, ``alpha = 10 eps / steps``) and
projects back onto the ball; several restarts begin at uniform random points of the ball (the
first at ``delta = 0``), and the perturbation with the largest loss is kept.  The step is
four times Madry et al.'s ``2.5 eps / steps``: on the digits' ResNet it breaks more points
with the same budget (measured), so doubling the budget changes less.  A point counts
as broken when the loss is positive.  Pixels are not clipped to ``[0, 1]``: the threat model
is the ball alone, the one the certificate speaks about.

**Certificate.**  If the logits ``F`` are ``L``-Lipschitz in ``|.|_2`` and the prediction at
``x`` has margin ``m = F_y(x) - max_{j != y} F_j(x) > 0``, every ``x'`` with
``|x' - x|_2 < m / (sqrt(2) L)`` has the same prediction (Tsuzuku, Sato and Sugiyama 2018,
NeurIPS): ``F_y - F_j`` is ``sqrt(2) L``-Lipschitz for every ``j``.

**Experiments.**  :func:`train_digits` trains a network on the digits (:func:`lib.data.digits`)
over several seeds as one computation, from a configuration given as plain data, and
:func:`evaluate` measures clean, attacked and certified accuracies on the test split.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch
from torch.nn import functional as F_

from .data import digits
from .validate import non_negative, positive, positive_int
from .lipschitz import lipschitz_estimate, network_bound, nonexpansive_constraint
from .models import ODENet
from .losses import accuracy
from .training import History, train

__all__ = ["margins", "certified_radius", "certified_accuracy", "pgd", "attacked_accuracy",
           "minimal_radius", "tempered_cross_entropy", "DigitsRun", "build", "train_digits",
           "evaluate"]


def margins(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``F_y - max_{j != y} F_j`` for logits ``[..., n, C]`` and labels ``[..., n]``:
    positive where the prediction is right (labels shared by all members broadcast)."""
    y = y.expand(logits.shape[:-1])
    true = logits.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    others = logits.masked_fill(F_.one_hot(y, logits.shape[-1]).bool(), -math.inf)
    return true - others.amax(-1)


def certified_radius(logits: torch.Tensor, y: torch.Tensor, L) -> torch.Tensor:
    """``max(m, 0) / (sqrt(2) L)`` per point, ``[..., n]``: no perturbation of smaller norm
    changes the prediction of a network whose logits are ``L``-Lipschitz (``L`` a number or
    one value per member ``[S]``); 0 where the prediction is wrong."""
    L = torch.as_tensor(L, dtype=logits.dtype, device=logits.device)
    if not bool((L > 0).all()):
        raise ValueError(f"L must be positive, got {L}")
    return margins(logits, y).clamp(min=0) / (math.sqrt(2) * L.unsqueeze(-1))


def certified_accuracy(logits: torch.Tensor, y: torch.Tensor, L,
                       radii: Sequence[float]) -> torch.Tensor:
    """Fraction of the points certified at each radius (``radius < m / (sqrt(2) L)``),
    ``[len(radii), (S)]``."""
    r = certified_radius(logits, y, L)
    return torch.stack([(r > eps).to(r.dtype).mean(-1) for eps in radii])


def _margin_loss(model: Callable, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -margins(model(x), y)


def pgd(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
        eps, steps: int = 50, restarts: int = 5,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """The strongest perturbation ``delta`` (``|delta|_2 <= eps`` per point) found by
    ``restarts`` runs of ``steps`` projected normalised gradient steps on the margin
    loss; ``x [(S,) n, d]``, ``y`` the labels, ``eps`` a number or one radius per point
    ``[(S,) n]``; random starts are drawn from ``generator``."""
    positive_int(steps, "steps")
    positive_int(restarts, "restarts")
    eps = torch.as_tensor(eps, dtype=x.dtype, device=x.device)
    if not bool((eps >= 0).all()):
        raise ValueError("eps must be >= 0")
    radius = eps.expand(x.shape[:-1]).unsqueeze(-1)
    alpha = 10 * radius / steps
    x = x.detach()
    best = torch.zeros_like(x)
    best_loss = torch.full(x.shape[:-1], -math.inf, dtype=x.dtype, device=x.device)
    for restart in range(restarts):
        delta = torch.zeros_like(x)
        if restart:  # uniform in the ball: a uniform direction, radius ~ U^(1/d)
            draw = dict(generator=generator, dtype=x.dtype)
            u = torch.randn(x.shape, **draw).to(x.device)
            s = torch.rand(x.shape[:-1], **draw).to(x.device)
            u = u / u.norm(dim=-1, keepdim=True)
            delta = radius * s.unsqueeze(-1) ** (1 / x.shape[-1]) * u
        for step in range(steps + 1):
            delta.requires_grad_(step < steps)
            loss = _margin_loss(model, x + delta, y)
            better = loss.detach() > best_loss
            best = torch.where(better.unsqueeze(-1), delta.detach(), best)
            best_loss = torch.where(better, loss.detach(), best_loss)
            if step == steps:
                break
            (g,) = torch.autograd.grad(loss.sum(), delta)
            with torch.no_grad():
                step = delta + alpha * g / g.norm(dim=-1, keepdim=True).clamp(min=1e-30)
                delta = step * (radius / step.norm(dim=-1, keepdim=True).clamp(
                    min=1e-30)).clamp(max=1.0)
    return best


def attacked_accuracy(net: ODENet, x: torch.Tensor, y: torch.Tensor, radii: Sequence[float],
                      steps: int = 50, restarts: int = 5,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Accuracy under :func:`pgd` at each of the increasing ``radii``, ``[len(radii), (S)]``;
    with members the shared points ``x [n, d]`` get one perturbation per member.  A point
    broken at one radius counts as broken at the larger ones (the same perturbation is
    allowed there), and once every point is broken the attacks stop."""
    if list(radii) != sorted(radii):
        raise ValueError(f"radii must increase, got {list(radii)}")
    if net.members is not None and x.dim() == 2:
        x, y = x.expand(net.members, *x.shape), y.expand(net.members, *y.shape)
    broken = torch.zeros(y.shape, dtype=torch.bool, device=y.device)
    out = []
    for eps in radii:
        if not bool(broken.all()):
            delta = pgd(net, x, y, eps, steps, restarts, generator)
            with torch.no_grad():
                broken |= net.predict(x + delta) != y
        out.append(1 - broken.to(x.dtype).mean(-1))
    return torch.stack(out)


def minimal_radius(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                   y: torch.Tensor, high: float, bisections: int = 30, steps: int = 50,
                   restarts: int = 5, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
    """Per point, the smallest radius at which :func:`pgd` changes the prediction, by
    ``bisections`` halvings of ``[0, high]`` (``high`` where a point resists, so an upper
    estimate of the distance to the decision boundary, exact for a linear classifier)."""
    positive_int(bisections, "bisections")
    low = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
    up = torch.full_like(low, float(high))
    for _ in range(bisections):
        mid = (low + up) / 2
        delta = pgd(model, x, y, mid, steps, restarts, generator)
        with torch.no_grad():
            broken = _margin_loss(model, x + delta, y) > 0
        up, low = torch.where(broken, mid, up), torch.where(broken, low, mid)
    return up


def tempered_cross_entropy(temperature: float, margin: float = 0.0
                           ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The cross-entropy of ``temperature * (logits - margin e_y)`` (mean per member), a loss
    for a network whose logits are kept 1-Lipschitz: their differences are at most the
    distances between the inputs, the temperature lets the softmax still approach the labels,
    and the margin asks for ``F_y - F_j >= margin``, which certifies the radius
    ``margin / sqrt(2)`` (Lipschitz-margin training, Tsuzuku, Sato and Sugiyama 2018)."""
    positive(temperature, "temperature"), non_negative(margin, "margin")

    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shifted = logits - margin * F_.one_hot(y, logits.shape[-1]).to(logits.dtype)
        per_point = F_.cross_entropy(temperature * shifted.flatten(0, -2), y.flatten(),
                                     reduction="none")
        return per_point.view(y.shape).mean(-1)

    return loss


# --- the experiments of chapter 8: configurations as plain data --------------------------------

@dataclass
class DigitsRun:
    """A network trained on the digits (one member per seed) with its configuration, its
    training history and the test split."""

    config: dict
    net: ODENet
    history: History
    X_test: torch.Tensor
    y_test: torch.Tensor


def build(config: Mapping[str, Any]) -> ODENet:
    """The untrained network of ``config``: ``field`` (``"resnet"`` or ``"gradient"``),
    ``width``, ``depth``, ``seeds``, ``activation`` (default ``"tanh"``), explicit Euler with
    ``h = 1``, a linear lift from the 64 pixels and 10 logits."""
    return ODENet(width=config["width"], depth=config["depth"], field=config["field"],
                  activation=config.get("activation", "tanh"), method="euler", classes=10,
                  in_features=64, seed=list(config["seeds"]), lift="linear")


def train_digits(config: Mapping[str, Any], device: torch.device | str = "cpu") -> DigitsRun:
    """Train :func:`build`'s network on the training digits with Adam for
    ``config["iterations"]`` full-batch steps at rate ``config["lr"]``; with ``"limit"`` the
    gradient network is kept at ``h ||A^k||^2 <= limit`` with a 1-Lipschitz lift and read-out
    (:func:`lib.lipschitz.nonexpansive_constraint`) and trained with
    :func:`tempered_cross_entropy` of ``config["temperature"]``."""
    dtype = getattr(torch, config.get("dtype", "float64"))
    X, y = (t.to(device) for t in digits("train", dtype))
    validation = tuple(t.to(device) for t in digits("validation", dtype))
    net = build(config).to(device=device, dtype=dtype)
    limit = config.get("limit")
    history = train(net, X, y, iterations=config["iterations"], lr=config["lr"],
                    loss=("cross_entropy" if limit is None
                          else tempered_cross_entropy(config["temperature"],
                                                      config.get("margin", 0.0))),
                    constraint=None if limit is None else nonexpansive_constraint(limit),
                    validation=validation, record_every=config["iterations"])
    X_test, y_test = (t.to(device) for t in digits("test", dtype))
    return DigitsRun(dict(config), net, history, X_test, y_test)


def evaluate(run: DigitsRun, radii: Sequence[float], steps: int = 50, restarts: int = 5,
             lipschitz_steps: int = 100, seed: int = 0) -> dict[str, list]:
    """Per member, on the test split: ``clean`` accuracy, ``attacked`` (:func:`pgd`) and
    ``certified`` accuracies at each radius (``[len(radii)][S]``, empty without radii), the
    ``bound`` (:func:`lib.lipschitz.network_bound`) and the ``estimate`` of the Lipschitz
    constant (:func:`lib.lipschitz.lipschitz_estimate` from the test points), as lists."""
    net, X, y = run.net, run.X_test, run.y_test
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        logits = net(X)
        bound = network_bound(net)
    attacked = (attacked_accuracy(net, X, y, radii, steps, restarts, g).tolist()
                if radii else [])
    estimate = lipschitz_estimate(net, X.expand(net.members, *X.shape), lipschitz_steps,
                                  generator=g)
    return {"clean": accuracy(net, X, y).tolist(), "attacked": attacked,
            "certified": certified_accuracy(logits, y, bound, radii).tolist() if radii else [],
            "bound": bound.tolist(), "estimate": estimate.tolist()}
