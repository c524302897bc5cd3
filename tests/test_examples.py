"""lib.examples: the book's example networks and problems, built through the fields' hooks:
smooth_network (layers sampling one theta(t)), the Markus--Yamabe matrix and network, the
constant linear network, the gradient layer at a given h ||A||^2 and Mathieu's parametric
oscillator."""
import math

import pytest
import torch

from lib import examples, folding, spectra
from lib.hamiltonian import SecondOrderField, time_dependent
from lib.integrators import rk_solve
from lib.models import ODENet

F64 = torch.float64
F32 = torch.finfo(torch.float32).eps / 2   # the parameters are interpolated in float32


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --- smooth_network --------------------------------------------------------------------------

@pytest.mark.parametrize("field, method", [("resnet", "rk4"), ("antisymmetric", "euler"),
                                           (SecondOrderField, "stormer_verlet")])
def test_smooth_network_samples_one_linear_theta_of_t(field, method):
    """Layer k holds (1 - t_k/T) theta_a + (t_k/T) theta_b (the two layers of the depth-2
    network of the same seed; to float32 round-off, the parameters' precision when drawn) for
    every stack; deeper networks sample the same theta(t)."""
    coarse = examples.smooth_network(width=3, depth=4, T=2.0, method=method, field=field, seed=5)
    fine = examples.smooth_network(width=3, depth=8, T=2.0, method=method, field=field, seed=5)
    ends = ODENet(width=3, depth=2, field=field, seed=5).double()
    assert coarse.depth == 4 and coarse.h == 0.5 and fine.depth == 8
    assert all(p.dtype == F64 for p in coarse.parameters())
    for name, stack in coarse.field.stacks().items():
        a, b = ends.field.stacks()[name]
        for k in range(4):
            s = k * coarse.h / coarse.T
            torch.testing.assert_close(stack[k], (1 - s) * a + s * b, rtol=F32, atol=1e-12)
            assert torch.equal(fine.field.stacks()[name][2 * k], stack[k])
    for p, q in zip(coarse.classifier.parameters(), ends.classifier.parameters()):
        assert torch.equal(p, q)


def test_smooth_network_contraction_subtracts_a_diagonal():
    """contraction c subtracts c I (or diag(c_1..c_d)) from every A^k and nothing else."""
    plain = examples.smooth_network(width=3, depth=4)
    uniform = examples.smooth_network(width=3, depth=4, contraction=0.5)
    saddle = examples.smooth_network(width=3, depth=4, contraction=[0.5, -0.5, 0.0])
    eye = torch.eye(3, dtype=F64)
    torch.testing.assert_close(uniform.field.linear_parts(),
                               plain.field.linear_parts() - 0.5 * eye, rtol=F32, atol=1e-12)
    torch.testing.assert_close(saddle.field.linear_parts(), plain.field.linear_parts()
                               - torch.diag(torch.tensor([0.5, -0.5, 0.0], dtype=F64)),
                               rtol=F32, atol=1e-12)
    assert torch.equal(uniform.field.biases(), plain.field.biases())


@pytest.mark.parametrize("contraction, error, message", [
    (True, TypeError, "contraction must be a number or a sequence"),
    ("abc", TypeError, "contraction must be a number or a sequence"),
    ([0.1, 0.2], ValueError, "one finite rate or 3 finite rates"),
    (float("nan"), ValueError, "one finite rate or 3 finite rates"),
])
def test_smooth_network_refuses_bad_contractions(contraction, error, message):
    """Booleans, strings, a wrong count of rates and non-finite rates are refused."""
    with pytest.raises(error, match=message):
        examples.smooth_network(width=3, depth=2, contraction=contraction)


def test_smooth_network_contraction_needs_a_free_matrix():
    """A field whose matrix is derived (antisymmetric) cannot be contracted."""
    with pytest.raises(ValueError, match="contraction needs a field with a free matrix"):
        examples.smooth_network(width=3, depth=2, field="antisymmetric", contraction=0.5)


# --- Markus--Yamabe --------------------------------------------------------------------------

