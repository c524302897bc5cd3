"""PGD and the certificate of lib/robustness.py against the closed forms for linear classifiers,
the linear lift with members, and the tempered loss against torch's cross-entropy."""
import math

import pytest
import torch
from torch.nn import functional as F

import lib
from lib import robustness as rb
from lib.lipschitz import network_bound, nonexpansive_constraint

F64 = torch.float64


def linear(C, d=6, n=40, seed=0):
    """A linear classifier F(x) = W x + c with C classes, points x and their predicted labels
    (so every margin is positive), and the exact distance to the decision boundary,
    min_j (F_y - F_j) / |w_y - w_j|."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(C, d, generator=g, dtype=F64)
    c = torch.randn(C, generator=g, dtype=F64)
    x = torch.randn(n, d, generator=g, dtype=F64)
    model = lambda z: z @ W.T + c  # noqa: E731
    logits = model(x)
    y = logits.argmax(-1)
    gaps = logits.gather(1, y[:, None]) - logits
    norms = (W[y][:, None, :] - W[None]).norm(dim=-1)
    distance = (gaps / norms).masked_fill(F.one_hot(y, C).bool(), math.inf).min(1).values
    return model, W, x, y, distance


def test_margins_by_hand():
    logits = torch.tensor([[1.0, 3.0, 2.0], [0.5, -1.0, 0.0]])
    assert rb.margins(logits, torch.tensor([1, 2])).tolist() == [1.0, -0.5]


def test_pgd_finds_the_exact_minimal_perturbation_of_a_two_class_linear_classifier():
    model, W, x, y, distance = linear(2)
    radius = rb.minimal_radius(model, x, y, high=10.0, bisections=40, steps=20, restarts=1)
    torch.testing.assert_close(radius, distance, rtol=0, atol=1e-6)
    delta = rb.pgd(model, x, y, distance, steps=20, restarts=1)
    direction = W[1 - y] - W[y]
    exact = distance[:, None] * direction / direction.norm(dim=1, keepdim=True)
    torch.testing.assert_close(delta, exact, rtol=0, atol=1e-6)


def test_pgd_never_beats_the_distance_for_ten_classes_and_mostly_finds_it():
    """Ten classes: the margin loss is a maximum of linear functions, with a local maximum
    on the sphere for every class, so gradient ascent may end at the wrong one (measured: 7
    of 40 points with 10 restarts).  No attack comes closer than the exact distance, and most
    points are found exactly."""
    model, W, x, y, distance = linear(10)
    radius = rb.minimal_radius(model, x, y, high=10.0, bisections=30, steps=30, restarts=10,
                               generator=torch.Generator().manual_seed(0))
    assert (radius >= distance - 1e-6).all()
    assert ((radius - distance).abs() <= 1e-6).double().mean() >= 0.75


def test_pgd_stays_in_the_ball_and_members_broadcast():
    model, W, x, y, distance = linear(3)
    eps = torch.rand(2, len(y), generator=torch.Generator().manual_seed(1), dtype=F64)
    delta = rb.pgd(model, x.expand(2, *x.shape), y.expand(2, *y.shape), eps, steps=10,
                   restarts=3, generator=torch.Generator().manual_seed(2))
    assert (delta.norm(dim=-1) <= eps * (1 + 1e-12)).all()


def test_certificate_against_the_closed_form():
    """m / (sqrt 2 L) with L = ||W||_2 never exceeds the distance to the boundary, and equals
    it for two classes with w_1 = -w_0 (then |w_1 - w_0| = 2|w_0| = sqrt 2 ||W||_2)."""
    model, W, x, y, distance = linear(10)
    L = torch.linalg.matrix_norm(W, ord=2)
    certified = rb.certified_radius(model(x), y, L)
    assert (certified <= distance * (1 + 1e-12)).all()
    assert (rb.certified_radius(model(x), y, L / 2) > distance).any()  # negative control
    w0 = torch.randn(5, generator=torch.Generator().manual_seed(3), dtype=F64)
    W2 = torch.stack([w0, -w0])
    x2 = torch.randn(30, 5, generator=torch.Generator().manual_seed(4), dtype=F64)
    logits = x2 @ W2.T
    y2 = logits.argmax(-1)
    exact = (x2 @ w0).abs() / w0.norm()
    torch.testing.assert_close(rb.certified_radius(logits, y2, torch.linalg.matrix_norm(
        W2, ord=2)), exact, rtol=1e-13, atol=0)
    wrong = rb.certified_radius(logits, 1 - y2, 1.0)
    assert (wrong == 0).all()


def test_certified_accuracy_counts_the_radii():
    logits = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=F64)
    y = torch.tensor([0, 0, 0])
    accuracy = rb.certified_accuracy(logits, y, 1.0, [0.5, 1.0])
    assert accuracy.tolist() == [2 / 3, 1 / 3]


def test_tempered_cross_entropy_is_cross_entropy_of_the_shifted_logits():
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(3, 7, 10, generator=g, dtype=F64)
    y = torch.randint(0, 10, (3, 7), generator=g)
    torch.testing.assert_close(rb.tempered_cross_entropy(1.0)(logits, y),
                               torch.stack([F.cross_entropy(logits[s], y[s]) for s in range(3)]))
    shifted = 4 * (logits - 0.5 * F.one_hot(y, 10))
    torch.testing.assert_close(rb.tempered_cross_entropy(4.0, 0.5)(logits, y),
                               torch.stack([F.cross_entropy(shifted[s], y[s]) for s in range(3)]))
    with pytest.raises(ValueError, match="temperature"):
        rb.tempered_cross_entropy(0.0)
    with pytest.raises(ValueError, match="margin"):
        rb.tempered_cross_entropy(1.0, -0.1)


def test_linear_lift_members_are_the_single_networks():
    kwargs = dict(width=8, depth=3, field="gradient", classes=10, in_features=64,
                  lift="linear")
    both = lib.ODENet(seed=[3, 4], **kwargs).double()
    x = torch.rand(5, 64, generator=torch.Generator().manual_seed(6), dtype=F64)
    for s, seed in enumerate([3, 4]):
        single = lib.ODENet(seed=seed, **kwargs).double()
        torch.testing.assert_close(both(x)[s], single(x), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(both.member(s)(x), single(x), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="lift"):
        lib.ODENet(lift="conv")


def test_bad_arguments():
    model, W, x, y, distance = linear(2)
    with pytest.raises(ValueError, match="eps"):
        rb.pgd(model, x, y, -1.0)
    with pytest.raises(ValueError, match="steps"):
        rb.pgd(model, x, y, 1.0, steps=0)
    with pytest.raises(ValueError, match="L must"):
        rb.certified_radius(model(x), y, 0.0)


def test_attacked_accuracy_falls_with_the_radius_and_is_at_least_the_certified():
    g = torch.Generator().manual_seed(7)
    net = lib.ODENet(width=6, depth=2, field="gradient", classes=3, in_features=4,
                     lift="linear", seed=[0, 1]).double()
    with torch.no_grad():
        nonexpansive_constraint(2.0)(net)
    x = torch.rand(30, 4, generator=g, dtype=F64)
    with torch.no_grad():
        y = net(x)[0].argmax(-1)
    radii = [0.01, 0.05, 0.2, 1.0]
    attacked = rb.attacked_accuracy(net, x, y, radii, steps=10, restarts=2, generator=g)
    assert attacked.shape == (4, 2) and (attacked.diff(dim=0) <= 0).all()
    with torch.no_grad():
        certified = rb.certified_accuracy(net(x), y, network_bound(net), radii)
    assert (attacked >= certified).all()
    with pytest.raises(ValueError, match="radii must increase"):
        rb.attacked_accuracy(net, x, y, [0.5, 0.1])
