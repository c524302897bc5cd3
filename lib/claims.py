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
the claims a chapter has checked so far, and :func:`report` prints them with their kind and the
measured value beside the tolerance, so that a reader sees the margin.

A claim is *evidence* when it could be false if the code or the science were wrong, and an
*identity* (``identity=True``) when it holds by algebra whatever the data: a sanity check, never
evidence.  Measured values are shown coarsely (round-off as a power-of-two bucket in ε,
approximations and training outcomes to ``digits`` significant digits) and between ``‹ ›``,
which nbval's sanitiser masks (``tests/sanitize.cfg``): the verdict and the tolerance are
compared on every machine, the last shown digit of a measurement may differ between CPUs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .validate import flag, positive_int

__all__ = ["ClaimError", "Claim", "epsilon", "shown", "roundoff", "at_most", "at_least", "between",
           "near", "exactly", "holds", "checked", "report"]


@dataclass(frozen=True)
class Claim:
    """One checked claim: its sentence, the measured value as shown, the tolerance, its kind."""
    claim: str
    measured: str
    tolerance: str
    identity: bool


_CHECKED: list[Claim] = []


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


def shown(value, digits: int = 2, dtype: torch.dtype = torch.float64,
          ulps: float = 2 ** 16) -> str:
    """A measured number as the book prints it: to ``digits`` significant digits, unless it
    is below ``ulps`` units of the working precision of ``dtype``, where its digits are
    round-off and it is shown as ``≈ 0 (≤ 2^k ε)`` (``CONTRIBUTING.md``)."""
    v = _number(value)
    positive_int(digits, "digits")
    units = abs(v) / epsilon(dtype)
    if units < ulps:
        return "0" if v == 0 else f"≈ 0 ({_bucket(units)})"
    return f"{v:.{digits}g}"


def _shown(v: float, digits: int) -> str:
    """``v`` as the claim list shows it (:func:`shown` in float64)."""
    return shown(v, digits)


def _bucket(units: float) -> str:
    """A round-off of ``units`` ε shown as the next power of two, ``≤ 2^k ε`` (or 0)."""
    if units == 0:
        return "0"
    return f"≤ {2 ** max(0, math.ceil(math.log2(units))):g} ε"


def _record(claim: str, ok: bool, value: str, expected: str, identity: bool = False,
            shown: str | None = None) -> str:
    if not isinstance(claim, str) or not claim.strip():
        raise TypeError("claim must be a non-empty sentence saying what is claimed")
    flag(identity, "identity")
    if not ok:
        raise ClaimError(f"claim failed: {claim}: got {value}, expected {expected}")
    _CHECKED.append(Claim(claim, value if shown is None else shown, expected, identity))
    return expected


def roundoff(claim: str, value, ulps: float, dtype: torch.dtype = torch.float64, *,
             identity: bool = False) -> str:
    """Check that a difference that is zero in exact arithmetic is at most ``ulps`` units of
    the working precision, ``value <= ulps * eps(dtype)``; returns ``"≤ {ulps} ε"``.  The claim
    list shows the measured value as a power-of-two bucket, ``≤ 2^k ε``."""
    v = _number(value)
    eps = epsilon(dtype)
    bound = ulps * eps
    label = f"≤ {ulps:g} ε" + ("" if dtype == torch.float64 else f" ({dtype})".replace("torch.", ""))
    return _record(claim, abs(v) <= bound, f"{v:.3e} = {v / eps:.3g} ε", label, identity,
                   _bucket(abs(v) / eps))


def at_most(claim: str, value, bound, *, identity: bool = False, digits: int = 2) -> str:
    """Check ``value <= bound``; returns ``"≤ {bound}"``."""
    v, b = _number(value), _number(bound, "bound")
    return _record(claim, v <= b, f"{v:.6g}", f"≤ {b:g}", identity, _shown(v, digits))


def at_least(claim: str, value, bound, *, identity: bool = False, digits: int = 2) -> str:
    """Check ``value >= bound``; returns ``"≥ {bound}"``."""
    v, b = _number(value), _number(bound, "bound")
    return _record(claim, v >= b, f"{v:.6g}", f"≥ {b:g}", identity, _shown(v, digits))


def between(claim: str, value, low, high, *, identity: bool = False, digits: int = 2) -> str:
    """Check ``low <= value <= high``; returns ``"in [low, high]"``."""
    v, lo, hi = _number(value), _number(low, "low"), _number(high, "high")
    if lo > hi:
        raise ValueError(f"low = {lo:g} must not exceed high = {hi:g}")
    return _record(claim, lo <= v <= hi, f"{v:.6g}", f"in [{lo:g}, {hi:g}]", identity,
                   _shown(v, digits))


def near(claim: str, value, target, tol, *, identity: bool = False, digits: int = 2) -> str:
    """Check ``|value - target| <= tol`` (an approximation of known size); returns
    ``"{target} ± {tol}"``."""
    v, t, e = _number(value), _number(target, "target"), _number(tol, "tol")
    if not e >= 0:
        raise ValueError(f"tol must be >= 0, got {e!r}")
    return _record(claim, math.isfinite(v) and abs(v - t) <= e, f"{v:.6g}", f"{t:g} ± {e:g}",
                   identity, _shown(v, digits))


def exactly(claim: str, value, expected, *, identity: bool = False) -> str:
    """Check exact equality (counts, shapes, exact fractions, bitwise-equal tensors); returns
    ``"exactly"``."""
    if isinstance(value, torch.Tensor) or isinstance(expected, torch.Tensor):
        ok = (isinstance(value, torch.Tensor) and isinstance(expected, torch.Tensor)
              and torch.equal(value, expected))
        shown, wanted, measured = "a tensor that differs", "exactly", "equal"
    else:
        ok = value == expected
        shown, wanted, measured = repr(value), f"exactly {expected!r}", repr(value)
    _record(claim, ok, shown, wanted, identity, measured)
    return "exactly"


def holds(claim: str, ok: bool, detail: str = "", *, identity: bool = False,
          measured: str = "true") -> str:
    """Check a statement that is true or false (an ordering, a sign, all of several cases);
    ``detail`` is shown when it fails, ``measured`` in the claim list when it holds (say the
    numbers compared, to their stable digits).  Returns ``"holds"``."""
    if not isinstance(ok, (bool, torch.Tensor)) or (isinstance(ok, torch.Tensor) and ok.numel() != 1):
        raise TypeError(f"ok must be a bool, got {ok!r}")
    return _record(claim, bool(ok), detail or "False", "holds", identity, measured)


def checked(clear: bool = False) -> list[str]:
    """The claims checked so far in this process, each with its tolerance, in order; with
    ``clear`` the record starts afresh."""
    out = [f"{c.claim} ({c.tolerance})" for c in _CHECKED]
    if clear:
        _CHECKED.clear()
    return out


def report() -> str:
    """The claim list a chapter ends with: a count of evidence and identities, then each claim
    with its kind, the measured value between ``‹ ›`` and the tolerance, e.g.::

        ✓ evidence: OTD with the partner is DTO (euler)
            measured ‹≤ 8 ε›, tolerance ≤ 64 ε
    """
    n_id = sum(c.identity for c in _CHECKED)
    lines = [f"{len(_CHECKED)} claims checked: {len(_CHECKED) - n_id} evidence, "
             f"{n_id} {'identity' if n_id == 1 else 'identities'} (hold by algebra)"]
    for c in _CHECKED:
        lines.append(f"✓ {'identity' if c.identity else 'evidence'}: {c.claim}")
        lines.append(f"    measured ‹{c.measured}›, tolerance {c.tolerance}")
    return "\n".join(lines)
