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

    def _matrix_and_bias(self, matrix: str, generator: torch.Generator | None) -> None:
        """Register the stacked parameters ``matrix^k ~ N(0, 1/width)`` (``width x width``) and
        ``b^k ~ N(0, 0.1^2)``, drawn in that order from ``generator``."""
        d, K = self.width, self.layers
        setattr(self, matrix, nn.Parameter(torch.randn(K, d, d, generator=generator) / math.sqrt(d)))
        self.b = nn.Parameter(0.1 * torch.randn(K, d, generator=generator))

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
        self._matrix_and_bias("A", generator)

    def forward(self, z: torch.Tensor, theta: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        A, b = theta
        return self.sigma(torch.addmm(b, z, A.T))


class GradientField(VectorField):
    """The gradient-flow field ``f(z; A, b) = -A^T sigma(A z + b) = -grad_z V``, with the potential
    ``V(z) = sum_i gamma((A z + b)_i)`` and ``gamma' = sigma`` (the talk's stability theorem;
    Celledoni et al. 2021).

    Its Jacobian ``-A^T diag(sigma'(A z + b)) A`` is symmetric; for ``0 <= sigma' <= 1`` its
    eigenvalues lie in ``[-||A||^2, 0]``, so the field is one-sided Lipschitz with
    ``-mu_*^2 <= nu <= 0`` (``mu_*`` the smallest singular value of ``A``).  Initialised as
    :class:`ResNetField`.
    """

    theta_names = ("A", "b")

    def __init__(self, width: int, layers: int, activation: str = "tanh",
                 generator: torch.Generator | None = None):
        super().__init__(width, layers, activation)
        self._matrix_and_bias("A", generator)

    def forward(self, z: torch.Tensor, theta: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        A, b = theta
        return -torch.mm(self.sigma(torch.addmm(b, z, A.T)), A)


def _finite_at_least(value, name: str, low: float, strict: bool) -> float:
    if (not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
            or value < low or (strict and value == low)):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {low:g}, "
                         f"got {value!r}")
    return float(value)


class AntisymmetricField(VectorField):
    """The antisymmetric field of Haber & Ruthotto (2017, section 3),
    ``f(z; W, b) = sigma((W - W^T - gamma I) z + b)``.

    The matrix ``K = W - W^T - gamma I`` has eigenvalues ``-gamma + i omega``; the Jacobian
    ``diag(sigma') K`` is similar to ``D^(1/2) (W - W^T) D^(1/2) - gamma D`` (``D = diag(sigma')``),
    so for ``sigma' >= 0`` its eigenvalues have real part ``<= 0``: every layer is linearly stable.
    ``gamma >= 0`` (default ``0.1``) is fixed, not trained; it moves the eigenvalues off the
    imaginary axis, where the explicit Euler step is unstable.  ``W^k`` is initialised
    ``N(0, 1/width)`` and ``b^k`` ``N(0, 0.1^2)``.
    """

    theta_names = ("W", "b")

    def __init__(self, width: int, layers: int, activation: str = "tanh",
                 generator: torch.Generator | None = None, gamma: float = 0.1):
        super().__init__(width, layers, activation)
        self.gamma = _finite_at_least(gamma, "gamma", 0.0, strict=False)
        self._matrix_and_bias("W", generator)

    def matrix(self, theta: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The layer's matrix ``K = W - W^T - gamma I``."""
        W = theta[0]
        return W - W.T - self.gamma * torch.eye(self.width, dtype=W.dtype, device=W.device)

    def forward(self, z: torch.Tensor, theta: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        W, b = theta
        # z K^T + b = z (W^T - W) + b - gamma z
        return self.sigma(torch.addmm(b, z, W.T - W).sub_(z, alpha=self.gamma))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, gamma={self.gamma:g}"


class NegativeDefiniteField(VectorField):
    """The field ``f(z; B, b) = sigma(A z + b)`` with the symmetric negative definite matrix
    ``A = -(B B^T + eps I)`` (a restricted parameter space of the talk; Haber & Ruthotto 2017).

    ``A`` has eigenvalues ``<= -eps``, and the Jacobian ``diag(sigma') A`` is similar to the
    symmetric ``D^(1/2) A D^(1/2)`` (``D = diag(sigma')``), so its eigenvalues are real and
    ``<= 0`` for ``sigma' >= 0``; with ``sigma`` the identity the field is one-sided Lipschitz
    with ``nu = lambda_max(A) <= -eps``.  ``eps > 0`` (default ``0.1``) is fixed, not trained;
    ``B^k`` is initialised ``N(0, 1/width)`` and ``b^k`` ``N(0, 0.1^2)``.
    """

    theta_names = ("B", "b")

    def __init__(self, width: int, layers: int, activation: str = "tanh",
                 generator: torch.Generator | None = None, eps: float = 0.1):
        super().__init__(width, layers, activation)
        self.eps = _finite_at_least(eps, "eps", 0.0, strict=True)
        self._matrix_and_bias("B", generator)

    def matrix(self, theta: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The layer's matrix ``A = -(B B^T + eps I)``."""
        B = theta[0]
        return torch.addmm(torch.eye(self.width, dtype=B.dtype, device=B.device), B, B.T,
                           beta=-self.eps, alpha=-1.0)

    def forward(self, z: torch.Tensor, theta: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        B, b = theta
        # z A^T + b = -(z B) B^T - eps z + b
        return self.sigma(torch.addmm(b, torch.mm(z, B), B.T, alpha=-1.0).sub_(z, alpha=self.eps))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, eps={self.eps:g}"


FIELDS: dict[str, type[VectorField]] = {"resnet": ResNetField, "gradient": GradientField,
                                        "antisymmetric": AntisymmetricField,
                                        "negdef": NegativeDefiniteField}
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
