"""Vector fields (lib.fields, and the hooks of the Hamiltonian fields): the hooks a network and
the diagnostics use (vector_field, initial_state, readout, linear_parts, biases, set_affine),
the per-layer parameter methods, the structure of the restricted fields, and the acceptance
criterion of the redesign: a new vector field is one new file (the two below) and works with
ODENet, members, the gradient strategies, the determinants and the spectra, with no edit in lib.
"""
import pytest
import torch

import lib
from lib import folding, gradients, spectra
from lib.fields import (FIELDS, AntisymmetricField, GradientField, NegativeDefiniteField,
                        ResNetField, VectorField, make_field)
from lib.hamiltonian import CoupledField, GeneralHamiltonianField, SecondOrderField
from lib.integrators import Separable

F64 = torch.float64
EPS = torch.finfo(F64).eps


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def build(cls, width=3, layers=4, activation="tanh", seed=0, members=None, **kwargs):
    generator = gen(seed) if members is None else [gen(seed + s) for s in range(members)]
    return cls(width, layers, activation, generator=generator, **kwargs).to(F64)


def states(n=6, d=3, seed=1, members=None):
    shape = (n, d) if members is None else (members, n, d)
    return torch.randn(*shape, generator=gen(seed), dtype=F64)


# --- two new fields, written here only --------------------------------------------------------

class TanhShiftField(VectorField):
    """f(z; A, b) = sigma(A z) + b: the bias outside the activation."""

    theta_names = ("A", "b")

    def __init__(self, width, layers, activation="tanh", generator=None):
        super().__init__(width, layers, activation, generator)
        self._matrix_and_bias("A", generator)

    def forward(self, z, theta):
        A, b = theta
        return self.sigma(torch.matmul(z, A.mT)) + b.unsqueeze(-2)


class DampedField(VectorField):
    """f(z; A, b, c) = sigma(A z + b) - softplus(c) z: a per-layer damping rate, drawn by hand
    (one scalar per layer, and per member) after A and b."""

    theta_names = ("A", "b", "c")

    def __init__(self, width, layers, activation="tanh", generator=None):
        super().__init__(width, layers, activation, generator)
        self._matrix_and_bias("A", generator)
        gens = generator if isinstance(generator, (list, tuple)) else [generator]
        draws = [torch.randn(layers, generator=g) for g in gens]
        self.c = torch.nn.Parameter(draws[0] if self.members is None else torch.stack(draws, 1))

    def forward(self, z, theta):
        A, b, c = theta
        pre = torch.matmul(z, A.mT) + b.unsqueeze(-2)
        return self.sigma(pre) - torch.nn.functional.softplus(c)[..., None, None] * z


NEW_FIELDS = [TanhShiftField, DampedField]


def new_field_jacobian(field, theta, z):
    """The closed-form Jacobians [n, d, d] of the new fields with sigma = tanh."""
    if isinstance(field, TanhShiftField):
        A, _ = theta
        return (1 - torch.tanh(z @ A.T).square())[:, :, None] * A
    A, b, c = theta
    damping = torch.nn.functional.softplus(c) * torch.eye(z.shape[-1], dtype=z.dtype)
    return (1 - torch.tanh(z @ A.T + b).square())[:, :, None] * A - damping


@pytest.mark.parametrize("cls", NEW_FIELDS)
def test_a_new_field_builds_a_network_with_members(small_net, points, cls):
    """ODENet(field=NewField) draws the field like a named one; member s is the network of
    seed s; the hooks keep their defaults (no affine map, no pair state)."""
    net = small_net(field=cls, method="rk4")
    assert isinstance(net.field, cls) and net.depth == 4 and net.width == 3
    x, _ = points(5)
    z = net.lift(x)
    assert net.field.initial_state(z) is z and net.field.readout(z) is z
    assert torch.equal(net.field.vector_field(net.field.layer(0))(0.7, z),
                       net.field(z, net.field.layer(0)))
    assert net(x).shape == (5,)
    with pytest.raises(TypeError, match="no single affine map"):
        net.field.linear_parts()
    with pytest.raises(TypeError, match="cannot set"):
        net.field.set_affine(torch.eye(3))
    many = small_net(field=cls, method="rk4", members=3, seed=5)
    for s in range(3):
        alone = small_net(field=cls, method="rk4", seed=5 + s)
        for (name, p), q in zip(many.member(s).named_parameters(), alone.parameters()):
            assert torch.equal(p, q), name
    single = small_net(field=cls, method="rk4", seed=6)
    torch.testing.assert_close(many(x)[1], single(x), rtol=0, atol=16 * EPS)
    with pytest.raises(TypeError, match="partitioned pair.*not one"):
        small_net(field=cls, method="stormer_verlet")


