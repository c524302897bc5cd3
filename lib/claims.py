"""The claims a chapter's prose relies on, checked where they are computed.

Every number the book prints is one of four kinds (``CONTRIBUTING.md``): exact by construction
(compared exactly), round-off (shown as a bound in units of the working precision, never as
noise digits), an approximation of known size (printed to its stable digits), or a training
outcome (over several seeds, with the spread).  Whatever the prose concludes from such a number
is stated here once more as a claim with an explicit tolerance.  A claim that fails raises
:class:`ClaimError` naming the claim, the value and the tolerance, so a notebook that no longer
supports its text stops there (on any machine, in CI and on Colab alike).

Each check returns a short text that is the same on every machine (the tolerance, never the
measured digits), to be printed beside the result, and records the claim; :func:`checked` lists
the claims a chapter has checked so far.
"""
from __future__ import annotations

import math

import torch

__all__ = ["ClaimError", "epsilon", "roundoff", "at_most", "at_least", "between", "near",
           "exactly", "holds", "checked"]

_CHECKED: list[str] = []


class ClaimError(AssertionError):
    """A claim of the book does not hold for the numbers just computed."""


def epsilon(dtype: torch.dtype = torch.float64) -> float:
    """The machine epsilon ``eps`` of a floating-point ``dtype`` (``2^-52`` for float64)."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    return torch.finfo(dtype).eps


def _number(value, name: str = "value") -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a single number, got a tensor of shape "
                             f"{list(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number or a one-element tensor, got {value!r}")
    return float(value)


def _record(claim: str, ok: bool, value: str, expected: str) -> str:
    if not isinstance(claim, str) or not claim.strip():
        raise TypeError("claim must be a non-empty sentence saying what is claimed")
    if not ok:
        raise ClaimError(f"claim failed: {claim}: got {value}, expected {expected}")
    _CHECKED.append(f"{claim} ({expected})")
    return expected


def roundoff(claim: str, value, ulps: float, dtype: torch.dtype = torch.float64) -> str:
    """Check that a difference that is zero in exact arithmetic is at most ``ulps`` units of
    the working precision, ``value <= ulps * eps(dtype)``; returns ``"≤ {ulps} ε"``."""
    v = _number(value)
    bound = ulps * epsilon(dtype)
    label = f"≤ {ulps:g} ε" + ("" if dtype == torch.float64 else f" ({dtype})".replace("torch.", ""))
    return _record(claim, abs(v) <= bound, f"{v:.3e} = {v / epsilon(dtype):.3g} ε", label)


def at_most(claim: str, value, bound) -> str:
    """Check ``value <= bound``; returns ``"≤ {bound}"``."""
    v, b = _number(value), _number(bound, "bound")
    return _record(claim, v <= b, f"{v:.6g}", f"≤ {b:g}")


def at_least(claim: str, value, bound) -> str:
    """Check ``value >= bound``; returns ``"≥ {bound}"``."""
    v, b = _number(value), _number(bound, "bound")
    return _record(claim, v >= b, f"{v:.6g}", f"≥ {b:g}")


def between(claim: str, value, low, high) -> str:
    """Check ``low <= value <= high``; returns ``"in [low, high]"``."""
    v, lo, hi = _number(value), _number(low, "low"), _number(high, "high")
    if lo > hi:
        raise ValueError(f"low = {lo:g} must not exceed high = {hi:g}")
    return _record(claim, lo <= v <= hi, f"{v:.6g}", f"in [{lo:g}, {hi:g}]")


def near(claim: str, value, target, tol) -> str:
    """Check ``|value - target| <= tol`` (an approximation of known size); returns
    ``"{target} ± {tol}"``."""
    v, t, e = _number(value), _number(target, "target"), _number(tol, "tol")
    if not e >= 0:
        raise ValueError(f"tol must be >= 0, got {e!r}")
    return _record(claim, math.isfinite(v) and abs(v - t) <= e, f"{v:.6g}", f"{t:g} ± {e:g}")


def exactly(claim: str, value, expected) -> str:
    """Check exact equality (counts, shapes, exact fractions, bitwise-equal tensors); returns
    ``"exactly"``."""
    if isinstance(value, torch.Tensor) or isinstance(expected, torch.Tensor):
        ok = (isinstance(value, torch.Tensor) and isinstance(expected, torch.Tensor)
              and torch.equal(value, expected))
        shown, wanted = "a tensor that differs", "exactly"
    else:
        ok = value == expected
        shown, wanted = repr(value), f"exactly {expected!r}"
    _record(claim, ok, shown, wanted)
    return "exactly"


def holds(claim: str, ok: bool, detail: str = "") -> str:
    """Check a statement that is true or false (an ordering, a sign, all of several cases);
    ``detail`` is shown when it fails.  Returns ``"holds"``."""
    if not isinstance(ok, (bool, torch.Tensor)) or (isinstance(ok, torch.Tensor) and ok.numel() != 1):
        raise TypeError(f"ok must be a bool, got {ok!r}")
    return _record(claim, bool(ok), detail or "False", "holds")


def checked(clear: bool = False) -> list[str]:
    """The claims checked so far in this process, each with its tolerance, in order; with
    ``clear`` the record starts afresh."""
    out = list(_CHECKED)
    if clear:
        _CHECKED.clear()
    return out
