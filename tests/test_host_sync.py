"""A training step never waits for the device (the docstring of lib/training.py: so that a GPU
can run the whole step as one CUDA graph).  Tested on the CPU by proxy: every operation that
needs a tensor's value on the host (``.item()``, ``bool(t)``, ``float(t)``:
``aten._local_scalar_dense``) or whose output shape depends on the data (``nonzero``,
``masked_select``) is counted while ``lib.train`` runs; the count must not grow with the
number of steps in a block (``record_every``).  The optimiser's own step counter is excluded:
PyTorch keeps it on the host on purpose (it is a host value on a GPU too, and
``capturable=True`` moves it to the device for graph capture)."""
import pytest
import torch
from torch.optim.optimizer import (register_optimizer_step_post_hook,
                                   register_optimizer_step_pre_hook)
from torch.utils._python_dispatch import TorchDispatchMode

import lib
from lib.gradients import DTO, OTD, Backsolve, Checkpointed
from lib.regularisers import time_smoothness

SYNCHRONISING = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.nonzero.default,
                 torch.ops.aten.masked_select.default}


class HostSyncs(TorchDispatchMode):
    """Counts synchronising operations outside ``Optimizer.step``."""

    def __init__(self):
        super().__init__()
        self.count, self.in_optimizer = 0, False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in SYNCHRONISING and not self.in_optimizer:
            self.count += 1
        return func(*args, **(kwargs or {}))


def syncs(steps: int, seed=(0, 1), **options) -> int:
    X, y = lib.make_dataset("donut2d", 40, seed=0)
    net = lib.ODENet(width=3, depth=3, method="rk4", seed=seed)
    meter = HostSyncs()
    hooks = [register_optimizer_step_pre_hook(lambda *a: setattr(meter, "in_optimizer", True)),
             register_optimizer_step_post_hook(lambda *a: setattr(meter, "in_optimizer", False))]
    try:
        with meter:
            lib.train(net, X, y, iterations=steps, record_every=steps, **options)
    finally:
        for hook in hooks:
            hook.remove()
    return meter.count


def test_the_proxy_sees_a_host_sync():
    """The counter sees bool(), .item() and float() of a tensor."""
    meter = HostSyncs()
    with meter:
        t = torch.ones(3)
        bool(t.sum() > 0), t.max().item(), float(t[0])
    assert meter.count == 3


@pytest.mark.parametrize("options", [{}, {"optimizer": "gd"},
                                     {"regulariser": time_smoothness(0.1)}],
                         ids=["adam", "gd", "regularised"])
def test_training_steps_never_synchronise(options):
    """Nine steps in a block synchronise as often as three: no step waits for the device."""
    assert syncs(3, **options) == syncs(9, **options)


@pytest.mark.parametrize("gradient", [OTD(), DTO(), Checkpointed(), Backsolve()], ids=repr)
def test_gradient_strategies_never_synchronise(gradient):
    """A step with a gradient strategy of lib.gradients does not synchronise either."""
    assert syncs(3, seed=0, gradient=gradient) == syncs(9, seed=0, gradient=gradient)
