"""lib.state: the tree helpers every consumer of states uses (a tensor, or a tuple of tensors of
one shape such as the phase-space pair (z, p)): checks, component-wise maps, stacks, detached
copies, and the joined form along the last axis with its inverse."""
import pytest
import torch

from lib import state as tree

F64 = torch.float64


def pair(n=4, d=3, seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(n, d, generator=g, dtype=F64).requires_grad_(requires_grad)
                 for _ in range(2))


def test_check_returns_valid_states_unchanged():
    """A tensor and a non-empty tuple of tensors of one shape are returned as they are."""
    z = torch.zeros(2, 3)
    assert tree.check(z) is z
    state = pair()
    assert tree.check(state) is state
    triple = (*pair(), torch.ones(4, 3, dtype=F64))
    assert tree.check(triple) is triple


@pytest.mark.parametrize("bad, error, message", [
    ([torch.zeros(2)], TypeError, "y0 must be a torch.Tensor or a tuple of tensors, got list"),
    ((), TypeError, "got tuple"),
    ((torch.zeros(2), 1.0), TypeError, "y0 must be"),
    (3.0, TypeError, "got float"),
    ((torch.zeros(2, 3), torch.zeros(2, 4)), ValueError, r"components of y0 must have one shape"),
])
def test_check_refuses_other_states_naming_the_argument(bad, error, message):
    """Lists, empty tuples, non-tensors and components of different shapes are refused."""
    with pytest.raises(error, match=message):
        tree.check(bad, "y0")


def test_components_and_tree_map():
    """components gives (z,) or the tuple; tree_map acts component by component on several
    states of one kind and returns a state of that kind."""
    z = torch.arange(6.0).view(2, 3)
    assert tree.components(z) == (z,) and tree.components(z)[0] is z
    a, b = pair(seed=1), pair(seed=2)
    assert tree.components(a) is a
    total = tree.tree_map(lambda u, v: u + 2 * v, a, b)
    assert isinstance(total, tuple) and len(total) == 2
    for t, u, v in zip(total, a, b):
        assert torch.equal(t, u + 2 * v)
    assert torch.equal(tree.tree_map(torch.neg, z), -z)


def test_stack_of_tensor_and_tuple_states():
    """A list [y^0..y^K] becomes [K+1, ...]: one stack for tensors, one per component for tuples."""
    zs = [torch.full((2, 3), float(k)) for k in range(4)]
    stacked = tree.stack(zs)
    assert stacked.shape == (4, 2, 3) and torch.equal(stacked[2], zs[2])
    states = [pair(seed=k) for k in range(5)]
    Z, P = tree.stack(states)
    assert Z.shape == P.shape == (5, 4, 3)
    assert torch.equal(Z[3], states[3][0]) and torch.equal(P[3], states[3][1])


@pytest.mark.parametrize("requires_grad", [False, True])
def test_detached_cuts_the_graph_and_sets_fresh_leaves(requires_grad):
    """detached copies carry no graph; with requires_grad they are new leaves."""
    a = pair(requires_grad=True)
    b = tuple(2 * c for c in a)  # has a graph
    cut = tree.detached(b, requires_grad=requires_grad)
    for c, original in zip(cut, b):
        assert c.grad_fn is None and c.is_leaf and c.requires_grad == requires_grad
        assert torch.equal(c, original) and c is not original
    z = (3 * a[0]).sum(-1)
    single = tree.detached(z, requires_grad=requires_grad)
    assert single.grad_fn is None and single.requires_grad == requires_grad


def test_join_and_split_are_inverse_round_trips():
    """join puts the components side by side (z first) and split undoes it, both ways."""
    z, p = pair(n=5, d=2)
    y = tree.join((z, p))
    assert y.shape == (5, 4)
    assert torch.equal(y[:, :2], z) and torch.equal(y[:, 2:], p)
    back = tree.split(y, like=(z, p))
    assert isinstance(back, tuple) and torch.equal(back[0], z) and torch.equal(back[1], p)
    w = torch.randn(3, 7, 4, dtype=F64)
    assert torch.equal(tree.join(tree.split(w, like=(w[..., :2], w[..., 2:]))), w)
    # batched states (members, a leading stack) split along the last axis too
    batch = tree.split(torch.randn(6, 5, 4, dtype=F64), like=(z, p))
    assert [c.shape for c in batch] == [(6, 5, 2), (6, 5, 2)]
    # a tensor state is its own joined form
    assert tree.join(z) is z and tree.split(z, like=z) is z


def test_on_joined_is_the_map_of_joined_tensors_and_has_its_jacobian():
    """on_joined(fn, like) = y -> join(fn(split(y))); its Jacobian has the (z, p) blocks."""
    d = 3
    A = torch.randn(d, d, generator=torch.Generator().manual_seed(3), dtype=F64)

    def fn(state):  # (z, p) -> (p, -tanh(z A^T))
        z, p = state
        return p, -torch.tanh(z @ A.T)

    like = pair(n=1, d=d)
    joined = tree.on_joined(fn, like)
    y = torch.randn(2, 2 * d, generator=torch.Generator().manual_seed(4), dtype=F64)
    out = joined(y)
    expected = fn((y[:, :d], y[:, d:]))
    assert torch.equal(out, torch.cat(expected, -1))
    J = torch.func.jacrev(lambda v: joined(v[None])[0])(y[0])
    sech2 = 1 - torch.tanh(A @ y[0, :d]).square()
    blocks = torch.cat([torch.cat([torch.zeros(d, d, dtype=F64), torch.eye(d, dtype=F64)], 1),
                        torch.cat([-sech2[:, None] * A, torch.zeros(d, d, dtype=F64)], 1)], 0)
    torch.testing.assert_close(J, blocks, rtol=0, atol=1e-15)
    identity = torch.neg
    assert tree.on_joined(identity, torch.zeros(2)) is identity  # a tensor state: fn itself
