"""lib.spectra: Jacobians against torch.autograd, the spectral abscissa and the logarithmic norm
against 2x2 closed forms, Henrici's departure from normality, and the spectra along a network's
trajectories (tensor and Hamiltonian networks) against a direct computation."""
import math

import pytest
import torch

from lib import spectra
from lib import state as tree
from lib.fields import FIELDS, GradientField
from lib.hamiltonian import CoupledField, GeneralHamiltonianField, SecondOrderField

F64 = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def make_field(cls, width, layers, activation, seed=0, **kwargs):
    return cls(width, layers, activation, generator=gen(seed), **kwargs).to(F64)


# --- Jacobians -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(FIELDS))
@pytest.mark.parametrize("activation", ["tanh", "identity"])
def test_jacobians_agree_with_autograd(name, activation):
    """jacobians(field, theta, z)[i] is d f / d z at row i, without a graph."""
    field = make_field(FIELDS[name], 3, 2, activation, seed=1)
    theta = field.thetas()[1]
    z = torch.randn(5, 3, generator=gen(2), dtype=F64)
    J = spectra.jacobians(field, theta, z)
    reference = torch.stack([torch.autograd.functional.jacobian(
        lambda v: field(v[None], theta)[0], zi) for zi in z])
    assert J.shape == (5, 3, 3)
    assert not J.requires_grad
    torch.testing.assert_close(J, reference, rtol=0, atol=1e-13)


def test_jacobian_of_relu_gradient_field_is_closed_form():
    """For f = -A^T relu(A z + b): J = -A^T diag(1[A z + b > 0]) A."""
    field = make_field(GradientField, 4, 1, "relu", seed=3)
    A, b = field.thetas()[0]
    z = torch.randn(50, 4, generator=gen(4), dtype=F64)
    D = (z @ A.T + b > 0).to(F64)
    expected = -(A.T[None] * D[:, None, :]) @ A  # -A^T diag(sigma') A
    torch.testing.assert_close(spectra.jacobians(field, (A, b), z), expected.detach(),
                               rtol=0, atol=1e-14)


# --- spectral abscissa, logarithmic norm, departure from normality ---------------------------

def test_spectral_abscissa_and_log_norm_match_2x2_closed_forms():
    """alpha = (a+d)/2 + Re sqrt(((a-d)/2)^2 + bc), mu_2 = (a+d)/2 + |((a-d)/2, (b+c)/2)|."""
    M = 3 * torch.randn(500, 2, 2, generator=gen(5), dtype=F64)
    a, b, c, d = M[:, 0, 0], M[:, 0, 1], M[:, 1, 0], M[:, 1, 1]
    disc = ((a - d) / 2).square() + b * c
    alpha = (a + d) / 2 + torch.sqrt(disc.clamp(min=0))  # Re sqrt of a negative number is 0
    mu = (a + d) / 2 + torch.sqrt(((a - d) / 2).square() + ((b + c) / 2).square())
    torch.testing.assert_close(spectra.spectral_abscissa(M), alpha, rtol=0, atol=1e-12)
    torch.testing.assert_close(spectra.log_norm(M), mu, rtol=0, atol=1e-12)


@pytest.mark.parametrize("d", [2, 3, 6])
def test_log_norm_bounds_spectral_abscissa(d):
    """alpha <= mu_2, strictly apart for non-normal matrices and equal (0) for skew ones."""
    g = gen(d)
    M = torch.randn(400, d, d, generator=g, dtype=F64)
    M[:200] += 10 * torch.randn(200, d, d, generator=g, dtype=F64).triu(1)
    M[300:] = M[300:] - M[300:].mT
    alpha, mu = spectra.spectral_abscissa(M), spectra.log_norm(M)
    assert bool((mu >= alpha - 1e-10).all())
    assert float((mu - alpha).max()) > 1.0  # non-normal matrices do separate them
    torch.testing.assert_close(mu[300:], alpha[300:], rtol=0, atol=1e-10)  # skew: both 0


