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

from . import state as tree
from .fields import VectorField, affine, draw_normal, make_field, member_generators
from .integrators import Separable, require_explicit, require_explicit_pair
from .layers import Layer
from .tableaux import PartitionedTableau, get_method
from .validate import integer, positive_int, tensor

__all__ = ["Classifier", "LinearLift", "ODENet", "single_network"]


class Classifier(nn.Module):
    """The last layer ``eta(w^T z + w0)``; returns the logits ``w^T z + w0``.

    Two classes use one logit (``eta`` = sigmoid), more classes one per class (softmax).
    ``w ~ N(0, 1/width)``, ``w0 = 0``; with members both carry the member axis first.
    """

    def __init__(self, width: int, classes: int, generator=None):
        super().__init__()
        self.classes = integer(classes, "classes", 2)
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

    def matrix(self) -> torch.Tensor:
        """The read-out as matrices ``[(S,) rows, width]``: the logits are ``matrix() z + bias()``
        (one row for two classes).  A view of ``w``, so in-place changes reach the parameter."""
        return self.w.unsqueeze(-2) if self.classes == 2 else self.w

    def bias(self) -> torch.Tensor:
        """The read-out's offsets ``w0``, ``[(S,) rows]`` or ``[(S,)]`` for two classes."""
        return self.w0

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

    def matrix(self) -> torch.Tensor:
        """The lift's matrix ``P`` ``[(S,) width, in_features]`` (the parameter itself)."""
        return self.P

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
        self.tableau = self._method(method)
        self.classifier = Classifier(self.width, classes, generator=member_gens)
        self.linear_lift = (LinearLift(self.width, in_features, generator=member_gens)
                            if lift == "linear" else None)

    def _method(self, method) -> object:
        method = get_method(method)
        if isinstance(method, PartitionedTableau):
            if not isinstance(self.field.vector_field(self.field.layer(0)), Separable):
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
    def depth(self) -> int:
        """The number of layers ``K``, the field's."""
        return self.field.layers

    @property
    def h(self) -> float:
        """The step ``h = T / K``."""
        return self.T / self.depth

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
        """The first state: inputs ``[n, in_features]`` zero-padded to ``[n, width]`` (or mapped
        by the :class:`LinearLift` of ``lift="linear"``), then the field's
        :meth:`~lib.fields.VectorField.initial_state` (for a Hamiltonian field ``(z^0, 0)``).
        With members, inputs ``[S, n, in_features]`` (one data set per member) or
        ``[n, in_features]`` (shared)."""
        tensor(x, "x")
        S = self.members
        shapes = f"[n, {self.in_features}]" + ("" if S is None else f" or [{S}, n, {self.in_features}]")
        if x.dim() == 2 and S is not None:
            x = x.expand(S, *x.shape)
        if (x.dim() != (2 if S is None else 3) or x.shape[-1] != self.in_features
                or (S is not None and x.shape[0] != S)):
            raise ValueError(f"x must have shape {shapes}, got {list(x.shape)}")
        z0 = (nn.functional.pad(x, (0, self.width - self.in_features))
              if self.linear_lift is None else self.linear_lift(x))
        return self.field.initial_state(z0)

    def layer(self, k: int, theta=None) -> Layer:
        """Layer ``k`` as a map of states, ``y -> Phi_h(y; theta^k)`` from ``t_k = k h``
        (:class:`~lib.layers.Layer`); ``theta`` defaults to ``field.layer(k)``."""
        if theta is None:
            theta = self.field.layer(k)
        elif not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < self.depth:
            raise ValueError(f"k must be a layer index in 0..{self.depth - 1}, got {k!r}")
        return Layer(self.field, tuple(theta), self.tableau, k * self.h, self.h)

    def layers(self) -> list[Layer]:
        """All ``K`` layers, their parameters taken by one ``unbind`` per stacked tensor."""
        return [Layer(self.field, theta, self.tableau, k * self.h, self.h)
                for k, theta in enumerate(self.field.thetas())]

    def batched_layers(self, thetas) -> Layer:
        """All ``K`` layers as one map of stacked states ``[K, n, width]`` (``y^k`` in row ``k``),
        the layers' parameters ``thetas`` stacked ``[K, ...]`` along the batch axis, as members
        are (a single network; the fields are autonomous, so the layers' times play no part):
        one batched step instead of ``K`` (chapter 7's method of successive approximations)."""
        if self.members is not None:
            raise ValueError(f"net has {self.members} members; batched_layers batches the layers "
                             "of one network: pass net.member(s)")
        if not self.field.autonomous:
            raise ValueError(f"batched_layers steps every layer from one time; the field "
                             f"{type(self.field).__name__} depends on t: use net.layers()")
        return Layer(self.field, tuple(thetas), self.tableau, 0.0, self.h)

    def states(self, x: torch.Tensor) -> list:
        """The states ``[y^0, ..., y^K]`` of the inputs ``x``: ``y^0 = lift(x)``,
        ``y^{k+1} = layer(k)(y^k)``; each a tensor ``[(S,) n, width]`` or a pair.  A
        partitioned step returns its last stages as the new state, so a component of ``y^k``
        can be a tensor the next layer also computes with: differentiate with respect to
        clones (``lib.state.tree_map(torch.clone, y)``), not with ``retain_grad`` on them."""
        states = [self.lift(x)]
        for layer in self.layers():
            states.append(layer(states[-1]))
        return states

    def final_state(self, x: torch.Tensor):
        """The last state ``y^K`` (the pair ``(z^K, p^K)`` for a Hamiltonian network)."""
        y = self.lift(x)
        for layer in self.layers():
            y = layer(y)
        return y

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The final features ``z^K`` the classifier reads, shape ``[(S,) n, width]``."""
        return self.field.readout(self.final_state(x))

    def trajectory(self, x: torch.Tensor) -> torch.Tensor:
        """The states of all layers stacked, ``[K+1, (S,) n, width]``; a pair state joined along
        the last axis (:func:`lib.state.join`), ``[K+1, (S,) n, 2 width]`` with ``z^k`` first."""
        return tree.join(tree.stack(self.states(x)))

    def inverse(self, state, trajectory: bool = False):
        """Run the layers backwards from ``state = y^K`` with their inverses
        (:meth:`~lib.layers.Layer.inverse`) to the reconstructed ``y^0``; with ``trajectory``
        the reconstructed states of all layers in layer order, joined like :meth:`trajectory`."""
        states = [state]
        for layer in reversed(self.layers()):
            states.append(layer.inverse()(states[-1]))
        return tree.join(tree.stack(states[::-1])) if trajectory else states[-1]

    def refined(self, m: int) -> "ODENet":
        """The same continuous model (same ``T``, ``theta(t)``, field, method and classifier)
        with ``m`` times as many layers: each ``theta^k`` repeated ``m`` times, step ``h / m``.
        A new network; ``self`` is unchanged."""
        positive_int(m, "m")
        fine = copy.deepcopy(self)
        fine.field.repeat_layers(m)
        return fine

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


def single_network(net, what: str) -> ODENet:
    """``net`` if it is an :class:`ODENet` without members; ``what`` names the computation that
    examines one network at a time."""
    if not isinstance(net, ODENet):
        raise TypeError(f"net must be a lib.models.ODENet, got {type(net).__name__}")
    if net.members is not None:
        raise ValueError(f"net has {net.members} members; {what} examines one network at a "
                         "time: pass net.member(s)")
    return net