@pytest.mark.parametrize("cls", NEW_FIELDS)
@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_a_new_field_has_the_gradients_of_every_strategy(small_net, donut, cls, method):
    """DTO, OTD (DTO to <= 64 eps), Checkpointed (DTO bitwise) and Backsolve (converging to
    DTO as h -> 0) work on the new field, for a single network and for members."""
    net = small_net(field=cls, method=method, depth=16, T=1.0)
    x, y = donut(30)
    dto = gradients.DTO()(net, x, y)
    assert set(dto) == {name for name, _ in net.named_parameters()}
    assert all(float(g.abs().max()) > 0 for g in dto.values())
    assert gradients.relative_difference(gradients.OTD()(net, x, y), dto) <= 64 * EPS
    checkpointed = gradients.Checkpointed(5)(net, x, y)
    assert all(torch.equal(checkpointed[k], dto[k]) for k in dto)
    errors = []
    for fine in (net, net.refined(2)):  # the same theta(t) at h and h / 2
        errors.append(gradients.relative_difference(
            gradients.Backsolve()(fine, x, y), gradients.DTO()(fine, x, y),
            gradients.layer_keys(fine)))
    assert errors[1] > 1e-12  # a reconstruction, not DTO
    assert errors[0] / errors[1] > (1.6 if method == "euler" else 8)  # converging at order p
    many = small_net(field=cls, method=method, depth=16, T=1.0, members=2, seed=3)
    for strategy in (gradients.DTO(), gradients.OTD()):
        together = strategy(many, x, y)
        alone = strategy(many.member(1), x, y)
        for name, g in alone.items():
            block = together[name][:, 1] if name.startswith("field") else together[name][1]
            torch.testing.assert_close(block, g, rtol=0, atol=64 * EPS * float(g.abs().max()))


@pytest.mark.parametrize("cls", NEW_FIELDS)
def test_a_new_field_has_layer_determinants_and_trajectory_spectra(small_net, points, cls):
    """folding.layer_determinants is det of the autograd Jacobian of each layer map, and
    spectra.trajectory_spectra the spectra of the field's closed-form Jacobian."""
    net = small_net(field=cls, method="heun")
    x, _ = points(6)
    dets = folding.layer_determinants(net, x)
    assert dets.shape == (4, 6)
    with torch.no_grad():
        trajectory = net.states(x)
    for k, layer in enumerate(net.layers()):
        layer = layer.with_theta(p.detach() for p in layer.theta)
        J = torch.func.vmap(torch.func.jacrev(lambda z: layer(z[None])[0]))(trajectory[k])
        torch.testing.assert_close(dets[k], torch.linalg.det(J), rtol=1e-13, atol=0)
    result = spectra.trajectory_spectra(net, x)
    J = torch.stack([new_field_jacobian(net.field, tuple(p.detach() for p in theta), z)
                     for theta, z in zip(net.field.thetas(), trajectory[:-1])])
    torch.testing.assert_close(result.alpha, torch.linalg.eigvals(J).real.amax(-1),
                               rtol=0, atol=1e-13)
    torch.testing.assert_close(result.log_norm,
                               torch.linalg.eigvalsh((J + J.mT) / 2)[..., -1], rtol=0, atol=1e-13)
    torch.testing.assert_close(result.variation,
                               torch.linalg.matrix_norm(J.diff(dim=0), ord=2) / net.h,
                               rtol=1e-12, atol=1e-13)


# --- the hooks --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(FIELDS))
def test_first_order_hooks(name):
    """vector_field(theta) is f(t, z) = field(z, theta) at every t; the state is z itself."""
    field = build(FIELDS[name])
    theta = field.layer(2)
    z = states()
    f = field.vector_field(theta)
    for t in (0.0, 1.7):
        assert torch.equal(f(t, z), field(z, theta))
    assert field.initial_state(z) is z and field.readout(z) is z


@pytest.mark.parametrize("cls", [GeneralHamiltonianField, SecondOrderField, CoupledField])
def test_hamiltonian_hooks(cls):
    """vector_field is the Separable (F(t, p), G(t, z)) = (dz, dp); the state starts at (z0, 0)
    and the classifier reads z."""
    field = build(cls)
    theta = field.layer(1)
    z, p = states(seed=2), states(seed=3)
    f = field.vector_field(theta)
    assert isinstance(f, Separable)
    assert torch.equal(f.dz(0.3, p), field.dz(p, theta))
    assert torch.equal(f.dp(0.3, z), field.dp(z, theta))
    both = f(0.3, (z, p))
    assert all(torch.equal(a, b) for a, b in zip(both, field((z, p), theta)))
    z0, p0 = field.initial_state(z)
    assert z0 is z and torch.equal(p0, torch.zeros_like(z))
    assert field.readout((z, p)) is z


