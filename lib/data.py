"""The toy classification problems of the talk and of the Runge--Kutta network experiments
(Benning et al. 2019, J. Comput. Dyn. 6:171--198, section 5).

Every problem draws ``n`` points in the plane from a seeded generator, assigns the labels
from the noise-free points and only then adds Gaussian noise (scaled by ``noise``; 1 is the
published setting, 0 gives the clean points on which the label rule holds exactly):

- ``donut1d``: ``x = (U(-4, 4), N(0, 1))``, class 0 iff ``|x_1| < 1``; ``x += 0.5 N(0, I)``.
- ``donut2d``: ``x ~ N(0, I)``, class 0 iff ``|x| < 1``; ``x *= 1.2``; ``x += 0.2 N(0, I)``.
- ``squares``: ``x ~ U([-4, 4]^2)``, class 0 iff ``x_1 x_2 > 0``; ``x += 0.3 N(0, I)``.
- ``spiral``: per class ``phi = sqrt(U(0, 1)) 2 pi``, class 0 at radius ``r = 2 phi + pi``, class 1 at
  ``r = -2 phi - pi``, point ``r (cos phi, sin phi) + N(0, I)``; shuffled; divided by 5.

Real images (chapter 8) sit in their own registry :data:`IMAGES`: ``digits`` are the 1,797
handwritten digits of 8 x 8 pixels bundled with scikit-learn (Alpaydin & Kaynak 1998, the UCI
optical recognition data), 64 features in ``[0, 1]`` and 10 classes, in a fixed
train / validation / test split.
"""
from __future__ import annotations

import math

import torch

from .validate import non_negative

__all__ = ["donut1d", "donut2d", "squares", "spiral", "make_dataset", "DATASETS", "digits",
           "DIGITS_SPLIT", "IMAGES"]


def _generator(n: int, seed: int, noise: float) -> torch.Generator:
    if not isinstance(n, int) or isinstance(n, bool) or n < 2:
        raise ValueError(f"n must be an integer >= 2 (two classes need two points), got {n!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    non_negative(noise, "noise")
    return torch.Generator().manual_seed(seed)


def _normal(g: torch.Generator, n: int) -> torch.Tensor:
    return torch.randn(n, 2, generator=g, dtype=torch.float64)


def _uniform(g: torch.Generator, n: int, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, dtype=torch.float64, generator=g)


def _finish(x: torch.Tensor, labels: torch.Tensor, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    dtype = torch.get_default_dtype() if dtype is None else dtype
    return x.to(dtype), labels.long()


def donut1d(n: int, seed: int = 0, noise: float = 1.0, dtype=None):
    """A band ``|x_1| < 1`` (class 0) between two slabs (class 1)."""
    g = _generator(n, seed, noise)
    x = torch.stack([_uniform(g, n, -4.0, 4.0), torch.randn(n, dtype=torch.float64, generator=g)], 1)
    labels = (x[:, 0].abs() >= 1.0)
    x = x + noise * 0.5 * _normal(g, n)
    return _finish(x, labels, dtype)


def donut2d(n: int, seed: int = 0, noise: float = 1.0, dtype=None):
    """A disc ``|x| < 1`` (class 0) inside a ring (class 1)."""
    g = _generator(n, seed, noise)
    x = _normal(g, n)
    labels = x.norm(dim=1) >= 1.0
    x = 1.2 * x + noise * 0.2 * _normal(g, n)
    return _finish(x, labels, dtype)


def squares(n: int, seed: int = 0, noise: float = 1.0, dtype=None):
    """A checkerboard of four squares: class 0 in the quadrants where ``x_1 x_2 > 0``."""
    g = _generator(n, seed, noise)
    x = torch.stack([_uniform(g, n, -4.0, 4.0), _uniform(g, n, -4.0, 4.0)], 1)
    labels = x[:, 0] * x[:, 1] <= 0
    x = x + noise * 0.3 * _normal(g, n)
    return _finish(x, labels, dtype)


def spiral(n: int, seed: int = 0, noise: float = 1.0, dtype=None):
    """Two interleaved spiral arms; class 0 has ``ceil(n/2)`` points, class 1 ``floor(n/2)``."""
    g = _generator(n, seed, noise)
    sizes = ((n + 1) // 2, n // 2)
    points, labels = [], []
    for label, (size, sign) in enumerate(zip(sizes, (1.0, -1.0))):
        phi = torch.sqrt(torch.rand(size, dtype=torch.float64, generator=g)) * 2 * math.pi
        r = sign * (2 * phi + math.pi)
        points.append(torch.stack([r * torch.cos(phi), r * torch.sin(phi)], 1)
                      + noise * _normal(g, size))
        labels.append(torch.full((size,), label))
    order = torch.randperm(n, generator=g)
    x = torch.cat(points)[order] / 5
    return _finish(x, torch.cat(labels)[order], dtype)


DATASETS = {"donut1d": donut1d, "donut2d": donut2d, "squares": squares, "spiral": spiral}
"""Registry of the toy problems by name."""


def make_dataset(name: str, n: int, seed: int = 0, noise: float = 1.0, dtype=None):
    """``(X, y)``: ``n`` points of the problem ``name`` as a float tensor ``[n, 2]`` and a long
    tensor ``[n]`` of labels in ``{0, 1}``; the same ``(name, n, seed)`` gives the same data."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(DATASETS)}")
    return DATASETS[name](n, seed=seed, noise=noise, dtype=dtype)


DIGITS_SPLIT = {"train": 1200, "validation": 297, "test": 300}
"""The sizes of the fixed split of the 1,797 digits (a permutation drawn from seed 0)."""


def digits(split: str = "train", dtype=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, y)``: one part of the fixed split of scikit-learn's handwritten digits
    (``sklearn.datasets.load_digits``, no download): ``X [n, 64]`` the 8 x 8 pixels scaled
    from ``0..16`` to ``[0, 1]`` (row by row), ``y [n]`` long labels in ``0..9``.  ``split`` is a
    key of :data:`DIGITS_SPLIT`; the parts are disjoint and the same on every call."""
    if split not in DIGITS_SPLIT:
        raise ValueError(f"split must be one of {list(DIGITS_SPLIT)}, got {split!r}")
    from sklearn.datasets import load_digits

    images = load_digits()
    X = torch.tensor(images.data, dtype=torch.float64) / 16
    y = torch.tensor(images.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    names = list(DIGITS_SPLIT)
    start = sum(DIGITS_SPLIT[name] for name in names[:names.index(split)])
    part = order[start:start + DIGITS_SPLIT[split]]
    return _finish(X[part], y[part], dtype)


IMAGES = {"digits": digits}
"""Registry of the image data sets by name (``IMAGES[name](split, dtype)``)."""