def test_log_norm_bounds_spectral_abscissa_on_field_jacobians():
    """alpha(J) <= mu_2(J) for the Jacobians of every field."""
    for name in sorted(FIELDS):
        field = make_field(FIELDS[name], 4, 1, "tanh", seed=6)
        J = spectra.jacobians(field, field.thetas()[0],
                              torch.randn(100, 4, generator=gen(7), dtype=F64))
        assert bool((spectra.log_norm(J) >= spectra.spectral_abscissa(J) - 1e-12).all()), name


def test_henrici_departure():
    """dep = 0 for normal matrices (real or complex spectrum), |strict upper part|_F for a
    triangular matrix in any orthonormal basis; batched."""
    Q = torch.linalg.qr(torch.randn(3, 3, generator=gen(12), dtype=F64)).Q
    normal = Q @ torch.diag(torch.tensor([1.0, -2.0, 0.5], dtype=F64)) @ Q.T
    assert float(spectra.henrici_departure(normal)) < 1e-7
    rotation = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=F64)    # normal, complex spectrum
    assert float(spectra.henrici_departure(rotation)) < 1e-7
    N = torch.triu(torch.randn(3, 3, generator=gen(13), dtype=F64))  # dep = |strict part|_F
    expected = torch.triu(N, 1).norm()
    torch.testing.assert_close(spectra.henrici_departure(Q @ N @ Q.T), expected)
    batch = spectra.henrici_departure(torch.stack([normal, Q @ N @ Q.T]))
    assert batch.shape == (2,)


def test_eigenvalue_growth_is_the_exponential_of_the_summed_abscissas():
    """exp(h sum_{j<k} alpha_j) for k = 0..K, per trajectory column."""
    alpha = torch.tensor([[0.5, -1.0], [-1.0, 0.0], [2.0, 1.0]], dtype=F64)
    growth = spectra.eigenvalue_growth(alpha, 0.1)
    expected = torch.exp(0.1 * torch.tensor([[0.0, 0.0], [0.5, -1.0], [-0.5, -1.0],
                                             [1.5, 0.0]], dtype=F64))
    torch.testing.assert_close(growth, expected)
    torch.testing.assert_close(spectra.eigenvalue_growth(alpha[:, 0], 0.1), expected[:, 0])
    with pytest.raises(ValueError, match="alpha must be a tensor"):
        spectra.eigenvalue_growth(torch.zeros(2, 2, 2), 0.1)
    with pytest.raises(ValueError, match="h must be a positive finite number"):
        spectra.eigenvalue_growth(alpha, -0.1)


# --- along a network's trajectories -----------------------------------------------------------

def direct_spectra(net, x, field):
    """alpha, mu_2, departure and variation of jacrev(field) at the trajectory states."""
    with torch.no_grad():
        states = net.trajectory(x)[:-1]
    J = torch.stack([torch.func.vmap(torch.func.jacrev(lambda y: field(y, theta)))(z)
                     for theta, z in zip([tuple(p.detach() for p in th)
                                          for th in net.field.thetas()], states)])
    departure = (J.square().sum((-2, -1))
                 - torch.linalg.eigvals(J).abs().square().sum(-1)).clamp(min=0).sqrt()
    return (torch.linalg.eigvals(J).real.amax(-1), torch.linalg.eigvalsh((J + J.mT) / 2)[..., -1],
            departure, torch.linalg.matrix_norm(J.diff(dim=0), ord=2) / net.h)


@pytest.mark.parametrize("field, method", [("resnet", "rk4"), ("gradient", "euler"),
                                           (SecondOrderField, "stormer_verlet"),
                                           (GeneralHamiltonianField, "symplectic_euler"),
                                           (CoupledField, "rk4")])
