"""Butcher tableaux as validated data.

A Runge--Kutta method with ``s`` stages is the triple ``(a, b, c)``:

    Z_i     = z + h * sum_j a_ij f(t + c_i h, Z_j),   i = 1..s
    z_next  = z + h * sum_i b_i  f(t + c_i h, Z_i)

(Hairer, Norsett & Wanner, *Solving ODEs I*, II.1).  A tableau is checked when it is
built, so a solver never has to trust hard-coded coefficients: ``a`` is square, its
rows sum to ``c`` (the stages are consistent in time) and ``sum(b) = 1`` (the method
is consistent, order >= 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

_TOL = 1e-12


def _as_floats(values, name: str) -> tuple[float, ...]:
    try:
        if isinstance(values, (str, bytes)):
            raise TypeError(f"{name} is a string")
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a sequence of numbers, got {values!r}") from err
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{name} must contain finite numbers, got {values!r}")
    return out


@dataclass(frozen=True)
class ButcherTableau:
    """The coefficients ``(a, b, c)`` of an ``s``-stage Runge--Kutta method.

    ``a`` is ``s x s`` (missing upper entries of an explicit method may be given as
    ragged rows, which are padded with zeros), ``b`` and ``c`` have length ``s``.
    ``order`` is the classical order the method is known to have; the test suite
    measures it on problems with a closed-form solution.
    """

    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    c: tuple[float, ...]
    order: int
    name: str = "custom"

    def __init__(self, a: Sequence[Sequence[float]], b: Sequence[float], c: Sequence[float],
                 order: int, name: str = "custom"):
        b_ = _as_floats(b, "b")
        c_ = _as_floats(c, "c")
        s = len(b_)
        if s == 0:
            raise ValueError("b must have at least one entry (one stage)")
        if len(c_) != s:
            raise ValueError(f"c must have {s} entries like b, got {len(c_)}")
        if isinstance(a, (str, bytes)) or not hasattr(a, "__iter__"):
            raise TypeError(f"a must be a sequence of rows of numbers, got {a!r}")
        rows = [_as_floats(row, f"a[{i}]") for i, row in enumerate(a)]
        if len(rows) != s:
            raise ValueError(f"a must have {s} rows (one per stage), got {len(rows)}")
        a_ = []
        for i, row in enumerate(rows):
            if len(row) > s:
                raise ValueError(f"a must be square {s}x{s}; row {i} has {len(row)} entries")
            a_.append(row + (0.0,) * (s - len(row)))
        for i, row in enumerate(a_):
            if abs(sum(row) - c_[i]) > _TOL:
                raise ValueError(
                    f"row {i} of a sums to {sum(row)!r} but c[{i}] = {c_[i]!r}: "
                    "the rows of a must sum to c")
        if abs(sum(b_) - 1.0) > _TOL:
            raise ValueError(f"the weights b must sum to 1 (consistency), they sum to {sum(b_)!r}")
        if not isinstance(order, int) or order < 1:
            raise ValueError(f"order must be a positive integer, got {order!r}")
        object.__setattr__(self, "a", tuple(a_))
        object.__setattr__(self, "b", b_)
        object.__setattr__(self, "c", c_)
        object.__setattr__(self, "order", order)
        object.__setattr__(self, "name", str(name))

    @property
    def stages(self) -> int:
        """The number of stages ``s``."""
        return len(self.b)

    @property
    def is_explicit(self) -> bool:
        """True when ``a`` is strictly lower triangular (``a_ij = 0`` for ``j >= i``)."""
        return all(self.a[i][j] == 0.0 for i in range(self.stages) for j in range(i, self.stages))

    def __repr__(self) -> str:
        return f"ButcherTableau(name={self.name!r}, stages={self.stages}, order={self.order})"

    def __str__(self) -> str:
        """The tableau in Butcher's layout, ``c | a`` row by row and ``| b`` last, with each
        coefficient written as the nearest fraction of denominator at most 1000."""
        def frac(v: float) -> str:
            return str(Fraction(v).limit_denominator(1000))

        rows = [f"{frac(ci):>5} | " + " ".join(f"{frac(v):>5}" for v in row)
                for ci, row in zip(self.c, self.a)]
        rows.append("      | " + " ".join(f"{frac(v):>5}" for v in self.b))
        return "\n".join(rows)


EULER = ButcherTableau(a=[[0]], b=[1], c=[0], order=1, name="euler")
"""Explicit Euler: ``z + h f(z)``. With ``h = 1`` this is the ResNet layer."""

MIDPOINT = ButcherTableau(a=[[0], [1 / 2]], b=[0, 1], c=[0, 1 / 2], order=2, name="midpoint")
"""Explicit midpoint rule (Runge 1895). Note ``b_1 = 0``."""

HEUN = ButcherTableau(a=[[0], [1]], b=[1 / 2, 1 / 2], c=[0, 1], order=2, name="heun")
"""Heun's method, the improved Euler method (explicit trapezoidal rule)."""

