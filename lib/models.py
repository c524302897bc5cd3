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

With a :class:`~lib.hamiltonian.HamiltonianField` the state is the pair ``(z, p)``: the lift gives
``(z^0, p^0) = (lift(x), 0)``, each layer is one step of a partitioned method
(:class:`~lib.tableaux.PartitionedTableau`, e.g. Störmer--Verlet) or of a Runge--Kutta tableau on
the pair, and the classifier reads ``z^K`` (Chang et al. 2018; Celledoni et al. 2021, section 3).
Such a network has an exact explicit inverse (:meth:`ODENet.inverse`).
"""
from __future__ import annotations

import copy
import math
from functools import partial
from typing import Sequence

import torch
from torch import nn

from .fields import VectorField, affine, draw_normal, make_field, member_generators, positive_int
from .hamiltonian import HamiltonianField
from .integrators import Separable, require_explicit, require_explicit_pair, rk_solve, rk_step
from .tableaux import PartitionedTableau, get_method

__all__ = ["Classifier", "LinearLift", "ODENet"]


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
        return affine(z, self.w.unsqueeze(-2), self.w0.unsqueeze(-1)).squeeze(-1)

    def member(self, s: int) -> "Classifier":
        """A single classifier holding member ``s``'s parameters (a copy)."""
        single = copy.deepcopy(self)
        with torch.no_grad():
            single.w = nn.Parameter(self.w[s].clone())
            single.w0 = nn.Parameter(self.w0[s].clone())
        single.members = None
        return single


