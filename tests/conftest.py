"""Shared fixtures, and the library tests on one thread: the networks are tiny, so more threads
only add synchronisation (and CI shares its cores with the notebook kernels).

The fixtures are factories (session-scoped, so that Hypothesis tests may use them):

- ``points(n, seed, classes, dtype)``: ``n`` standard normal points in the plane with random
  labels in ``0..classes-1``, drawn from ``seed``;
- ``donut(n, seed)``: the ``donut2d`` data set in float64;
- ``small_net(method, depth, field, seed, members, width, T)``: a float64 ``ODENet`` of width
  3, depth 4, ``T = 2`` (unless told otherwise);
- ``hand_net(members)``: width 2, ``K = 3``, ``T = 1.5`` with parameters chosen by hand;
- ``smoothness_by_loop(net, lam)``: the regulariser ``R_h`` written out as a loop;
- ``tiny_config`` and ``tiny``: a small configuration of ``lib.experiments.run`` (two seeds,
  six iterations, float64) and its run.
"""
import pytest
import torch

import lib

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def points():
    def make(n: int = 40, seed: int = 0, classes: int = 2, dtype=torch.float64):
        g = torch.Generator().manual_seed(seed)
        return (torch.randn(n, 2, generator=g, dtype=dtype),
                torch.randint(0, classes, (n,), generator=g))
    return make


@pytest.fixture(scope="session")
def donut():
    def make(n: int = 40, seed: int = 0):
        return lib.make_dataset("donut2d", n, seed=seed, dtype=torch.float64)
    return make


@pytest.fixture(scope="session")
def small_net():
    def make(method="euler", depth: int = 4, field="resnet", seed: int = 3, members=None,
             width: int = 3, T: float = 2.0):
        seeds = seed if members is None else list(range(seed, seed + members))
        return lib.ODENet(width=width, depth=depth, T=T, method=method, field=field,
                          seed=seeds).double()
    return make


@pytest.fixture(scope="session")
def hand_net(small_net):
    def make(members=None):
        """Width 2, K = 3 layers, T = 1.5 (h = 1/2), with parameters chosen by hand:
        A^k = k I and b^k = (k, -k) for k = 0, 1, 2 (members s add s to every entry)."""
        net = small_net(width=2, depth=3, T=1.5, members=members)
        k = torch.arange(3, dtype=torch.float64)
        A = k[:, None, None] * torch.eye(2, dtype=torch.float64)
        b = torch.stack([k, -k], 1)
        if members is not None:
            s = torch.arange(members, dtype=torch.float64)
            A, b = A[:, None] + s[None, :, None, None], b[:, None] + s[None, :, None]
        net.field.set_affine(A, b)
        return net
    return make


@pytest.fixture(scope="session")
def smoothness_by_loop():
    def R(net, lam):
        """``lam h sum_k |(theta^{k+1} - theta^k) / h|^2`` over every stacked parameter."""
        h, total = net.h, 0.0
        for k in range(net.depth - 1):
            for theta in net.field.stacks().values():
                total += (((theta[k + 1] - theta[k]) / h) ** 2).sum().item()
        return lam * h * total
    return R


@pytest.fixture(scope="session")
def tiny_config():
    return dict(dataset="spiral", seeds=[0, 1], n=40, iterations=6, width=2, depth=4, T=2.0,
                lam=0.1, dtype="float64")


@pytest.fixture(scope="session")
def tiny(tiny_config):
    from lib import experiments

    return experiments.run(tiny_config)
