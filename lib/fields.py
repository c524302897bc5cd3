"""Vector fields ``f(z; theta)`` with one parameter set ``theta^k`` per layer.

A field stores the parameters of all ``K`` layers stacked along dimension 0 and is called with
one layer's parameters, ``field(z, theta_k)``.  Other modules reach the parameters only through
the field's own methods: :meth:`VectorField.stacks` (the stacked tensors by name),
:meth:`~VectorField.thetas` (per-layer tuples, one ``unbind`` whose backward is one ``stack``),
:meth:`~VectorField.layer`, :meth:`~VectorField.repeat_layers` and
:meth:`~VectorField.member`.

**Members.**  A field can hold ``S`` independently initialised copies of itself, one per random
seed, stacked along dimension 1: a parameter is then ``[K, S, ...]`` and a state ``[S, n, d]``.
Every product is then one batched product (``torch.bmm`` or ``torch.baddbmm``, see
:func:`affine`), so ``S`` seeds train as one computation; member ``s`` starts from exactly the
parameters of a single field drawn from seed ``s``.
"""
from __future__ import annotations

import copy
import math
from typing import Callable

import torch
from torch import nn

from .activations import get_activation
from .validate import finite_at_least, positive_int

__all__ = ["affine", "VectorField", "AffineParameters", "AffineField", "ResNetField", "GradientField", "AntisymmetricField",
           "NegativeDefiniteField", "FIELDS", "make_field"]