class LinearLift(nn.Module):
    """A learned lift ``z^0 = P x`` from ``in_features`` to ``width`` features (chapter 8: 64
    pixels to the network's width).  ``P ~ N(0, 1/in_features)``; with members ``P`` carries
    the member axis first, ``[S, width, in_features]``."""

    def __init__(self, width: int, in_features: int, generator=None):
        super().__init__()
        gens, self.members = member_generators(generator)
        self.P = nn.Parameter(draw_normal(gens, self.members, (width, in_features),
                                          1 / math.sqrt(in_features), 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, self.P.mT)

    def member(self, s: int) -> "LinearLift":
        """A single lift holding member ``s``'s matrix (a copy)."""
        single = copy.deepcopy(self)
        with torch.no_grad():
            single.P = nn.Parameter(self.P[s].clone())
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
    method: a tableau or its name in :data:`lib.tableaux.METHODS` (explicit only), or, for a
        Hamiltonian field, an explicit pair or its name in :data:`lib.tableaux.PAIRS`
        (``"stormer_verlet"``, ``"symplectic_euler"``); kept as ``net.tableau``.
    activation: a name in :data:`lib.activations.ACTIVATIONS`.
    field: a name in :data:`lib.fields.FIELDS`; a :class:`~lib.fields.VectorField` subclass
        (e.g. :class:`~lib.hamiltonian.SecondOrderField`), built here like a named field; or a
        :class:`~lib.fields.VectorField` object (its own width, layers and members are then the
        network's; ``width``, ``depth`` and ``activation`` must be left out or agree).
    classes: number of classes (2: one logit and a sigmoid; more: softmax).
    seed: an int seeds the initial parameters, so equal arguments give equal networks; a
        sequence of ints gives one member per seed (see the module docstring).
    lift: ``"pad"`` (default) pads the inputs with zeros; ``"linear"`` learns ``z^0 = P x``
        (:class:`LinearLift`, drawn after the classifier, so the other parameters do not change).
    """

    def __init__(self, width: int | None = None, depth: int | None = None, T: float | None = None,
                 method="euler", activation: str | None = None, field: str | VectorField = "resnet",
                 classes: int = 2, in_features: int = 2, seed: int | Sequence[int] = 0,
                 lift: str = "pad"):
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
        elif isinstance(field, str) or (isinstance(field, type) and issubclass(field, VectorField)):
            build = partial(make_field, field) if isinstance(field, str) else field
            self.field = build(positive_int(2 if width is None else width, "width"),
                               positive_int(10 if depth is None else depth, "depth"),
                               "tanh" if activation is None else activation, generator=member_gens)
        else:
            raise TypeError(f"field must be a name or a VectorField (an object, or a subclass to "
                            f"build), got {type(field).__name__}")
        self.depth = self.field.layers
        self.in_features = positive_int(in_features, "in_features")
        if lift not in ("pad", "linear"):
            raise ValueError(f"lift must be 'pad' or 'linear', got {lift!r}")
        if lift == "pad" and self.width < in_features:
            raise ValueError(f"width must be >= in_features = {in_features} (the lift pads with "
                             f"zeros), got {self.width}")
        if T is not None and not (isinstance(T, (int, float)) and not isinstance(T, bool)
                                  and math.isfinite(T) and T > 0):
            raise ValueError(f"T must be a positive finite number or None (h = 1), got {T!r}")
        self.T = float(self.depth if T is None else T)
        self.h = self.T / self.depth
        self.tableau = self._method(method)
        self.classifier = Classifier(self.width, classes, generator=member_gens)
        self.linear_lift = (LinearLift(self.width, in_features, generator=member_gens)
                            if lift == "linear" else None)

    def _method(self, method) -> object:
        method = get_method(method)
        if isinstance(method, PartitionedTableau):
            if not self.is_hamiltonian:
                raise TypeError(
                    f"method {method.name!r} is a partitioned pair, which steps a state (z, p) of "
                    f"a separable Hamiltonian field; the field {type(self.field).__name__} is not "
                    "one: use a field of lib.hamiltonian (e.g. SecondOrderField) or a Runge--Kutta "
                    "tableau such as 'rk4'")
            return require_explicit_pair(method)
        return require_explicit(method)

    @property
    def width(self) -> int:
        return self.field.width

    @property
    def is_hamiltonian(self) -> bool:
        """True when the field is a :class:`~lib.hamiltonian.HamiltonianField`: the state is then
        the pair ``(z, p)``."""
        return isinstance(self.field, HamiltonianField)

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
        if self.linear_lift is not None:
            single.linear_lift = self.linear_lift.member(s)
        single.seeds = None
        return single

    def lift(self, x: torch.Tensor):
        """Zero-pad inputs ``[n, in_features]`` to features ``[n, width]`` (or apply the
        :class:`LinearLift` of ``lift="linear"``); with members, inputs
        ``[S, n, in_features]`` (one data set per member) or ``[n, in_features]`` (shared).  For a
        Hamiltonian network the state ``(z^0, p^0)`` with ``p^0 = 0`` (the network starts at rest:
        for the second-order model ``z^(-1) = z^0``, as in Chang et al. 2018)."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        S = self.members
        shapes = f"[n, {self.in_features}]" + ("" if S is None else f" or [{S}, n, {self.in_features}]")
        if x.dim() == 2 and S is not None:
            x = x.expand(S, *x.shape)
        if (x.dim() != (2 if S is None else 3) or x.shape[-1] != self.in_features
                or (S is not None and x.shape[0] != S)):
            raise ValueError(f"x must have shape {shapes}, got {list(x.shape)}")
        z0 = (nn.functional.pad(x, (0, self.width - self.in_features))
              if self.linear_lift is None else self.linear_lift(x))
        return (z0, torch.zeros_like(z0)) if self.is_hamiltonian else z0

    def _layer_field(self, thetas):
        """The field of a solve, ``f(k, t, state)`` with ``theta^k = thetas[k]``."""
        if self.is_hamiltonian:
            return Separable(lambda k, t, p: self.field.dz(p, thetas[k]),
                             lambda k, t, z: self.field.dp(z, thetas[k]))
        return lambda k, t, z: self.field(z, thetas[k])

    def _solve(self, x: torch.Tensor, trajectory: bool):
        return rk_solve(self._layer_field(self.field.thetas()), self.lift(x), self.h,
                        self.depth, self.tableau, trajectory=trajectory)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The final features ``z^K`` the classifier reads, shape ``[(S,) n, width]``."""
        out = self._solve(x, trajectory=False)
        return out[0] if self.is_hamiltonian else out

    def final_state(self, x: torch.Tensor):
        """The final state: ``z^K``, or for a Hamiltonian network the pair ``(z^K, p^K)``."""
        return self._solve(x, trajectory=False)

    def trajectory(self, x: torch.Tensor) -> torch.Tensor:
        """The states of all layers ``[z^0, ..., z^K]``, shape ``[K+1, (S,) n, width]``.  For a
        Hamiltonian network the phase-space states ``(z^k, p^k)`` joined along the last axis,
        ``[K+1, (S,) n, 2 width]`` (``z^k`` first), the states its field acts on."""
        out = self._solve(x, trajectory=True)
        return torch.cat(out, -1) if self.is_hamiltonian else out

    def _layer_map(self, k: int, theta, inverse: bool):
        if theta is None:
            theta = self.field.layer(k)
        elif not isinstance(k, int) or not 0 <= k < self.depth:
            raise ValueError(f"k must be a layer index in 0..{self.depth - 1}, got {k!r}")
        f = (self.field.separable(theta) if self.is_hamiltonian
             else lambda t, z: self.field(z, theta))
        if not inverse:
            return f, k * self.h, self.h, self.tableau
        if not isinstance(self.tableau, PartitionedTableau) or not self.tableau.adjoint.is_explicit:
            raise ValueError(
                f"the layers of this network (method {self.tableau.name!r}) have no explicit "
                "inverse: a Runge--Kutta step is inverted by its adjoint method, which is implicit "
                "for an explicit tableau. Use a Hamiltonian field with a symplectic pair such as "
                "'stormer_verlet' or 'symplectic_euler'")
        return f, (k + 1) * self.h, -self.h, self.tableau.adjoint

    def step(self, k: int, state, theta=None):
        """Layer ``k``: one step ``Phi_h(state; theta^k)`` (``theta`` defaults to
        ``field.layer(k)``), exactly the operations of layer ``k`` in :meth:`features`."""
        f, t, h, method = self._layer_map(k, theta, inverse=False)
        return rk_step(f, t, state, h, method)

    def inverse_step(self, k: int, state, theta=None):
        """The inverse of layer ``k``, ``Phi_h^(-1)(state; theta^k)``: one step of size ``-h`` of
        the adjoint pair (:attr:`~lib.tableaux.PartitionedTableau.adjoint`), explicit for
        symplectic Euler and Störmer--Verlet.  Exact in exact arithmetic; in floating point the
        reconstruction differs by round-off."""
        f, t, h, method = self._layer_map(k, theta, inverse=True)
        return rk_step(f, t, state, h, method)

    def inverse(self, state, trajectory: bool = False):
        """Run the layers backwards from ``state = (z^K, p^K)`` to the reconstructed
        ``(z^0, p^0)`` with :meth:`inverse_step`; with ``trajectory`` the reconstructed states of
        all layers in layer order, joined like :meth:`trajectory` ``[K+1, (S,) n, 2 width]``."""
        states = [state]
        for k in range(self.depth - 1, -1, -1):
            states.append(self.inverse_step(k, states[-1]))
        if not trajectory:
            return states[-1]
        return torch.stack([torch.cat(s, -1) for s in states[::-1]])

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