def test_trajectory_spectra_match_a_direct_computation(small_net, points, field, method):
    """trajectory_spectra: the spectra of J = df/dy at the states y^k (for a pair state the
    Jacobian of the joined field, written here by hand), each [K, n], variation [K-1, n]."""
    net = small_net(method=method, field=field)
    x, _ = points(6)
    d = net.width
    if isinstance(net.lift(x), tuple):
        def field_of(y, theta):  # the joined field by hand: (z, p) -> (dH/dp, -dH/dz)
            z, p = y[None, :d], y[None, d:]
            return torch.cat([net.field.dz(p, theta), net.field.dp(z, theta)], -1)[0]
    else:
        def field_of(y, theta):
            return net.field(y[None], theta)[0]
    result = spectra.trajectory_spectra(net, x)
    assert result.alpha.shape == result.log_norm.shape == result.departure.shape == (4, 6)
    assert result.variation.shape == (3, 6)
    for got, want in zip(result, direct_spectra(net, x, field_of)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    if isinstance(net.lift(x), tuple):  # J = [[0, S_1], [-S_2, 0]]: no real part
        assert float(result.alpha.abs().max()) <= 1e-12
        assert float(result.log_norm.min()) >= 0


def test_joined_field_is_the_field_on_joined_states(small_net, points):
    """joined_field(net)(y, theta) = join(field(split(y), theta)); the field itself otherwise."""
    net = small_net(method="stormer_verlet", field=CoupledField)
    z, p = net.states(points(5)[0])[2]
    theta = net.field.layer(1)
    joined = spectra.joined_field(net)(torch.cat([z, p], -1), theta)
    assert torch.equal(joined, tree.join(net.field((z, p), theta)))
    plain = small_net()
    y = plain.lift(points(5)[0])
    assert torch.equal(spectra.joined_field(plain)(y, plain.field.layer(0)),
                       plain.field(y, plain.field.layer(0)))


def test_trajectory_spectra_of_a_constant_linear_network_are_those_of_its_matrix():
    """sigma = identity, A^k = J for every k: alpha, mu_2, dep of J on every state; no variation."""
    from lib.examples import constant_network

    J = torch.tensor([[-0.5, 2.0], [0.0, -0.3]], dtype=F64)
    net = constant_network(J, 2.0, 5)
    result = spectra.trajectory_spectra(net, torch.randn(7, 2, generator=gen(8), dtype=F64))
    torch.testing.assert_close(result.alpha, torch.full((5, 7), -0.3, dtype=F64))
    torch.testing.assert_close(result.log_norm, spectra.log_norm(J).expand(5, 7))
    torch.testing.assert_close(result.departure, torch.full((5, 7), 2.0, dtype=F64))
    assert float(result.variation.abs().max()) == 0.0
    assert math.isclose(float(spectra.log_norm(J)), -0.4 + math.sqrt(0.01 + 1.0), rel_tol=1e-12)


# --- bad input -------------------------------------------------------------------------------

def test_bad_inputs_raise_clearly(small_net):
    """jacobians, log_norm, spectral_abscissa and trajectory_spectra refuse bad arguments."""
    field = make_field(GradientField, 3, 2, "tanh")
    theta = field.thetas()[0]
    z = torch.randn(4, 3, dtype=F64)
    with pytest.raises(TypeError, match="field must be callable"):
        spectra.jacobians("f", theta, z)
    with pytest.raises(ValueError, match=r"states must have shape \[n, d\]"):
        spectra.jacobians(field, theta, z[0])
    with pytest.raises(TypeError, match="states must be a floating-point"):
        spectra.jacobians(field, theta, torch.ones(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="must return a tensor of the shape of z"):
        spectra.jacobians(lambda v, th: v.sum(1), theta, z)
    with pytest.raises(ValueError, match="square matrices"):
        spectra.log_norm(torch.ones(2, 3))
    with pytest.raises(TypeError, match="J must be a torch.Tensor"):
        spectra.spectral_abscissa([[1.0]])
    with pytest.raises(ValueError, match="net.member"):
        spectra.trajectory_spectra(small_net(members=2), torch.zeros(3, 2, dtype=F64))
    with pytest.raises(TypeError, match="net must be a lib.models.ODENet"):
        spectra.trajectory_spectra(field, z)