def test_markus_yamabe_is_linearly_stable_yet_grows_like_exp_half_t():
    """A(t) has eigenvalues of real part -1/4 and mu_2 = 1/2 at every t, and
    e^(t/2) (-cos t, sin t) solves z' = A(t) z."""
    t = torch.linspace(0, 10, 57, dtype=F64)
    A = examples.markus_yamabe(t)
    assert A.shape == (57, 2, 2)
    torch.testing.assert_close(torch.linalg.eigvals(A).real, torch.full((57, 2), -0.25, dtype=F64))
    torch.testing.assert_close(spectra.log_norm(A), torch.full((57,), 0.5, dtype=F64))
    z = torch.exp(t / 2)[:, None] * torch.stack([-torch.cos(t), torch.sin(t)], 1)
    dz = torch.exp(t / 2)[:, None] * torch.stack([-torch.cos(t) / 2 + torch.sin(t),
                                                  torch.sin(t) / 2 + torch.cos(t)], 1)
    torch.testing.assert_close((A @ z[:, :, None])[:, :, 0], dz)
    with pytest.raises(TypeError, match="t must be a floating-point"):
        examples.markus_yamabe(torch.arange(3))


def test_markus_yamabe_network_holds_A_at_the_midpoints():
    """Layer k of the width-2 identity network holds A(t_k + h/2) and b = 0, in float64."""
    net = examples.markus_yamabe_network(T=2.0, depth=8, method="heun")
    assert net.depth == 8 and net.h == 0.25 and net.tableau.name == "heun"
    midpoints = (torch.arange(8, dtype=F64) + 0.5) * 0.25
    assert torch.equal(net.field.linear_parts(), examples.markus_yamabe(midpoints))
    assert torch.equal(net.field.biases(), torch.zeros(8, 2, dtype=F64))
    x = torch.randn(3, 2, generator=gen(1), dtype=F64)
    torch.testing.assert_close(net.field(x, net.field.layer(3)),
                               x @ examples.markus_yamabe(midpoints[3]).T, rtol=0, atol=1e-15)


# --- constant_network -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_constant_network_is_z_prime_equals_J_z(dtype):
    """A^k = J, b^k = 0, identity activation, in J's dtype: Euler gives (I + hJ)^K x."""
    J = torch.tensor([[-0.5, 2.0], [0.0, -0.3]], dtype=dtype)
    net = examples.constant_network(J, T=2.0, depth=5)
    assert net.depth == 5 and net.h == 0.4 and net.field.activation == "identity"
    assert torch.equal(net.field.linear_parts(), J.expand(5, 2, 2))
    assert torch.equal(net.field.biases(), torch.zeros(5, 2, dtype=dtype))
    x = torch.randn(4, 2, generator=gen(2), dtype=dtype)
    expected = x @ torch.linalg.matrix_power(torch.eye(2, dtype=dtype) + 0.4 * J, 5).T
    tol = 1e-5 if dtype == torch.float32 else 1e-14
    torch.testing.assert_close(net.features(x), expected, rtol=tol, atol=tol)


def test_constant_network_refuses_a_non_square_matrix():
    """J must be a floating-point square matrix."""
    with pytest.raises(ValueError, match="J must be a floating-point square matrix"):
        examples.constant_network(torch.zeros(2, 3), 1.0, 2)
    with pytest.raises(ValueError, match="J must be a floating-point square matrix"):
        examples.constant_network(torch.eye(2, dtype=torch.long), 1.0, 2)


# --- gradient_layer ---------------------------------------------------------------------------