KUTTA3 = ButcherTableau(a=[[0], [1 / 2], [-1, 2]], b=[1 / 6, 2 / 3, 1 / 6], c=[0, 1 / 2, 1],
                        order=3, name="kutta3")
"""Kutta's third-order method (Kutta 1901)."""

RK4 = ButcherTableau(a=[[0], [1 / 2], [0, 1 / 2], [0, 0, 1]], b=[1 / 6, 1 / 3, 1 / 3, 1 / 6],
                     c=[0, 1 / 2, 1 / 2, 1], order=4, name="rk4")
"""The classic fourth-order Runge--Kutta method."""

RK38 = ButcherTableau(a=[[0], [1 / 3], [-1 / 3, 1], [1, -1, 1]], b=[1 / 8, 3 / 8, 3 / 8, 1 / 8],
                      c=[0, 1 / 3, 2 / 3, 1], order=4, name="rk38")
"""Kutta's 3/8 rule, fourth order (torchdiffeq's fixed-grid ``rk4``)."""

DOPRI5 = ButcherTableau(
    a=[[0], [1 / 5], [3 / 40, 9 / 40], [44 / 45, -56 / 15, 32 / 9],
       [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
       [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
       [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84]],
    b=[35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0],
    c=[0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1], order=5, name="dopri5")
"""Dormand--Prince 5(4) (Dormand & Prince 1980), its fifth-order weights as a fixed-step method
(torchdiffeq's default solver without the error estimate).  Note ``b_2 = b_7 = 0``.  Not in
:data:`METHODS`, the six classical methods the chapters tabulate; pass it as ``method=DOPRI5``."""

METHODS: dict[str, ButcherTableau] = {t.name: t for t in (EULER, MIDPOINT, HEUN, KUTTA3, RK4, RK38)}
"""Registry of the named explicit methods, keyed by lower-case name."""


def get_tableau(method: str | ButcherTableau) -> ButcherTableau:
    """Return the tableau named ``method`` (case-insensitive), or ``method`` itself."""
    if isinstance(method, ButcherTableau):
        return method
    if not isinstance(method, str):
        raise TypeError(f"method must be a name or a ButcherTableau, got {type(method).__name__}")
    try:
        return METHODS[method.lower()]
    except KeyError:
        raise ValueError(
            f"unknown method {method!r}; expected one of {sorted(METHODS)} or a ButcherTableau"
        ) from None


# --- Symplectic partners: the adjoint of a Runge--Kutta method (Sanz-Serna 2016) -------------

_ORDER_CONDITIONS = (
    # (order, condition on the weights b, the matrix a and the nodes c), Hairer, Norsett &
    # Wanner, *Solving ODEs I*, Table II.2.2: one condition per rooted tree with <= 4 vertices.
    (1, lambda a, b, c, s: sum(b) - 1),
    (2, lambda a, b, c, s: sum(b[i] * c[i] for i in s) - 1 / 2),
    (3, lambda a, b, c, s: sum(b[i] * c[i] ** 2 for i in s) - 1 / 3),
    (3, lambda a, b, c, s: sum(b[i] * a[i][j] * c[j] for i in s for j in s) - 1 / 6),
    (4, lambda a, b, c, s: sum(b[i] * c[i] ** 3 for i in s) - 1 / 4),
    (4, lambda a, b, c, s: sum(b[i] * c[i] * a[i][j] * c[j] for i in s for j in s) - 1 / 8),
    (4, lambda a, b, c, s: sum(b[i] * a[i][j] * c[j] ** 2 for i in s for j in s) - 1 / 12),
    (4, lambda a, b, c, s: sum(b[i] * a[i][j] * a[j][k] * c[k] for i in s for j in s for k in s)
     - 1 / 24),
)


def _classical_order(a, b, c) -> int:
    """The largest ``q <= 4`` such that ``(a, b, c)`` satisfies every order condition of order
    ``<= q`` (Hairer, Norsett & Wanner, *Solving ODEs I*, II.2); at least 1 as ``sum(b) = 1``."""
    s = range(len(b))
    order = 0
    for q in range(1, 5):
        if any(abs(cond(a, b, c, s)) > 1e-10 for p, cond in _ORDER_CONDITIONS if p == q):
            break
        order = q
    return order


def _check_tableau(t, name: str) -> ButcherTableau:
    if not isinstance(t, ButcherTableau):
        raise TypeError(f"{name} must be a ButcherTableau, got {type(t).__name__}")
    return t


def symplectic_partner(t: ButcherTableau) -> ButcherTableau:
    """The symplectic partner (adjoint tableau) of ``t = (a, b)``:

        abar_ij = b_j - b_j a_ji / b_i,   bbar = b,   cbar_i = sum_j abar_ij.

    Applied to the adjoint equation ``p' = -J(z)^T p`` alongside ``t`` applied to ``z' = f(z)``,
    the pair is a symplectic partitioned Runge--Kutta method, and its backward sweep is exactly
    the chain rule through the steps of ``t``, i.e. the DTO gradient (Sanz-Serna 2016, SIAM
    Review 58:3--33, section 3; Hager 2000).  The partner of an explicit method is implicit
    forward in time but explicit backwards.  ``order`` is the partner's own classical order as a
    standalone method (checked up to 4); the pair always has the order of ``t``.

    Raises ``ValueError`` when some ``b_i = 0`` (explicit midpoint): the formula divides by
    ``b_i``, and the discrete adjoint is then not a Runge--Kutta method at all.
    """
    t = _check_tableau(t, "t")
    zero = [i for i, bi in enumerate(t.b) if bi == 0.0]
    if zero:
        raise ValueError(
            f"tableau {t.name!r} has weight b_{zero[0] + 1} = 0, so its symplectic partner "
            f"abar_ij = b_j - b_j a_ji / b_i divides by zero: the stage {zero[0] + 1} enters the "
            "step only through the later stages and its adjoint P_i = lambda_i / (h b_i) does not "
            "exist. The discrete adjoint (DTO, autograd) is still well defined, but it is not a "
            "Runge--Kutta method applied to p' = -J^T p.")
    s = range(t.stages)
    a = tuple(tuple(t.b[j] - t.b[j] * t.a[j][i] / t.b[i] for j in s) for i in s)
    c = tuple(sum(row) for row in a)
    return ButcherTableau(a=a, b=t.b, c=c, order=max(1, _classical_order(a, t.b, c)),
                          name=f"partner({t.name})")


def is_symplectic_pair(t: ButcherTableau, s: ButcherTableau, tol: float = 1e-12) -> bool:
    """True when the partitioned Runge--Kutta pair ``(t, s)`` (``t`` for ``z``, ``s`` for ``p``)
    is symplectic:  ``b_i = bhat_i``  and  ``b_i ahat_ij + bhat_j a_ji - b_i bhat_j = 0``  for all
    ``i, j`` (Hairer, Lubich & Wanner, *Geometric Numerical Integration*, Thm. VI.4.6; Sanz-Serna
    2016, section 3).  The conditions are sufficient; for an irreducible pair applied to general
    partitioned systems they are also necessary (Abia & Sanz-Serna 1993).  Entries are compared
    to ``tol``."""
    t = _check_tableau(t, "t")
    s = _check_tableau(s, "s")
    if t.stages != s.stages:
        return False
    n = range(t.stages)
    return (all(abs(t.b[i] - s.b[i]) <= tol for i in n)
            and all(abs(t.b[i] * s.a[i][j] + s.b[j] * t.a[j][i] - t.b[i] * s.b[j]) <= tol
                    for i in n for j in n))


def is_symplectic(t: ButcherTableau, tol: float = 1e-12) -> bool:
    """True when the Runge--Kutta method ``t`` is symplectic (conserves quadratic invariants):
    ``b_i a_ij + b_j a_ji - b_i b_j = 0`` for all ``i, j`` (Sanz-Serna 1988; Hairer, Lubich &
    Wanner, Thm. VI.4.3), i.e. ``t`` is its own partner; for an irreducible method also only
    then (Abia & Sanz-Serna 1993).  No explicit method is (take ``i = j``)."""
    return is_symplectic_pair(t, t, tol)


# --- Partitioned Runge--Kutta methods: one tableau for z, one for p --------------------------

IMPLICIT_EULER = ButcherTableau(a=[[1]], b=[1], c=[1], order=1, name="implicit_euler")
"""Implicit Euler, ``Z_1 = z + h f(Z_1)``: the p-half of symplectic Euler."""

LOBATTO_IIIA2 = ButcherTableau(a=[[0, 0], [1 / 2, 1 / 2]], b=[1 / 2, 1 / 2], c=[0, 1], order=2,
                               name="lobatto_iiia2")
"""Two-stage Lobatto IIIA, the implicit trapezoidal rule."""

LOBATTO_IIIB2 = ButcherTableau(a=[[1 / 2, 0], [1 / 2, 0]], b=[1 / 2, 1 / 2], c=[1 / 2, 1 / 2],
                               order=2, name="lobatto_iiib2")
"""Two-stage Lobatto IIIB; with Lobatto IIIA it makes the Störmer--Verlet pair."""

SLOPE_TIMES = ("argument", "equation", "z", "p")
"""The ways a partitioned step can place the stage times of a non-autonomous field (see
:meth:`PartitionedTableau.slope_times`)."""


def _stage_schedule(z: ButcherTableau, p: ButcherTableau):
    """An order in which the stages of the pair ``(z, p)`` can be computed one after the other on
    a separable field, or ``None`` when there is none (the pair is implicit).

    ``Z_i`` needs ``P_j`` (through ``dZ_j = F(P_j)``) whenever ``a_ij != 0``, and ``P_i`` needs
    ``Z_j`` (through ``dP_j = G(Z_j)``) whenever ``ahat_ij != 0``; the pair is explicit iff
    this dependency graph is acyclic.  Ties are broken by stage index, ``z`` first."""
    s = z.stages
    needs = {("z", i): {("p", j) for j in range(s) if z.a[i][j] != 0.0} for i in range(s)}
    needs.update({("p", i): {("z", j) for j in range(s) if p.a[i][j] != 0.0} for i in range(s)})
    nodes = sorted(needs, key=lambda node: (node[1], node[0] != "z"))
    done: list = []
    while len(done) < 2 * s:
        ready = [n for n in nodes if n not in done and needs[n] <= set(done)]
        if not ready:
            return None
        done.append(ready[0])
    return tuple(done)


def _first_equal_row(t: ButcherTableau) -> tuple[int, ...]:
    """For each stage ``i`` the first stage ``j <= i`` with the same row of ``a``: its stage value
    is then the same (a step computes it once)."""
    return tuple(next(j for j in range(i + 1) if t.a[j] == t.a[i]) for i in range(t.stages))


def _adjoint_tableau(t: ButcherTableau) -> ButcherTableau:
    """The adjoint method ``a*_ij = b_(s+1-j) - a_(s+1-i, s+1-j)``, ``b*_i = b_(s+1-i)``
    (Hairer, Lubich & Wanner, *Geometric Numerical Integration*, V.1.1 and II.3, eq. (3.6))."""
    s = t.stages
    a = [[t.b[s - 1 - j] - t.a[s - 1 - i][s - 1 - j] for j in range(s)] for i in range(s)]
    return ButcherTableau(a=a, b=t.b[::-1], c=[sum(row) for row in a], order=t.order,
                          name=f"adjoint({t.name})")


@dataclass(frozen=True)
class PartitionedTableau:
    """A partitioned Runge--Kutta method for ``z' = F(t, p)``, ``p' = G(t, z)``: the tableau
    ``z = (a, beta, c)`` steps ``z`` and ``p = (ahat, betahat, chat)`` steps ``p``:

        Z_i = z + h sum_j a_ij dZ_j,     dZ_i = F(P_i),     z_next = z + h sum_i beta_i dZ_i,
        P_i = p + h sum_j ahat_ij dP_j,  dP_i = G(Z_i),     p_next = p + h sum_i betahat_i dP_i

    (Hairer, Lubich & Wanner, *Geometric Numerical Integration*, II.2.2; Sanz-Serna & Calvo 1994).
    Both tableaux must have the same number of stages.  A pair can be explicit on a separable
    field although neither tableau is explicit alone (Störmer--Verlet is Lobatto IIIA with
    IIIB): :attr:`is_explicit` decides it from the order in which the stages can be computed.
    ``order`` is the classical order the pair is known to have (the tests measure it).
    """

    z: ButcherTableau
    p: ButcherTableau
    order: int
    name: str = "custom pair"

    def __post_init__(self):
        for part in ("z", "p"):
            if not isinstance(getattr(self, part), ButcherTableau):
                raise TypeError(f"{part} must be a ButcherTableau (the tableau that steps {part}), "
                                f"got {type(getattr(self, part)).__name__}")
        if self.z.stages != self.p.stages:
            raise ValueError(
                f"the tableaux of a pair must have the same number of stages (one z-stage and one "
                f"p-stage per stage index): z {self.z.name!r} has {self.z.stages}, p "
                f"{self.p.name!r} has {self.p.stages}; pad the shorter with a zero stage")
        if not isinstance(self.order, int) or isinstance(self.order, bool) or self.order < 1:
            raise ValueError(f"order must be a positive integer, got {self.order!r}")
        object.__setattr__(self, "name", str(self.name))
        object.__setattr__(self, "_schedule", _stage_schedule(self.z, self.p))
        object.__setattr__(self, "first_equal_stage",
                           (_first_equal_row(self.z), _first_equal_row(self.p)))

    first_equal_stage: tuple = field(init=False, repr=False, compare=False)
    """For each tableau and stage ``i``, the first stage ``j <= i`` with the same row: its stage
    value is the same, and a step computes it once."""

    @property
    def stages(self) -> int:
        """The number of stages ``s`` of each tableau."""
        return self.z.stages

    @property
    def is_symplectic(self) -> bool:
        """The symplecticity conditions of a partitioned pair (Hairer, Lubich & Wanner,
        Thm. VI.4.6; Sanz-Serna 1992): ``beta_i = betahat_i`` and
        ``beta_i ahat_ij + betahat_j a_ji - beta_i betahat_j = 0`` for all ``i, j``
        (:func:`is_symplectic_pair`).  For a separable ``H`` the second condition alone suffices."""
        return is_symplectic_pair(self.z, self.p)

    @property
    def is_explicit(self) -> bool:
        """True when the stages can be computed one after the other on a separable field: the
        graph in which ``Z_i`` depends on ``P_j`` for ``a_ij != 0`` and ``P_i`` on ``Z_j`` for
        ``ahat_ij != 0`` has no cycle (see :attr:`schedule`)."""
        return self._schedule is not None

    @property
    def schedule(self) -> tuple[tuple[str, int], ...]:
        """The stages in the order a step computes them, ``(("z", i) or ("p", i), ...)``;
        a ``ValueError`` for an implicit pair."""
        if self._schedule is None:
            raise ValueError(
                f"pair {self.name!r} is implicit on a separable field: its stages depend on each "
                "other in a cycle (Z_i needs P_j where a_ij != 0, P_i needs Z_j where "
                "ahat_ij != 0), so no order computes them one after the other; use an explicit "
                f"pair, e.g. one of {sorted(PAIRS)}")
        return self._schedule

    @property
    def adjoint(self) -> "PartitionedTableau":
        """The adjoint pair ``Phi*_h = Phi_(-h)^(-1)`` (each tableau replaced by its adjoint,
        Hairer, Lubich & Wanner, V.1): one step of it of size ``-h`` from ``(t + h, z_1, p_1)``
        undoes one step of this pair in exact arithmetic.  Returns the registered pair with
        those coefficients when there is one (Störmer--Verlet is its own adjoint; the two
        orderings of symplectic Euler are each other's)."""
        if "_adjoint" not in self.__dict__:
            z, p = _adjoint_tableau(self.z), _adjoint_tableau(self.p)
            found = [pair for pair in PAIRS.values()
                     if (pair.z.a, pair.z.b, pair.p.a, pair.p.b) == (z.a, z.b, p.a, p.b)]
            object.__setattr__(self, "_adjoint", found[0] if found else PartitionedTableau(
                z=z, p=p, order=self.order, name=f"adjoint({self.name})"))
        return self._adjoint

    def slope_times(self, times: str = "argument") -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The relative times ``(tau_i, tauhat_i)`` at which a step evaluates the stage
        derivatives ``dZ_i = F(t + tau_i h, P_i)`` and ``dP_i = G(t + tauhat_i h, Z_i)`` of a
        non-autonomous field:

        - ``"argument"`` (default): each slope at the node of the stage it reads, ``tau = chat``,
          ``tauhat = c`` (Störmer--Verlet is then Strang splitting: kick at ``t``, drift at
          ``t + h/2``, kick at ``t + h``);
        - ``"equation"``: each equation at the nodes of its own tableau, ``tau = c``,
          ``tauhat = chat``;
        - ``"z"`` or ``"p"``: both slopes of stage ``i`` at the common node ``c_i`` or ``chat_i``
          (time is then a variable stepped with the ``z`` or the ``p`` tableau).

        For a separable ``H`` each choice keeps the step symplectic; for a non-separable one only
        a common node does (Jay 2021)."""
        c, chat = self.z.c, self.p.c
        table = {"argument": (chat, c), "equation": (c, chat), "z": (c, c), "p": (chat, chat)}
        if times not in table:
            raise ValueError(f"times must be one of {list(SLOPE_TIMES)}, got {times!r}")
        return table[times]

    def __repr__(self) -> str:
        return (f"PartitionedTableau(name={self.name!r}, z={self.z.name!r}, p={self.p.name!r}, "
                f"stages={self.stages}, order={self.order})")

    def __str__(self) -> str:
        """Both tableaux in Butcher's layout, ``z`` first."""
        return f"z: {self.z.name}\n{self.z}\np: {self.p.name}\n{self.p}"


SYMPLECTIC_EULER_PZ = PartitionedTableau(z=EULER, p=IMPLICIT_EULER, order=1,
                                         name="symplectic_euler_pz")
"""Symplectic Euler, ``p`` first: ``p_1 = p + h G(z)``, ``z_1 = z + h F(p_1)`` (Hairer, Lubich &
Wanner, eq. (I.1.9))."""

SYMPLECTIC_EULER_ZP = PartitionedTableau(z=IMPLICIT_EULER, p=EULER, order=1,
                                         name="symplectic_euler_zp")
"""Symplectic Euler, ``z`` first: ``z_1 = z + h F(p)``, ``p_1 = p + h G(z_1)`` (eq. (I.1.10))."""

STORMER_VERLET_PZP = PartitionedTableau(z=LOBATTO_IIIA2, p=LOBATTO_IIIB2, order=2,
                                        name="stormer_verlet_pzp")
"""Störmer--Verlet with half steps in ``p`` (kick--drift--kick, velocity Verlet):
``p_1/2 = p + h/2 G(z)``, ``z_1 = z + h F(p_1/2)``, ``p_1 = p_1/2 + h/2 G(z_1)`` (eq. (I.1.17))."""

STORMER_VERLET_ZPZ = PartitionedTableau(z=LOBATTO_IIIB2, p=LOBATTO_IIIA2, order=2,
                                        name="stormer_verlet_zpz")
"""Störmer--Verlet with half steps in ``z`` (drift--kick--drift, position Verlet):
``z_1/2 = z + h/2 F(p)``, ``p_1 = p + h G(z_1/2)``, ``z_1 = z_1/2 + h/2 F(p_1)`` (eq. (I.1.18))."""

SYMPLECTIC_EULER = SYMPLECTIC_EULER_PZ
"""The default ordering of symplectic Euler (``"symplectic_euler"`` in :func:`get_method`)."""

STORMER_VERLET = STORMER_VERLET_PZP
"""The default form of Störmer--Verlet (``"stormer_verlet"`` in :func:`get_method`)."""

PAIRS: dict[str, PartitionedTableau] = {
    t.name: t for t in (SYMPLECTIC_EULER_PZ, SYMPLECTIC_EULER_ZP, STORMER_VERLET_PZP,
                        STORMER_VERLET_ZPZ)}
"""Registry of the named explicit partitioned pairs, keyed by name."""

_PAIR_ALIASES = {"symplectic_euler": SYMPLECTIC_EULER, "stormer_verlet": STORMER_VERLET}


def get_method(method) -> ButcherTableau | PartitionedTableau:
    """The tableau or pair named ``method`` (case-insensitive; a name in :data:`METHODS` or
    :data:`PAIRS`, or ``"symplectic_euler"``/``"stormer_verlet"`` for the default forms), or
    ``method`` itself when it is a :class:`ButcherTableau` or :class:`PartitionedTableau`."""
    if isinstance(method, (ButcherTableau, PartitionedTableau)):
        return method
    if not isinstance(method, str):
        raise TypeError("method must be a name, a ButcherTableau or a PartitionedTableau, got "
                        f"{type(method).__name__}")
    key = method.lower()
    found = METHODS.get(key) or PAIRS.get(key) or _PAIR_ALIASES.get(key)
    if found is None:
        raise ValueError(f"unknown method {method!r}; expected one of {sorted(METHODS)} "
                         f"(tableaux), {sorted(PAIRS) + sorted(_PAIR_ALIASES)} (pairs), or a "
                         "ButcherTableau or PartitionedTableau")
    return found
