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
from dataclasses import dataclass
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
    2016, section 3).  Entries are compared to ``tol``."""
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
    Wanner, Thm. VI.4.3), i.e. ``t`` is its own partner.  No explicit method is (take ``i = j``)."""
    return is_symplectic_pair(t, t, tol)