@pytest.mark.parametrize("members", [None, 2])
@pytest.mark.parametrize("name", sorted(FIELDS))
def test_linear_parts_and_biases_are_the_matrices_of_the_formulas(name, members):
    """linear_parts: A (ResNet, gradient), W - W^T - kappa I (antisymmetric),
    -(B B^T + kappa I) (negdef), [K, (S,) d, d]; with sigma = identity the pre-activation is
    M^k z + b^k (the field itself, or -M^T (M z + b) for the gradient field)."""
    field = build(FIELDS[name], activation="identity", members=members)
    M, b = field.linear_parts(), field.biases()
    batch = (4,) if members is None else (4, members)
    assert M.shape == batch + (3, 3) and b.shape == batch + (3,)
    stacks = field.stacks()
    eye = torch.eye(3, dtype=F64)
    first = next(iter(stacks.values()))
    expected = {"resnet": lambda P: P, "gradient": lambda P: P,
                "antisymmetric": lambda W: W - W.mT - 0.1 * eye,
                "negdef": lambda B: -(B @ B.mT + 0.1 * eye)}[name](first)
    torch.testing.assert_close(M, expected, rtol=0, atol=4 * EPS)
    assert torch.equal(b, stacks["b"])
    z = states(members=members)
    for k, theta in enumerate(field.thetas()):
        pre = torch.matmul(z, M[k].mT) + b[k].unsqueeze(-2)
        value = -torch.matmul(pre, M[k]) if name == "gradient" else pre
        torch.testing.assert_close(field(z, theta), value, rtol=0, atol=1e-14)


def test_hamiltonian_linear_parts():
    """The second-order and coupled fields expose A; the general field has two maps: TypeError."""
    for cls in (SecondOrderField, CoupledField):
        field = build(cls)
        assert torch.equal(field.linear_parts(), field.stacks()["A"])
        assert torch.equal(field.biases(), field.stacks()["b"])
    general = build(GeneralHamiltonianField)
    for hook in (general.linear_parts, general.biases):
        with pytest.raises(TypeError, match="no single affine map"):
            hook()


@pytest.mark.parametrize("members", [None, 3])
@pytest.mark.parametrize("cls", [ResNetField, GradientField, SecondOrderField, CoupledField])
def test_set_affine_copies_broadcasts_and_keeps_the_parameters(cls, members):
    """set_affine broadcasts a matrix and a bias to every layer (and member), without gradient,
    in place (the same Parameters), in the field's dtype; None leaves that part alone."""
    field = build(cls, members=members)
    params = dict(field.named_parameters())
    bias_before = field.biases().clone()
    matrix = torch.arange(9.0).view(3, 3)          # float32, cast to the field's float64
    field.set_affine(matrix=matrix)
    M = field.linear_parts()
    assert M.dtype == F64 and torch.equal(M, matrix.double().expand_as(M))
    assert torch.equal(field.biases(), bias_before)  # untouched
    bias = torch.linspace(-1, 1, 4, dtype=F64).view(4, *([1] * (bias_before.dim() - 1)))
    field.set_affine(bias=bias)                   # one value per layer, broadcast
    b = field.biases()
    assert torch.equal(b, bias.expand_as(b)) and not torch.equal(b, bias_before)
    assert torch.equal(field.linear_parts(), M)  # untouched
    assert dict(field.named_parameters()) == params
    assert all(p.is_leaf and p.requires_grad and p.grad_fn is None for p in params.values())


@pytest.mark.parametrize("cls", [AntisymmetricField, NegativeDefiniteField,
                                 GeneralHamiltonianField])
def test_set_affine_is_refused_where_the_matrix_is_derived(cls):
    """A field whose matrix is not a free parameter cannot set it: TypeError."""
    with pytest.raises(TypeError, match="cannot set its layers' affine maps"):
        build(cls).set_affine(torch.eye(3), torch.zeros(3))


# --- the per-layer parameters -------------------------------------------------------------------

def test_the_field_methods_reach_every_layer_parameter():
    """stacks, thetas, layer, repeat_layers and member reach all per-layer parameters."""
    net = lib.ODENet(width=3, depth=4, field="antisymmetric", seed=2)
    stacks = net.field.stacks()
    assert list(stacks) == ["W", "b"] and stacks["W"].shape == (4, 3, 3)
    assert stacks["b"].shape == (4, 3)
    assert len(net.field.thetas()) == 4
    assert all(torch.equal(a, b) for a, b in zip(net.field.layer(2), net.field.thetas()[2]))
    net.field.repeat_layers(3)
    assert net.field.layers == 12 and torch.equal(net.field.stacks()["W"][5], stacks["W"][1])
    with pytest.raises(ValueError, match="layer index in 0..11"):
        net.field.layer(12)
    with pytest.raises(ValueError, match="no members"):
        net.field.member(0)
    many = build(ResNetField, members=2)
    with pytest.raises(ValueError, match="member index"):
        many.member(2)
    alone = build(ResNetField, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(many.member(1).stacks().values(),
                                                 alone.stacks().values()))


