"""The ODE network: lift, ``K`` Runge--Kutta steps of a vector field, classify.

The network of the talk (Benning et al. 2019, eq. (3)) is

    z^0 = lift(x),   z^{k+1} = Phi_h(z^k; theta^k)  (k = 0..K-1),   y = eta(w^T z^K + w0),

where ``Phi_h`` is one step of an explicit Runge--Kutta method of step ``h = T/K`` applied to
``z' = f(z; theta^k)`` with the layer's parameters held fixed in the step.  With the ResNet
field ``f = sigma(A z + b)``, the Euler tableau and ``h = 1`` this is exactly the residual
network ``z^{k+1} = z^k + sigma(A^k z^k + b^k)`` (He et al. 2016).

Built from a list of seeds instead of one seed, a network holds ``S`` *members*, each exactly
the network that seed alone would give, and computes all of them at once (states
``[S, n, d]``, batched products): training outcomes over several seeds cost little more than
one.  :meth:`ODENet.member` takes one out.
"""
from __future__ import annotations

import copy
import math
from typing import Sequence

import torch
from torch import nn

from .fields import VectorField, affine, draw_normal, make_field, member_generators, positive_int
from .integrators import require_explicit, rk_solve
from .tableaux import get_tableau

__all__ = ["Classifier", "ODENet"]


