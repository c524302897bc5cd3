"""Argument checks, written once: each returns the checked value or raises an error that names
the argument and says what was expected.

Python's ``bool`` is an ``int``; every numeric check here refuses it, so ``depth=True`` is an
error, not one layer.
"""
from __future__ import annotations

import math

__all__ = ["integer", "positive_int", "number", "positive", "non_negative", "finite_at_least",
           "flag", "tensor"]


def integer(value, name: str, low: int | None = None) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) and ``>= low`` when ``low`` is given."""
    if not isinstance(value, int) or isinstance(value, bool) or (low is not None and value < low):
        kind = ("a non-negative integer" if low == 0 else "an integer"
                + ("" if low is None else f" >= {low}"))
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return value


def positive_int(value, name: str) -> int:
    """``value`` if it is a positive ``int`` (not a ``bool``)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def number(value, name: str) -> float:
    """``value`` as a float if it is a finite real number (not a ``bool``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def finite_at_least(value, name: str, low: float, strict: bool) -> float:
    """``value`` as a float if it is a finite number ``>= low`` (``> low`` when ``strict``)."""
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or value < low or (strict and value == low)):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {low:g}, "
                         f"got {value!r}")
    return float(value)


def positive(value, name: str) -> float:
    """``value`` as a float if it is a finite number ``> 0``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def non_negative(value, name: str) -> float:
    """``value`` as a float if it is a finite number ``>= 0``."""
    return finite_at_least(value, name, 0.0, strict=False)


def flag(value, name: str) -> bool:
    """``value`` if it is a ``bool``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool (True or False), got {value!r}")
    return value


def tensor(value, name: str):
    """``value`` if it is a ``torch.Tensor``."""
    import torch

    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value