def test_make_field_and_bad_arguments():
    """make_field builds the named fields; unknown names, activations and shifts are refused."""
    assert isinstance(make_field("negdef", 3, 2), NegativeDefiniteField)
    with pytest.raises(ValueError, match="unknown field 'typo'"):
        make_field("typo", 3, 2)
    with pytest.raises(ValueError, match="kappa must be a finite number >= 0"):
        AntisymmetricField(3, 2, kappa=-1.0)
    with pytest.raises(ValueError, match="kappa must be a finite number > 0"):
        NegativeDefiniteField(3, 2, kappa=0.0)
    with pytest.raises(ValueError, match="unknown activation"):
        GradientField(3, 2, "softplus")
    with pytest.raises(ValueError, match="width must be a positive integer"):
        ResNetField(0, 2)


# --- the structure of the restricted fields ------------------------------------------------------

def test_antisymmetric_field_structure():
    """M = W - W^T - kappa I has M + M^T = -2 kappa I and eigenvalues of real part -kappa; the
    field is tanh(M z + b) and its Jacobians have alpha <= 0."""
    field = build(AntisymmetricField, 4, 3, seed=26, kappa=0.3)
    z = states(30, 4, seed=27)
    for theta in field.thetas():
        K = field.matrix(theta).detach()
        torch.testing.assert_close(K + K.T, -0.6 * torch.eye(4, dtype=F64))
        torch.testing.assert_close(torch.linalg.eigvals(K).real, torch.full((4,), -0.3, dtype=F64))
        W, b = theta
        torch.testing.assert_close(field(z, theta),
                                   torch.tanh(z @ (W - W.T - 0.3 * torch.eye(4)).T + b))
        assert float(spectra.spectral_abscissa(spectra.jacobians(field, theta, z)).max()) <= 1e-12


def test_negative_definite_field_structure():
    """A = -(B B^T + kappa I) is symmetric with eigenvalues <= -kappa; the Jacobians have real
    eigenvalues (similar to a symmetric matrix) and alpha <= 0."""
    field = build(NegativeDefiniteField, 4, 3, seed=28, kappa=0.2)
    z = states(30, 4, seed=29)
    for theta in field.thetas():
        A = field.matrix(theta).detach()
        B, b = theta
        torch.testing.assert_close(A, -(B @ B.T).detach() - 0.2 * torch.eye(4, dtype=F64))
        torch.testing.assert_close(A, A.T)
        assert float(torch.linalg.eigvalsh(A).max()) <= -0.2 + 1e-12
        torch.testing.assert_close(field(z, theta), torch.tanh(z @ A.T + b))
        J = spectra.jacobians(field, theta, z)
        assert float(torch.linalg.eigvals(J).imag.abs().max()) <= 1e-10
        assert float(spectra.spectral_abscissa(J).max()) <= 1e-12


def test_gradient_field_is_minus_gradient_of_potential():
    """f = -grad V with V(z) = sum log cosh(A z + b) for sigma = tanh; J is symmetric."""
    field = build(GradientField, 3, 1, seed=30)
    theta = field.thetas()[0]
    A, b = theta
    z = states(8, 3, seed=31).requires_grad_(True)
    V = torch.log(torch.cosh(z @ A.T + b)).sum()
    (grad,) = torch.autograd.grad(V, z)
    torch.testing.assert_close(field(z, theta), -grad)
    J = spectra.jacobians(field, theta, z)
    torch.testing.assert_close(J, J.mT)


@pytest.mark.parametrize("field", ["gradient", "antisymmetric", "negdef", TanhShiftField,
                                   DampedField])
def test_fields_train_in_odenet(small_net, donut, field):
    """Every field, the new ones too, trains: the loss falls and every stack gets a gradient."""
    net = small_net(field=field, seed=32)
    x, y = donut(60)
    history = lib.train(net, x, y, iterations=30, lr=0.05, record_every=30)
    assert history.loss[-1] < history.loss[0]
    assert all(p.grad is not None and float(p.grad.abs().max()) > 0
               for p in net.field.stacks().values())


def test_member_generators_draw_like_single_fields():
    """A field of S members holds, in member s, the field drawn from generator s alone, for the
    new fields too (drawn after _matrix_and_bias)."""
    for cls in (ResNetField, DampedField):
        many = build(cls, members=3, seed=10)
        for s in range(3):
            single = build(cls, seed=10 + s)
            for name, p in many.stacks().items():
                assert torch.equal(p[:, s], single.stacks()[name]), (cls.__name__, name)