class Classifier(nn.Module):
    """The last layer ``eta(w^T z + w0)``; returns the logits ``w^T z + w0``.

    Two classes use one logit (``eta`` = sigmoid), more classes one per class (softmax).
    ``w ~ N(0, 1/width)``, ``w0 = 0``; with members both carry the member axis first.
    """

    def __init__(self, width: int, classes: int, generator=None):
        super().__init__()
        if not isinstance(classes, int) or isinstance(classes, bool) or classes < 2:
            raise ValueError(f"classes must be an integer >= 2, got {classes!r}")
        self.classes = classes
        gens, self.members = member_generators(generator)
        shape = (width,) if classes == 2 else (classes, width)
        self.w = nn.Parameter(draw_normal(gens, self.members, shape, 1 / math.sqrt(width), 0))
        batch = () if self.members is None else (self.members,)
        self.w0 = nn.Parameter(torch.zeros(batch + shape[:-1]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.classes > 2:
            return affine(z, self.w, self.w0)
        if self.members is None:
            return torch.mv(z, self.w) + self.w0
        return torch.baddbmm(self.w0[:, None, None], z, self.w.unsqueeze(-1)).squeeze(-1)

    def member(self, s: int) -> "Classifier":
        """A single classifier holding member ``s``'s parameters (a copy)."""
        single = copy.deepcopy(self)
        with torch.no_grad():
            single.w = nn.Parameter(self.w[s].clone())
            single.w0 = nn.Parameter(self.w0[s].clone())
        single.members = None
        return single


def _seeds(seed) -> tuple[int, ...] | None:
    if isinstance(seed, int) and not isinstance(seed, bool):
        return None
    try:
        seeds = tuple(seed)
    except TypeError:
        seeds = ()
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise TypeError(f"seed must be an int or a non-empty sequence of ints, got {seed!r}")
    return seeds


class ODENet(nn.Module):
    """Lift, ``K`` explicit Runge--Kutta steps of ``z' = f(z; theta^k)``, classify.

    Parameters
    ----------
    width: the feature dimension ``d`` (inputs are zero-padded from ``in_features`` to ``d``).
    depth: the number of layers ``K``.
    T: the final time; the step is ``h = T / K``.  ``None`` (default) means ``h = 1``, the ResNet.
    method: a tableau or its name in :data:`lib.tableaux.METHODS` (explicit only).
    activation: a name in :data:`lib.activations.ACTIVATIONS`.
    field: a name in :data:`lib.fields.FIELDS`, or a :class:`~lib.fields.VectorField` object
        (its own width, layers and members are then the network's; ``width``, ``depth`` and
        ``activation`` must be left out or agree).
    classes: number of classes (2: one logit and a sigmoid; more: softmax).
    seed: an int seeds the initial parameters, so equal arguments give equal networks; a
        sequence of ints gives one member per seed (see the module docstring).
    """

    def __init__(self, width: int | None = None, depth: int | None = None, T: float | None = None,
                 method="euler", activation: str | None = None, field: str | VectorField = "resnet",
                 classes: int = 2, in_features: int = 2, seed: int | Sequence[int] = 0):
        super().__init__()
        self.seeds = _seeds(seed)
        seeds = [seed] if self.seeds is None else list(self.seeds)
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        member_gens = gens[0] if self.seeds is None else gens
        if isinstance(field, VectorField):
            for name, given, own in (("width", width, field.width), ("depth", depth, field.layers),
                                     ("activation", activation, field.activation)):
                if given is not None and given != own:
                    raise ValueError(f"{name} = {given!r} disagrees with the field's {own!r}")
            if field.members != (None if self.seeds is None else len(self.seeds)):
                raise ValueError(f"the field has members={field.members} but seed gives "
                                 f"{None if self.seeds is None else len(self.seeds)}")
            self.field = field
        elif isinstance(field, str):
            self.field = make_field(field, positive_int(2 if width is None else width, "width"),
                                    positive_int(10 if depth is None else depth, "depth"),
                                    "tanh" if activation is None else activation, member_gens)
        else:
            raise TypeError(f"field must be a name or a VectorField, got {type(field).__name__}")
        self.depth = self.field.layers
        self.in_features = positive_int(in_features, "in_features")
        if self.width < in_features:
            raise ValueError(f"width must be >= in_features = {in_features} (the lift pads with "
                             f"zeros), got {self.width}")
        if T is not None and not (isinstance(T, (int, float)) and not isinstance(T, bool)
                                  and math.isfinite(T) and T > 0):
            raise ValueError(f"T must be a positive finite number or None (h = 1), got {T!r}")
        self.T = float(self.depth if T is None else T)
        self.h = self.T / self.depth
        self.tableau = require_explicit(get_tableau(method))
        self.classifier = Classifier(self.width, classes, generator=member_gens)

    @property
    def width(self) -> int:
        return self.field.width

    @property
    def members(self) -> int | None:
        """The number of members, or ``None`` for a single network."""
        return None if self.seeds is None else len(self.seeds)

    def member(self, s: int) -> "ODENet":
        """Member ``s`` as a single network (a copy): equal to ``ODENet(..., seed=seeds[s])``
        before training, and to that network trained alone after."""
        if self.seeds is None:
            raise ValueError("this network has no members (it was built from one seed)")
        single = copy.deepcopy(self)
        single.field = self.field.member(s)
        single.classifier = self.classifier.member(s)
        single.seeds = None
        return single

    def lift(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad inputs ``[n, in_features]`` to features ``[n, width]``; with members, inputs
        ``[S, n, in_features]`` (one data set per member) or ``[n, in_features]`` (shared)."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        S = self.members
        shapes = f"[n, {self.in_features}]" + ("" if S is None else f" or [{S}, n, {self.in_features}]")
        if x.dim() == 2 and S is not None:
            x = x.expand(S, *x.shape)
        if (x.dim() != (2 if S is None else 3) or x.shape[-1] != self.in_features
                or (S is not None and x.shape[0] != S)):
            raise ValueError(f"x must have shape {shapes}, got {list(x.shape)}")
        return nn.functional.pad(x, (0, self.width - self.in_features))

    def _solve(self, x: torch.Tensor, trajectory: bool) -> torch.Tensor:
        thetas = self.field.thetas()
        return rk_solve(lambda k, t, z: self.field(z, thetas[k]), self.lift(x), self.h,
                        self.depth, self.tableau, trajectory=trajectory)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The final features ``z^K``, shape ``[(S,) n, width]``."""
        return self._solve(x, trajectory=False)

    def trajectory(self, x: torch.Tensor) -> torch.Tensor:
        """The states of all layers ``[z^0, ..., z^K]``, shape ``[K+1, (S,) n, width]``."""
        return self._solve(x, trajectory=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits ``w^T z^K + w0``: shape ``[(S,) n]`` for two classes, ``[(S,) n, classes]``
        otherwise."""
        return self.classifier(self.features(x))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted class labels ``[(S,) n]``."""
        logits = self(x)
        return (logits > 0).long() if self.classifier.classes == 2 else logits.argmax(-1)

    def extra_repr(self) -> str:
        return f"depth={self.depth}, T={self.T:g}, h={self.h:g}, method={self.tableau.name!r}"
