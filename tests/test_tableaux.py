"""Butcher tableaux are validated data: bad coefficients are refused when built, with a message
naming the problem; the named methods satisfy the order conditions they claim."""
from fractions import Fraction

import pytest

from lib import tableaux
from lib.tableaux import METHODS, ButcherTableau, get_tableau

GOOD = dict(a=[[0], [1]], b=[0.5, 0.5], c=[0, 1], order=2)


def make(**changes):
    return ButcherTableau(**{**GOOD, **changes})


def test_good_tableau_is_stored_square_and_padded():
    t = make(name="mine")
    assert t.a == ((0.0, 0.0), (1.0, 0.0))
    assert t.b == (0.5, 0.5) and t.c == (0.0, 1.0)
    assert t.stages == 2 and t.order == 2 and t.name == "mine"
    assert all(isinstance(v, float) for row in t.a for v in row)


@pytest.mark.parametrize("changes, message", [
    (dict(a=[[0, 0, 0], [1, 0]]), "square"),                   # a row longer than s
    (dict(a=[[0]]), "2 rows"),                                  # too few rows
    (dict(a=[[0], [1], [1]]), "2 rows"),                        # too many rows
    (dict(c=[0, 0.5]), "sum to c"),                             # row 1 sums to 1, c_1 = 0.5
    (dict(a=[[0.1], [1]], c=[0, 1]), "row 0"),                  # row 0 sums to 0.1, c_0 = 0
    (dict(b=[0.5, 0.6]), "sum to 1"),                           # inconsistent weights
    (dict(c=[0, 1, 1]), "c must have 2 entries"),               # wrong length of c
    (dict(b=[1], c=[0], a=[[0]], order=0), "order"),            # order must be >= 1
    (dict(b=[], c=[], a=[]), "at least one"),                   # no stages
])
def test_bad_tableau_is_refused_with_a_message_naming_the_problem(changes, message):
    with pytest.raises(ValueError, match=message):
        make(**changes)


@pytest.mark.parametrize("changes, name", [
    (dict(b=["x", 0.5]), "b"),
    (dict(c=[0, None]), "c"),
    (dict(a=[[0], ["one"]]), r"a\[1\]"),
    (dict(b=0.5), "b"),
    (dict(b="11"), "b"),
    (dict(a=5), "a must be a sequence of rows"),
])
def test_non_numbers_are_refused_with_a_type_error_naming_the_argument(changes, name):
    with pytest.raises(TypeError, match=name):
        make(**changes)


@pytest.mark.parametrize("changes, name", [
    (dict(b=[float("nan"), 0.5]), "b"),
    (dict(a=[[0], [float("inf")]]), r"a\[1\]"),
    (dict(c=[0, float("nan")]), "c"),
])
def test_non_finite_coefficients_are_refused(changes, name):
    with pytest.raises(ValueError, match=name + " must contain finite numbers"):
        make(**changes)


def test_tableau_is_immutable():
    with pytest.raises(AttributeError):
        tableaux.EULER.b = (2.0,)


def test_is_explicit():
    assert all(t.is_explicit for t in METHODS.values())
    implicit_midpoint = ButcherTableau(a=[[0.5]], b=[1], c=[0.5], order=2)
    trapezoid = ButcherTableau(a=[[0, 0], [0.5, 0.5]], b=[0.5, 0.5], c=[0, 1], order=2)
    upper = ButcherTableau(a=[[0, 0.5], [0.5, 0]], b=[0.5, 0.5], c=[0.5, 0.5], order=1)
    assert not implicit_midpoint.is_explicit
    assert not trapezoid.is_explicit       # diagonal entry a_22
    assert not upper.is_explicit           # entry above the diagonal only


