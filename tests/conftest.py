"""Shared fixtures, and the library tests on one thread: the networks are tiny, so more threads
only add synchronisation (and CI shares its cores with the notebook kernels).

The fixtures are factories (session-scoped, so that Hypothesis tests may use them):

- ``points(n, seed, classes, dtype)``: ``n`` standard normal points in the plane with random
  labels in ``0..classes-1``, drawn from ``seed``;
- ``donut(n, seed)``: the ``donut2d`` data set in float64;
- ``small_net(method, depth, field, seed, members, width, T)``: a float64 ``ODENet`` of width
  3, depth 4, ``T = 2`` (unless told otherwise).
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
