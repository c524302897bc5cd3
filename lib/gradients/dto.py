"""Discretise-then-optimise: the gradient of the discrete network by autograd through its
``K`` layers (reverse-mode differentiation, LeCun 1988), exact for the discrete network."""
from __future__ import annotations

import torch

from .base import Strategy, autograd_gradient

__all__ = ["DTO"]


class DTO(Strategy):
    """``dE/dtheta`` by autograd through the layers.  Every network; memory grows like
    ``K s`` stored stage activations."""

    name = "dto"

    def differentiable_loss(self, net, x, y, data_loss):
        return data_loss(net(x), y)

    def _compute(self, net, x, y, data_loss):
        with torch.enable_grad():
            return autograd_gradient(net, self.differentiable_loss(net, x, y, data_loss))
