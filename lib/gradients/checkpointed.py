"""DTO with checkpointing (Gholami, Keutzer & Biros 2019, ANODE): keep only the states at the
start of each segment of layers and recompute each segment's graph on the way back."""
from __future__ import annotations

import math

import torch
from torch.utils.checkpoint import checkpoint

from .. import state as tree
from ..validate import positive_int
from .base import Strategy, autograd_gradient

__all__ = ["Checkpointed"]


def _segment(state_components, layers, is_tensor: bool):
    """The layers of one segment applied to a state given as its components (``checkpoint``
    passes tensors, not tuples)."""
    y = state_components[0] if is_tensor else tuple(state_components)
    for layer in layers:
        y = layer(y)
    return tree.components(y)


class Checkpointed(Strategy):
    """Checkpointed DTO with ``segment`` layers per segment (default ``ceil(sqrt(K))``), by
    :func:`torch.utils.checkpoint.checkpoint`.  The same operations run in the same order, so
    the gradient is bitwise the DTO gradient; memory is about ``K / segment`` states plus one
    segment's graph.  Every network."""

    name = "checkpointed_dto"

    def __init__(self, segment: int | None = None):
        self.segment = None if segment is None else positive_int(segment, "segment")

    def _compute(self, net, x, y, data_loss):
        K = net.depth
        segment = math.ceil(math.sqrt(K)) if self.segment is None else self.segment
        with torch.enable_grad():
            layers = net.layers()
            state = net.lift(x)
            for start in range(0, K, segment):
                parts = checkpoint(_segment, tree.components(state), layers[start:start + segment],
                                   isinstance(state, torch.Tensor), use_reentrant=False)
                state = parts[0] if isinstance(state, torch.Tensor) else tuple(parts)
            E = data_loss(net.classifier(net.field.readout(state)), y)
            return autograd_gradient(net, E)

    def __repr__(self) -> str:
        return f"Checkpointed({'' if self.segment is None else self.segment})"
