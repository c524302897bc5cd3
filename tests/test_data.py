"""The toy problems: seeded, of the documented shapes, and (without noise) labelled exactly by the
rules of lib/data.py's module docstring; the noise has the documented scale."""
import math

import pytest
import torch

from sklearn.datasets import load_digits

from lib.data import DATASETS, make_dataset

NAMES = ["donut1d", "donut2d", "squares", "spiral"]
NOISE_SCALE = {"donut1d": 0.5, "donut2d": 0.2, "squares": 0.3, "spiral": 1 / 5}
F64 = torch.float64


def test_registry_names():
    assert sorted(DATASETS) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtypes_and_labels(name):
    X, y = make_dataset(name, 101, seed=0)
    assert X.shape == (101, 2) and X.dtype == torch.get_default_dtype()
    assert y.shape == (101,) and y.dtype == torch.long
    assert set(y.tolist()) == {0, 1}
    assert torch.isfinite(X).all()
    assert make_dataset(name, 10, dtype=F64)[0].dtype == F64


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_per_seed(name):
    X1, y1 = make_dataset(name, 200, seed=4)
    X2, y2 = make_dataset(name, 200, seed=4)
    X3, y3 = make_dataset(name, 200, seed=5)
    assert torch.equal(X1, X2) and torch.equal(y1, y2)
    assert not torch.equal(X1, X3)


@pytest.mark.parametrize("name", NAMES)
def test_independent_of_the_global_generator(name):
    torch.manual_seed(0)
    X1, _ = make_dataset(name, 50, seed=1)
    torch.manual_seed(99)
    X2, _ = make_dataset(name, 50, seed=1)
    assert torch.equal(X1, X2)


def clean(name, n=4000, seed=2):
    return make_dataset(name, n, seed=seed, noise=0, dtype=F64)


def test_donut1d_rule_holds_without_noise():
    X, y = clean("donut1d")
    assert torch.equal(y, (X[:, 0].abs() >= 1).long())         # class 0 iff |x_1| < 1
    assert X[:, 0].abs().max() <= 4
    assert abs(y.double().mean().item() - 3 / 4) < 0.03         # P(|U(-4, 4)| >= 1) = 3/4


def test_donut2d_rule_holds_without_noise():
    X, y = clean("donut2d")
    assert torch.equal(y, (X.norm(dim=1) / 1.2 >= 1).long())   # class 0 iff |x| < 1, then x *= 1.2
    assert abs(y.double().mean().item() - math.exp(-0.5)) < 0.03  # P(|N(0, I)| >= 1) = e^{-1/2}


def test_squares_rule_holds_without_noise():
    X, y = clean("squares")
    assert torch.equal(y, (X[:, 0] * X[:, 1] <= 0).long())     # class 0 iff x_1 x_2 > 0
    assert X.abs().max() <= 4
    assert abs(y.double().mean().item() - 1 / 2) < 0.03


def test_spiral_rule_holds_without_noise():
    """Class 0 lies on ``r (cos phi, sin phi)``, class 1 on its reflection ``-r (cos phi, sin phi)``,
    with ``r = 2 phi + pi``, ``phi in [0, 2 pi]``, all divided by 5."""
    X, y = clean("spiral")
    P = 5 * X
    r = P.norm(dim=1)
    phi = (r - math.pi) / 2
    assert (phi >= -1e-12).all() and (phi <= 2 * math.pi + 1e-12).all()
    arm = torch.stack([r * torch.cos(phi), r * torch.sin(phi)], 1)
    sign = 1 - 2 * y.double()                                    # +1 for class 0, -1 for class 1
    assert torch.allclose(P, sign[:, None] * arm, rtol=0, atol=1e-12)
    # the two arms are far apart, so the rule is not satisfied by the other class
    assert ((P + sign[:, None] * arm).norm(dim=1) > 1).all()


@pytest.mark.parametrize("n", [2, 7, 100, 101])
def test_spiral_class_balance(n):
    _, y = make_dataset("spiral", n, seed=3)
    assert (y == 0).sum().item() == (n + 1) // 2 and (y == 1).sum().item() == n // 2


def test_spiral_is_shuffled():
    _, y = make_dataset("spiral", 200, seed=0)
    assert not torch.equal(y, y.sort().values)


@pytest.mark.parametrize("name", NAMES)
def test_noise_has_the_documented_scale_and_keeps_the_labels(name):
    X0, y0 = make_dataset(name, 20000, seed=3, noise=0, dtype=F64)
    X1, y1 = make_dataset(name, 20000, seed=3, noise=1, dtype=F64)
    assert torch.equal(y0, y1)                                   # labels come from the clean points
    D = X1 - X0
    assert torch.allclose(D.std(0), torch.full((2,), NOISE_SCALE[name], dtype=F64), rtol=0.04)
    assert D.mean(0).abs().max() < 6 * NOISE_SCALE[name] / math.sqrt(20000)


@pytest.mark.parametrize("n", [1, 0, -3, 2.0, True])
def test_bad_n_is_refused(n):
    with pytest.raises(ValueError, match="n must"):
        make_dataset("donut2d", n)


def test_unknown_name_and_bad_arguments_are_refused():
    with pytest.raises(ValueError, match=r"unknown dataset 'moons'.*donut2d"):
        make_dataset("moons", 10)
    with pytest.raises(ValueError, match="noise"):
        make_dataset("spiral", 10, noise=-1)
    with pytest.raises(ValueError, match="noise"):
        make_dataset("spiral", 10, noise=math.nan)
    with pytest.raises(ValueError, match="noise"):
        make_dataset("spiral", 10, noise=True)
    with pytest.raises(TypeError, match="seed"):
        make_dataset("spiral", 10, seed=1.5)


def test_digits_split():
    from lib.data import DIGITS_SPLIT, IMAGES, digits

    parts = {name: digits(name, dtype=F64) for name in DIGITS_SPLIT}
    for name, (X, y) in parts.items():
        assert X.shape == (DIGITS_SPLIT[name], 64) and y.shape == (DIGITS_SPLIT[name],)
        assert 0 <= X.min() and X.max() <= 1 and set(y.tolist()) == set(range(10))
    assert sum(DIGITS_SPLIT.values()) == 1797
    every = torch.cat([X for X, _ in parts.values()])  # the parts together are all the digits
    pixels = torch.tensor(load_digits().data, dtype=F64) / 16
    torch.testing.assert_close(every.sum(0), pixels.sum(0))
    torch.testing.assert_close(digits("test", dtype=F64)[0], parts["test"][0], rtol=0, atol=0)
    assert IMAGES["digits"] is digits
    with pytest.raises(ValueError, match="split"):
        digits("training")
