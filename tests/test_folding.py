"""lib.folding (chapter 1): the Jacobian determinant of each layer map, against Euler's closed
form, autograd of a hand-written step and of the joined layer map of a Hamiltonian network
(determinant 1 for a symplectic layer), and the step bound h ||A||_2 that rules folding out."""
import pytest
import torch

from lib import folding
from lib.fields import ResNetField
from lib.hamiltonian import (CoupledField, GeneralHamiltonianField, SecondOrderField,
                             canonical_matrix)
from lib.models import ODENet
from lib.tableaux import PAIRS

F64 = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def make_field(cls, width, layers, activation, seed=0, **kwargs):
    return cls(width, layers, activation, generator=gen(seed), **kwargs).to(F64)


# --- folding: the Jacobian determinant of each layer map (chapter 1) ---------------------------

def test_layer_determinants_match_euler_closed_form():
    """det(I + h diag(sigma'(A z + b)) A) at every state a layer acts on, [K, n], no graph."""
    net = ODENet(width=3, depth=4, T=2.0, method="euler", activation="tanh", seed=2).to(F64)
    x = 2 * torch.randn(40, 2, generator=gen(3), dtype=F64)
    dets = folding.layer_determinants(net, x)
    with torch.no_grad():
        states = net.trajectory(x)[:-1]
    for k, (A, b) in enumerate(net.field.thetas()):
        D = 1 - torch.tanh(states[k] @ A.T + b).square()          # sigma'(A z + b)
        M = torch.eye(3, dtype=F64) + net.h * D[:, :, None] * A   # I + h diag(sigma') A
        torch.testing.assert_close(dets[k], torch.linalg.det(M).detach(), rtol=1e-12, atol=1e-14)
    assert dets.shape == (4, 40) and not dets.requires_grad


def test_layer_determinants_of_heun_match_autograd_of_the_hand_written_step():
    """Any tableau: Heun's determinants are those of autograd through Heun's step by hand."""
    net = ODENet(width=2, depth=3, T=3.0, method="heun", activation="tanh", seed=4).to(F64)
    x = torch.randn(6, 2, generator=gen(5), dtype=F64)
    dets = folding.layer_determinants(net, x)
    with torch.no_grad():
        states = net.trajectory(x)[:-1]
    h = net.h
    for k, (A, b) in enumerate(net.field.thetas()):
        A, b = A.detach(), b.detach()

        def heun(z):  # z + h/2 (f(z) + f(z + h f(z))), f = tanh(A z + b)
            f1 = torch.tanh(A @ z + b)
            return z + h / 2 * (f1 + torch.tanh(A @ (z + h * f1) + b))

        for n, z in enumerate(states[k]):
            J = torch.autograd.functional.jacobian(heun, z)
            assert abs(float(dets[k, n] - torch.linalg.det(J))) <= 1e-13


def test_small_h_lip_gives_positive_determinants():
    """h ||A^k||_2 < 1 (here 0.99): every determinant is positive, nothing folds."""
    net = ODENet(width=2, depth=6, T=3.0, activation="tanh", seed=6).to(F64)
    field = net.field      # rescale every A^k to h ||A^k||_2 = 0.99, the biases far out
    scale = 0.99 / folding.step_lipschitz_bounds(net)[:, None, None]
    field.set_affine(field.linear_parts() * scale, 20 * field.biases())
    bounds = folding.step_lipschitz_bounds(net)
    torch.testing.assert_close(bounds, torch.full_like(bounds, 0.99), rtol=1e-14, atol=0)
    x = 3 * torch.randn(2000, 2, generator=gen(7), dtype=F64)
    assert bool((folding.layer_determinants(net, x) > 0).all())


def test_small_h_lip_euler_step_is_invertible():
    """h ||A||_2 = 0.9: the Euler step is bi-Lipschitz and its fixed-point inverse converges."""
    field = make_field(ResNetField, 3, 1, "tanh", seed=8)
    A, b = field.thetas()[0]
    h = 0.9 / float(torch.linalg.matrix_norm(A.detach(), ord=2))   # h ||A||_2 = 0.9
    z1, z2 = torch.randn(2, 500, 3, generator=gen(9), dtype=F64)
    with torch.no_grad():
        f = lambda z: field(z, (A, b))                              # noqa: E731
        step = lambda z: z + h * f(z)                               # noqa: E731
        ratio = (step(z1) - step(z2)).norm(dim=1) / (z1 - z2).norm(dim=1)
        assert bool((ratio >= 1 - 0.9 - 1e-12).all() and (ratio <= 1 + 0.9 + 1e-12).all())
        w = step(z1)
        z = w.clone()
        for _ in range(400):            # z = w - h f(z): a contraction with constant 0.9
            z = w - h * f(z)
        torch.testing.assert_close(z, z1, rtol=0, atol=1e-12)