@pytest.mark.parametrize("h_norm2", [0.5, 2.0, 3.0])
@pytest.mark.parametrize("rank", [None, 1])
def test_gradient_layer_has_the_given_h_norm_squared(h_norm2, rank):
    """One Euler step (h = 1, b = 0) of the gradient field with h ||A||_2^2 = h_norm2 exactly,
    of the given rank; with sigma = identity its Lipschitz constant |I - A^T A|_2 is
    max(1, h_norm2 - 1) when A is rank-deficient."""
    net = examples.gradient_layer(h_norm2, width=3, activation="identity", rank=rank,
                                  generator=gen(3))
    assert net.depth == 1 and net.h == 1.0
    A = net.field.linear_parts()[0].detach()
    assert A.dtype == F64
    assert math.isclose(float(torch.linalg.matrix_norm(A, ord=2)) ** 2, h_norm2, rel_tol=1e-13)
    assert int(torch.linalg.matrix_rank(A)) == (3 if rank is None else rank)
    assert torch.equal(net.field.biases(), torch.zeros(1, 3, dtype=F64))
    step = folding.layer_jacobians(net, torch.randn(5, 2, generator=gen(4), dtype=F64))[0]
    torch.testing.assert_close(step, (torch.eye(3, dtype=F64) - A.T @ A).expand(5, 3, 3),
                               rtol=0, atol=1e-14)
    if rank is not None:
        assert math.isclose(float(torch.linalg.matrix_norm(step[0], ord=2)),
                            max(1.0, h_norm2 - 1), rel_tol=1e-12)
    again = examples.gradient_layer(h_norm2, width=3, activation="identity", rank=rank,
                                    generator=gen(3))
    assert torch.equal(again.field.linear_parts(), net.field.linear_parts())


def test_gradient_layer_refuses_bad_arguments():
    """A negative h ||A||^2, a rank outside 1..width and a bad width are refused."""
    with pytest.raises(ValueError, match="h_norm2 must be a finite number >= 0"):
        examples.gradient_layer(-1.0)
    with pytest.raises(ValueError, match=r"rank must be an int in 1..3"):
        examples.gradient_layer(1.0, width=3, rank=4)
    with pytest.raises(ValueError, match=r"rank must be an int in 1..3"):
        examples.gradient_layer(1.0, width=3, rank=True)
    with pytest.raises(ValueError, match="width must be a positive integer"):
        examples.gradient_layer(1.0, width=0)


# --- parametric_oscillator --------------------------------------------------------------------

def test_parametric_oscillator_is_mathieus_equation_and_resonates():
    """A^k = sqrt(1 + s cos 2 t_k), b = 0 on a width-1 identity second-order field: with s = 0
    the flow is cos t; with s = 0.5 the energy p^2/2 + a(t)^2 z^2/2 grows over 1000-fold by
    t = 40 (parametric resonance)."""
    T, steps = 40.0, 2000
    field = examples.parametric_oscillator(T, layers=201, strength=0.5)
    assert isinstance(field, SecondOrderField) and field.width == 1 and field.layers == 201
    t = torch.linspace(0, T, 201, dtype=F64)
    torch.testing.assert_close(field.linear_parts().view(-1),
                               torch.sqrt(1 + 0.5 * torch.cos(2 * t)), rtol=0, atol=1e-15)
    assert torch.equal(field.biases(), torch.zeros(201, 1, dtype=F64))
    z0 = torch.ones(1, 1, dtype=F64)
    with torch.no_grad():
        Z, P = rk_solve(time_dependent(field, T), (z0, torch.zeros_like(z0)), T / steps, steps,
                        "rk4", trajectory=True)
        free = examples.parametric_oscillator(T, layers=201, strength=0.0)
        zT, _ = rk_solve(time_dependent(free, T), (z0, torch.zeros_like(z0)), T / steps, steps,
                         "rk4")
    a2 = 1 + 0.5 * math.cos(2 * T)
    energy = [0.5 * float(P[k]) ** 2 + 0.5 * a * float(Z[k]) ** 2
              for k, a in ((0, 1.5), (-1, a2))]
    assert energy[1] > 1000 * energy[0]
    assert abs(float(zT) - math.cos(T)) < 1e-6
    with pytest.raises(ValueError, match=r"strength must be a number in \[0, 1\)"):
        examples.parametric_oscillator(T, strength=1.0)
    for strength in (-0.1, True):
        with pytest.raises(ValueError, match="strength must be a finite number >= 0"):
            examples.parametric_oscillator(T, strength=strength)