def affine(z: torch.Tensor, A: torch.Tensor, b: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """``alpha z A^T + b`` for the rows of ``z``: one fused ``addmm`` for ``z [n, d]``,
    ``A [e, d]``, ``b [e]``.  For members ``z [S, n, d]``, ``A [S, e, d]``, ``b [S, e]`` the
    result keeps the memory layout of ``z``: for a contiguous ``z`` one ``bmm`` with the bias added
    in place (on the CPU ``baddbmm`` with a bias is several times slower than ``bmm`` at the
    book's widths, ``benchmarks/seeds.py``); for a ``z`` whose points axis is contiguous (the
    states of :class:`ResNetField` members) :func:`_points_affine`."""
    if A.dim() == 2:
        return torch.addmm(b, z, A.T, alpha=alpha)
    if not z.is_contiguous() and z.mT.is_contiguous():
        return _points_affine(z, A, b, alpha)
    zA = torch.bmm(z, A.mT)
    if alpha != 1.0:
        return torch.add(b.unsqueeze(-2), zA, alpha=alpha)
    return zA.add_(b.unsqueeze(-2))


def _points_affine(z: torch.Tensor, A: torch.Tensor, b: torch.Tensor,
                   alpha: float = 1.0) -> torch.Tensor:
    """:func:`affine` for members, ``[S, n, e]``, with the points axis contiguous: one
    ``baddbmm`` of the transposed product ``b + alpha A z^T`` ``[S, e, n]``, whose bias is added
    along the points, several times faster at the book's widths than along rows of ``e``
    entries."""
    return torch.baddbmm(b.unsqueeze(-1), A, z.mT, alpha=alpha).mT


def member_generators(generator) -> tuple[list, int | None]:
    """``(generators, members)``: a list of generators (``None`` entries draw from the global
    generator) and the number of members (``None`` for a single network)."""
    if generator is None or isinstance(generator, torch.Generator):
        return [generator], None
    gens = list(generator)
    if not gens or not all(isinstance(g, torch.Generator) for g in gens):
        raise TypeError("generator must be a torch.Generator, None, or a non-empty sequence of "
                        "torch.Generators (one per member)")
    return gens, len(gens)


def draw_normal(generators: list, members: int | None, shape: tuple[int, ...], std: float,
                dim: int) -> torch.Tensor:
    """``N(0, std^2)`` entries of ``shape`` from each generator in turn; for members stacked
    along ``dim`` (the member axis), else the single draw."""
    draws = [torch.randn(shape, generator=g) * std for g in generators]
    return draws[0] if members is None else torch.stack(draws, dim)


class VectorField(nn.Module):
    """Base class: a vector field ``f(z; theta)`` with one parameter set per layer.

    Subclasses register their stacked parameters (leading dimension ``layers``, then the member
    axis if any), list their names in ``theta_names`` and implement ``forward(z, theta)`` for
    ``z`` of shape ``[n, width]`` (``[S, n, width]`` for members) and one layer's ``theta``.
    """

    theta_names: tuple[str, ...] = ()
    autonomous: bool = True
    """Whether :meth:`vector_field` ignores its time argument (every field of the library
    does); a field that reads ``t`` sets it to ``False``."""

    def __init__(self, width: int, layers: int, activation: str = "tanh",
                 generator=None):
        super().__init__()
        self.width = positive_int(width, "width")
        self.layers = positive_int(layers, "layers")
        self.activation = activation
        self.sigma = get_activation(activation)
        self.members = member_generators(generator)[1]

    def _draw(self, name: str, shape: tuple[int, ...], std: float, generator) -> None:
        """Register the stacked parameter ``name`` of ``K`` layers, entries ``N(0, std^2)`` of
        ``shape`` per layer, drawn from each member's generator in turn (stacked along the
        member axis 1): a new field draws its parameters with this and no members logic."""
        gens, S = member_generators(generator)
        setattr(self, name, nn.Parameter(draw_normal(gens, S, (self.layers, *shape), std, 1)))

    def _matrix_and_bias(self, matrix: str, generator) -> None:
        """Register the stacked parameters ``matrix^k ~ N(0, 1/width)`` (``width x width``) and
        ``b^k ~ N(0, 0.1^2)``, drawn in that order from each member's generator."""
        d = self.width
        self._draw(matrix, (d, d), 1 / math.sqrt(d), generator)
        self._draw("b", (d,), 0.1, generator)

    # --- the hooks a network and the diagnostics use ---------------------------------------

    def vector_field(self, theta) -> Callable:
        """The field of one layer for the integrator, ``f(t, state)`` with ``theta`` fixed: the
        one vector-field signature of :mod:`lib.integrators` (autonomous here: ``t`` is
        unused)."""
        return lambda t, z: self(z, theta)

    def initial_state(self, z0: torch.Tensor):
        """The state a network starts from, given the lifted inputs ``z0``: ``z0`` itself."""
        return z0

    def readout(self, state) -> torch.Tensor:
        """The features the classifier reads from a state: the state itself."""
        return state

    def linear_parts(self) -> torch.Tensor:
        """The matrices ``M^k`` of the layers' affine maps ``z -> M^k z + b^k``, stacked
        ``[K, (S,) d, d]``; fields without one raise a ``TypeError``."""
        raise TypeError(f"{type(self).__name__} has no single affine map per layer")

    def biases(self) -> torch.Tensor:
        """The biases ``b^k`` of the layers' affine maps, stacked ``[K, (S,) d]``."""
        raise TypeError(f"{type(self).__name__} has no single affine map per layer")

    def set_affine(self, matrix: torch.Tensor | None = None,
                   bias: torch.Tensor | None = None) -> None:
        """Set every layer's matrix ``M^k`` and bias ``b^k`` (broadcast to ``[K, (S,) ...]``)
        without gradient; only for fields whose matrix is a free parameter."""
        raise TypeError(f"{type(self).__name__} cannot set its layers' affine maps")

    # --- the per-layer parameters, reached only through these methods ---------------------

    def stacks(self) -> dict[str, torch.Tensor]:
        """The stacked per-layer parameters by name, each ``[K, ...]``."""
        return {name: getattr(self, name) for name in self.theta_names}

    def thetas(self) -> list[tuple[torch.Tensor, ...]]:
        """Per-layer parameter tuples ``theta^0, ..., theta^{K-1}``."""
        return list(zip(*(p.unbind(0) for p in self.stacks().values())))

    def layer(self, k: int) -> tuple[torch.Tensor, ...]:
        """The parameters ``theta^k`` of layer ``k``."""
        if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < self.layers:
            raise ValueError(f"k must be a layer index in 0..{self.layers - 1}, got {k!r}")
        return tuple(p[k] for p in self.stacks().values())

    def repeat_layers(self, m: int) -> None:
        """Repeat every layer's parameters ``m`` times in place (``K -> m K`` layers): the same
        piecewise-constant ``theta(t)`` on a grid ``m`` times finer."""
        positive_int(m, "m")
        with torch.no_grad():
            for name, p in self.stacks().items():
                setattr(self, name, nn.Parameter(p.repeat_interleave(m, dim=0)))
        self.layers *= m

    def member(self, s: int) -> "VectorField":
        """A single field holding the parameters of member ``s`` (a copy)."""
        if self.members is None:
            raise ValueError("this field has no members (it was built from one seed)")
        if not isinstance(s, int) or not 0 <= s < self.members:
            raise ValueError(f"s must be a member index in 0..{self.members - 1}, got {s!r}")
        single = copy.deepcopy(self)
        with torch.no_grad():
            for name, p in self.stacks().items():
                setattr(single, name, nn.Parameter(p[:, s].clone()))
        single.members = None
        return single

    def extra_repr(self) -> str:
        members = "" if self.members is None else f", members={self.members}"
        return f"width={self.width}, layers={self.layers}, activation={self.activation!r}{members}"


class AffineParameters:
    """The hooks of a field whose layer ``k`` applies an affine map ``z -> A^k z + b^k`` with
    free parameters named ``A`` and ``b`` (mixed into the ResNet and gradient fields and the
    second-order and coupled Hamiltonian fields): other modules read and set the matrices
    through :meth:`linear_parts`, :meth:`biases` and :meth:`set_affine`, never by name."""

    def linear_parts(self) -> torch.Tensor:
        return self.A

    def biases(self) -> torch.Tensor:
        return self.b

    def set_affine(self, matrix=None, bias=None) -> None:
        with torch.no_grad():
            if matrix is not None:
                self.A.copy_(torch.as_tensor(matrix, dtype=self.A.dtype).expand_as(self.A))
            if bias is not None:
                self.b.copy_(torch.as_tensor(bias, dtype=self.b.dtype).expand_as(self.b))


class AffineField(AffineParameters, VectorField):
    """A first-order field of the affine map ``A^k z + b^k`` (:class:`AffineParameters`),
    ``A^k ~ N(0, 1/width)`` and ``b^k ~ N(0, 0.1^2)``."""

    theta_names = ("A", "b")

    def __init__(self, width: int, layers: int, activation: str = "tanh", generator=None):
        super().__init__(width, layers, activation, generator)
        self._matrix_and_bias("A", generator)


class ResNetField(AffineField):
    """The ResNet field ``f(z; A, b) = sigma(A z + b)`` (the talk's first model).

    Each ``A^k`` is initialised ``N(0, 1/width)`` and each ``b^k`` ``N(0, 0.1^2)``.
    """

    def forward(self, z: torch.Tensor, theta: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        A, b = theta
        if A.dim() == 3:  # members: the points axis contiguous, a layout that the state then
            return self.sigma(_points_affine(z, A, b))  # takes (integrators.weighted_sum)
        return self.sigma(affine(z, A, b))


class GradientField(AffineField):
    """The gradient-flow field ``f(z; A, b) = -A^T sigma(A z + b) = -grad_z V``, with the potential
    ``V(z) = sum_i gamma((A z + b)_i)`` and ``gamma' = sigma`` (the talk's stability theorem;
    Celledoni et al. 2021).

    Its Jacobian ``-A^T diag(sigma'(A z + b)) A`` is symmetric; for ``0 <= sigma' <= 1`` its
    eigenvalues lie in ``[-||A||^2, 0]``, so the field is one-sided Lipschitz with
    ``-mu_*^2 <= nu <= 0`` (``mu_*`` the smallest singular value of ``A``).  Initialised as
    :class:`ResNetField`.
    """

    def forward(self, z: torch.Tensor, theta: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        A, b = theta
        return -torch.matmul(self.sigma(affine(z, A, b)), A)


class AntisymmetricField(VectorField):
    """The antisymmetric field of Haber & Ruthotto (2017, section 3),
    ``f(z; W, b) = sigma((W - W^T - kappa I) z + b)``.

    The matrix ``M = W - W^T - kappa I`` has eigenvalues ``-kappa + i omega``; the Jacobian
    ``diag(sigma') M`` is similar to ``D^(1/2) (W - W^T) D^(1/2) - kappa D``
    (``D = diag(sigma')``), so for ``sigma' >= 0`` its eigenvalues have real part ``<= 0``:
    every layer is linearly stable.  The shift ``kappa >= 0`` (default ``0.1``) is fixed, not
    trained; it moves the eigenvalues off the imaginary axis, where the explicit Euler step is
    unstable.  ``W^k`` is initialised ``N(0, 1/width)`` and ``b^k`` ``N(0, 0.1^2)``.
    """

    theta_names = ("W", "b")

    def __init__(self, width: int, layers: int, activation: str = "tanh", generator=None,
                 kappa: float = 0.1):
        super().__init__(width, layers, activation, generator)
        self.kappa = finite_at_least(kappa, "kappa", 0.0, strict=False)
        self._matrix_and_bias("W", generator)

    def matrix(self, theta: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The layer's matrix ``M = W - W^T - kappa I``."""
        W = theta[0]
        return W - W.mT - self.kappa * torch.eye(self.width, dtype=W.dtype, device=W.device)

    def linear_parts(self) -> torch.Tensor:
        return self.matrix((self.W,))

    def biases(self) -> torch.Tensor:
        return self.b

    def forward(self, z: torch.Tensor, theta: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        W, b = theta
        # z M^T + b = z (W^T - W) + b - kappa z
        return self.sigma(affine(z, W - W.mT, b).sub_(z, alpha=self.kappa))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kappa={self.kappa:g}"


class NegativeDefiniteField(VectorField):
    """The field ``f(z; B, b) = sigma(A z + b)`` with the symmetric negative definite matrix
    ``A = -(B B^T + kappa I)`` (a restricted parameter space of the talk; Haber & Ruthotto
    2017).

    ``A`` has eigenvalues ``<= -kappa``, and the Jacobian ``diag(sigma') A`` is similar to the
    symmetric ``D^(1/2) A D^(1/2)`` (``D = diag(sigma')``), so its eigenvalues are real and
    ``<= 0`` for ``sigma' >= 0``; with ``sigma`` the identity the field is one-sided Lipschitz
    with ``nu = max spec(A) <= -kappa``.  The shift ``kappa > 0`` (default ``0.1``) is fixed,
    not trained; ``B^k`` is initialised ``N(0, 1/width)`` and ``b^k`` ``N(0, 0.1^2)``.
    """

    theta_names = ("B", "b")

    def __init__(self, width: int, layers: int, activation: str = "tanh", generator=None,
                 kappa: float = 0.1):
        super().__init__(width, layers, activation, generator)
        self.kappa = finite_at_least(kappa, "kappa", 0.0, strict=True)
        self._matrix_and_bias("B", generator)

    def matrix(self, theta: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The layer's matrix ``A = -(B B^T + kappa I)``."""
        B = theta[0]
        eye = torch.eye(self.width, dtype=B.dtype, device=B.device)
        return -torch.matmul(B, B.mT) - self.kappa * eye

    def linear_parts(self) -> torch.Tensor:
        return self.matrix((self.B,))

    def biases(self) -> torch.Tensor:
        return self.b

    def forward(self, z: torch.Tensor, theta: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        B, b = theta
        # z A^T + b = -(z B) B^T - kappa z + b
        return self.sigma(affine(torch.matmul(z, B), B, b, alpha=-1.0).sub_(z, alpha=self.kappa))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kappa={self.kappa:g}"


FIELDS: dict[str, type[VectorField]] = {"resnet": ResNetField, "gradient": GradientField,
                                        "antisymmetric": AntisymmetricField,
                                        "negdef": NegativeDefiniteField}
"""The first-order fields by the names :class:`lib.models.ODENet` accepts."""


def make_field(name: str, width: int, layers: int, activation: str = "tanh",
               generator=None) -> VectorField:
    """The field called ``name`` in :data:`FIELDS`; a ``ValueError`` lists the names otherwise."""
    if name not in FIELDS:
        raise ValueError(f"unknown field {name!r}; expected one of {sorted(FIELDS)} "
                         "or a VectorField object")
    return FIELDS[name](width, layers, activation, generator=generator)