def _order_conditions(t):
    """The classical order conditions up to order 4 (Hairer, Norsett & Wanner II.2, Table 2.2),
    evaluated in exact rational arithmetic from the float coefficients' nearest fractions."""
    a = [[Fraction(v).limit_denominator(1000) for v in row] for row in t.a]
    b = [Fraction(v).limit_denominator(1000) for v in t.b]
    c = [Fraction(v).limit_denominator(1000) for v in t.c]
    s = range(t.stages)
    ac = [sum(a[i][j] * c[j] for j in s) for i in s]
    return {
        1: [sum(b) == 1],
        2: [sum(b[i] * c[i] for i in s) == Fraction(1, 2)],
        3: [sum(b[i] * c[i] ** 2 for i in s) == Fraction(1, 3),
            sum(b[i] * ac[i] for i in s) == Fraction(1, 6)],
        4: [sum(b[i] * c[i] ** 3 for i in s) == Fraction(1, 4),
            sum(b[i] * c[i] * ac[i] for i in s) == Fraction(1, 8),
            sum(b[i] * a[i][j] * c[j] ** 2 for i in s for j in s) == Fraction(1, 12),
            sum(b[i] * a[i][j] * ac[j] for i in s for j in s) == Fraction(1, 24)],
    }


@pytest.mark.parametrize("name", sorted(METHODS))
def test_named_method_satisfies_exactly_the_order_conditions_of_its_order(name):
    t = METHODS[name]
    conditions = _order_conditions(t)
    for p in range(1, t.order + 1):
        assert all(conditions[p]), f"{name} violates an order-{p} condition"
    if t.order < 4:
        assert not all(conditions[t.order + 1]), f"{name} is of higher order than it claims"


def test_registry_holds_the_six_named_methods_under_their_names():
    assert set(METHODS) == {"euler", "midpoint", "heun", "kutta3", "rk4", "rk38"}
    assert all(METHODS[name].name == name for name in METHODS)
    assert METHODS["rk4"] is tableaux.RK4 and METHODS["rk38"] is tableaux.RK38
    assert tableaux.RK4.b == (1 / 6, 1 / 3, 1 / 3, 1 / 6)      # classic, not the 3/8 rule
    assert tableaux.RK38.b == (1 / 8, 3 / 8, 3 / 8, 1 / 8)
    assert tableaux.MIDPOINT.b == (0.0, 1.0)
    assert tableaux.HEUN.b == (0.5, 0.5)


def test_get_tableau_by_name_is_case_insensitive_and_passes_tableaux_through():
    assert get_tableau("RK4") is tableaux.RK4
    assert get_tableau("euler") is tableaux.EULER
    custom = make()
    assert get_tableau(custom) is custom


def test_get_tableau_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown method 'rk5'.*euler"):
        get_tableau("rk5")
    with pytest.raises(TypeError, match="method"):
        get_tableau(4)


def test_str_is_butchers_layout_with_fractions():
    from lib.tableaux import KUTTA3
    assert str(KUTTA3).splitlines() == [
        "    0 |     0     0     0",
        "  1/2 |   1/2     0     0",
        "    1 |    -1     2     0",
        "      |   1/6   2/3   1/6",
    ]


def test_a_pair_with_other_weights_is_not_symplectic_though_its_coupling_condition_holds():
    """Both conditions of Thm. VI.4.6 (Hairer, Lubich & Wanner) are needed: the pair of Heun
    (b = (1/2, 1/2)) with ahat_ij = bhat_j (1 - a_ji / b_i) and the other weights
    bhat = (1/4, 3/4) satisfies b_i ahat_ij + bhat_j a_ji - b_i bhat_j = 0 exactly, yet
    b != bhat, so it is not symplectic.  (Found by planting the removal of b_i = bhat_i.)"""
    heun = METHODS["heun"]
    bhat = [Fraction(1, 4), Fraction(3, 4)]
    a = [[Fraction(v).limit_denominator(100) for v in row] for row in heun.a]
    b = [Fraction(v).limit_denominator(100) for v in heun.b]
    ahat = [[bhat[j] * (1 - a[j][i] / b[i]) for j in range(2)] for i in range(2)]
    coupling = [b[i] * ahat[i][j] + bhat[j] * a[j][i] - b[i] * bhat[j]
                for i in range(2) for j in range(2)]
    assert coupling == [0, 0, 0, 0]                            # the second condition holds
    other = ButcherTableau(a=ahat, b=bhat, c=[sum(row) for row in ahat], order=1)
    assert not tableaux.is_symplectic_pair(heun, other)        # b = bhat fails
    assert not tableaux.is_symplectic_pair(other, heun)
    partner = tableaux.symplectic_partner(heun)                # same coupling, b = bhat
    assert tableaux.is_symplectic_pair(heun, partner)