def test_a_layer_that_folds_has_determinants_of_both_signs():
    """A = diag(-3, 1), h = 1: det = -4 at the origin and > 0 far out: the layer folds."""
    net = ODENet(width=2, depth=1, activation="tanh", seed=0).to(F64)   # h = 1
    net.field.set_affine(torch.tensor([[-3.0, 0.0], [0.0, 1.0]]), 0.0)
    x = torch.tensor([[0.0, 0.0], [5.0, 0.0]], dtype=F64)
    # at 0: det(I + diag(1, 1) A) = (1 - 3)(1 + 1) = -4;  at (5, 0): 1 + 3 tanh'(-15) > 0
    dets = folding.layer_determinants(net, x)[0]
    assert abs(float(dets[0]) + 4) <= 1e-14 and float(dets[1]) > 0


def test_folding_diagnostics_refuse_bad_input():
    """Members, non-tensors, non-ResNet fields and non-networks are refused."""
    with pytest.raises(ValueError, match="net.member"):
        folding.layer_determinants(ODENet(width=2, depth=2, seed=[0, 1]), torch.zeros(3, 2))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        folding.layer_determinants(ODENet(width=2, depth=2), [[0.0, 0.0]])
    with pytest.raises(TypeError, match="ResNet field"):
        folding.step_lipschitz_bounds(ODENet(width=2, depth=2, field="gradient"))
    with pytest.raises(TypeError, match="ODENet"):
        folding.step_lipschitz_bounds("net")
    assert folding.step_lipschitz_bounds(ODENet(width=2, depth=3, seed=[0, 1, 2])).shape == (3, 3)


# --- Hamiltonian networks: the joined layer map ------------------------------------------------

def joined_layer(net, k):
    """Layer k of a Hamiltonian network as a map of joined rows [2d] -> [2d], by hand."""
    layer = net.layer(k).with_theta(p.detach() for p in net.field.layer(k))
    d = net.width

    def step(y):
        z, p = layer((y[None, :d], y[None, d:]))
        return torch.cat([z, p], -1)[0]
    return step


@pytest.mark.parametrize("cls", [SecondOrderField, GeneralHamiltonianField, CoupledField])
@pytest.mark.parametrize("method", sorted(PAIRS) + ["rk4"])
def test_hamiltonian_layer_jacobians_are_jacrev_of_the_joined_layer_map(small_net, points, cls,
                                                                        method):
    """[K, n, 2d, 2d] Jacobians of the layer maps on (z, p), equal to jacrev of the joined map;
    determinant 1 and M^T J M = J for a symplectic pair, neither for RK4."""
    net = small_net(method=method, field=cls, depth=3, T=3.0)
    x, _ = points(8)
    jac = folding.layer_jacobians(net, x)
    dets = folding.layer_determinants(net, x)
    assert jac.shape == (3, 8, 6, 6) and dets.shape == (3, 8) and not jac.requires_grad
    with torch.no_grad():
        states = net.trajectory(x)[:-1]
    for k in range(3):
        reference = torch.func.vmap(torch.func.jacrev(joined_layer(net, k)))(states[k])
        torch.testing.assert_close(jac[k], reference, rtol=0, atol=1e-14)
    J = canonical_matrix(3)
    defect = float((jac.mT @ J @ jac - J).abs().max())
    if method == "rk4":
        assert defect > 1e-6 and float((dets - 1).abs().max()) > 1e-6
    else:
        assert defect <= 1e-13
        torch.testing.assert_close(dets, torch.ones(3, 8, dtype=F64), rtol=0, atol=1e-13)


def test_hamiltonian_determinants_refuse_members(small_net, points):
    """One network at a time for pair states too."""
    net = small_net(method="stormer_verlet", field=SecondOrderField, members=2)
    with pytest.raises(ValueError, match="net.member"):
        folding.layer_determinants(net, points(3)[0])
    assert folding.layer_determinants(net.member(1), points(3)[0]).shape == (4, 3)
