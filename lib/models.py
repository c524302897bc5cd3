"""Vector fields ``f(z; theta)`` and the ODE network built from them.

The network of the talk (Benning et al. 2019, eq. (3)) is

    z^0 = lift(x),   z^{k+1} = Phi_h(z^k; theta^k)  (k = 0..K-1),   y = eta(w^T z^K + mu),

where ``Phi_h`` is one step of an explicit Runge--Kutta method of step ``h = T/K`` applied to
``z' = f(z; theta^k)`` with the layer's parameters held fixed in the step.  With the ResNet
field ``f = sigma(A z + b)``, the Euler tableau and ``h = 1`` this is exactly the residual
network ``z^{k+1} = z^k + sigma(A^k z^k + b^k)`` (He et al. 2016).

A field stores the parameters of all ``K`` layers stacked along dimension 0 and is called
with one layer's parameters, ``field(z, theta_k)``; ``field.thetas()`` splits the stack into
per-layer tuples with a single ``unbind`` (whose backward is one ``stack``).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from .integrators import require_explicit, rk_solve
from .tableaux import get_tableau

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "identity": lambda s: s,
}
"""The scalar activations ``sigma`` of the talk, by name: ``sigma_1 = tanh``,
``sigma_2 = max(0, s)`` (ReLU), and the identity (the linear case of the theorems)."""


def get_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation called ``name``; a ``ValueError`` lists the known names otherwise."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}") from None


def _positive_int(value, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class VectorField(nn.Module):
    """Base class: a vector field ``f(z; theta)`` with one parameter set per layer.

    Subclasses register their stacked parameters (leading dimension ``layers``), list
    their names in ``theta_names`` and implement ``forward(z, theta)`` for ``z`` of shape
    ``[n, width]`` and one layer's parameters ``theta``.
    """

    theta_names: tuple[str, ...] = ()

    def __init__(self, width: int, layers: int, activation: str = "tanh"):
        super().__init__()
        self.width = _positive_int(width, "width")
        self.layers = _positive_int(layers, "layers")
        self.activation = activation
        self.sigma = get_activation(activation)

    def thetas(self) -> list[tuple[torch.Tensor, ...]]:
        """Per-layer parameter tuples ``theta^0, ..., theta^{K-1}``."""
        stacks = [getattr(self, name).unbind(0) for name in self.theta_names]
        return list(zip(*stacks))

    def extra_repr(self) -> str:
        return f"width={self.width}, layers={self.layers}, activation={self.activation!r}"


class ResNetField(VectorField):
    """The ResNet field ``f(z; A, b) = sigma(A z + b)`` (the talk's first model).

    Each ``A^k`` is initialised ``N(0, 1/width)`` and each ``b^k`` ``N(0, 0.1^2)``.
    """

    theta_names = ("A", "b")

    def __init__(self, width: int, layers: int, activation: str = "tanh",
                 generator: torch.Generator | None = None):
        super().__init__(width, layers, activation)
        self.A = nn.Parameter(torch.randn(layers, width, width, generator=generator) / math.sqrt(width))
        self.b = nn.Parameter(0.1 * torch.randn(layers, width, generator=generator))

    def forward(self, z: torch.Tensor, theta: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        A, b = theta
        return self.sigma(torch.addmm(b, z, A.T))


FIELDS: dict[str, type[VectorField]] = {"resnet": ResNetField}
"""Registry of the vector fields usable in :class:`ODENet`, by name."""


class Classifier(nn.Module):
    """The last layer ``eta(w^T z + mu)``; returns the logits ``w^T z + mu``.

    Two classes use one logit (``eta`` = sigmoid), more classes one per class (softmax).
    """

    def __init__(self, width: int, classes: int, generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(classes, int) or isinstance(classes, bool) or classes < 2:
            raise ValueError(f"classes must be an integer >= 2, got {classes!r}")
        self.classes = classes
        shape = (width,) if classes == 2 else (classes, width)
        self.w = nn.Parameter(torch.randn(*shape, generator=generator) / math.sqrt(width))
        self.mu = nn.Parameter(torch.zeros(shape[:-1]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.classes == 2:
            return torch.mv(z, self.w) + self.mu
        return torch.addmm(self.mu, z, self.w.T)


class ODENet(nn.Module):
    """Lift, ``K`` explicit Runge--Kutta steps of ``z' = f(z; theta^k)``, classify.

    Parameters
    ----------
    width: the feature dimension ``d`` (inputs are zero-padded from ``in_features`` to ``d``).
    depth: the number of layers ``K``.
    T: the final time; the step is ``h = T / K``.  ``None`` (default) means ``h = 1``, the ResNet.
    method: a tableau or its name in :data:`lib.tableaux.METHODS` (explicit only).
    activation: a name in :data:`ACTIVATIONS`.
    field: a name in :data:`FIELDS`.
    classes: number of classes (2: one logit and a sigmoid; more: softmax).
    seed: seeds the initial parameters, so equal arguments give equal networks.
    """

    def __init__(self, width: int = 2, depth: int = 10, T: float | None = None, method="euler",
                 activation: str = "tanh", field: str = "resnet", classes: int = 2,
                 in_features: int = 2, seed: int = 0):
        super().__init__()
        _positive_int(width, "width")
        self.depth = _positive_int(depth, "depth")
        self.in_features = _positive_int(in_features, "in_features")
        if width < in_features:
            raise ValueError(f"width must be >= in_features = {in_features} (the lift pads with "
                             f"zeros), got {width}")
        if T is not None and not (isinstance(T, (int, float)) and math.isfinite(T) and T > 0):
            raise ValueError(f"T must be a positive finite number or None (h = 1), got {T!r}")
        self.T = float(depth if T is None else T)
        self.h = self.T / depth
        self.tableau = require_explicit(get_tableau(method))
        if field not in FIELDS:
            raise ValueError(f"unknown field {field!r}; expected one of {sorted(FIELDS)}")
        g = torch.Generator().manual_seed(seed)
        self.field = FIELDS[field](width, depth, activation, generator=g)
        self.classifier = Classifier(width, classes, generator=g)

    @property
    def width(self) -> int:
        return self.field.width

    def lift(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad inputs ``[n, in_features]`` to features ``[n, width]``."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"x must have shape [n, {self.in_features}], got {list(x.shape)}")
        return nn.functional.pad(x, (0, self.width - self.in_features))

    def _solve(self, x: torch.Tensor, trajectory: bool) -> torch.Tensor:
        thetas = self.field.thetas()
        return rk_solve(lambda k, t, z: self.field(z, thetas[k]), self.lift(x), self.h,
                        self.depth, self.tableau, trajectory=trajectory)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The final features ``z^K``, shape ``[n, width]``."""
        return self._solve(x, trajectory=False)

    def trajectory(self, x: torch.Tensor) -> torch.Tensor:
        """The states of all layers ``[z^0, ..., z^K]``, shape ``[K+1, n, width]``."""
        return self._solve(x, trajectory=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits ``w^T z^K + mu``: shape ``[n]`` for two classes, ``[n, classes]`` otherwise."""
        return self.classifier(self.features(x))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted class labels ``[n]``."""
        logits = self(x)
        return (logits > 0).long() if logits.dim() == 1 else logits.argmax(1)

    def extra_repr(self) -> str:
        return f"depth={self.depth}, T={self.T:g}, h={self.h:g}, method={self.tableau.name!r}"
