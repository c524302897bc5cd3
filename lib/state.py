"""The state of a network layer: a tensor ``z``, or a tuple of tensors such as the phase-space
pair ``(z, p)`` of a Hamiltonian network.

Every consumer of states (the integrator, the layer map, the gradient sweeps, the diagnostics)
handles both kinds through these few helpers, in the spirit of a pytree (JAX; diffrax's
states): a *state* is a tensor or a non-empty tuple of tensors of one shape, and an operation
on states is an operation on each component.  A tuple state can also be *joined* into one
tensor along the last axis (``(z, p) -> [..., 2 width]``, ``z`` first), the form in which
Jacobians, spectra and determinants see it.
"""
from __future__ import annotations

from typing import Callable, Union

import torch

State = Union[torch.Tensor, tuple]

__all__ = ["State", "check", "components", "tree_map", "stack", "detached", "join", "split",
           "on_joined"]


def check(state, name: str = "state") -> State:
    """``state`` if it is a tensor or a non-empty tuple of tensors of one shape, else a
    ``TypeError`` (or ``ValueError`` for mismatched shapes) naming ``name``."""
    if isinstance(state, torch.Tensor):
        return state
    if not (isinstance(state, tuple) and state and all(isinstance(c, torch.Tensor) for c in state)):
        raise TypeError(f"{name} must be a torch.Tensor or a tuple of tensors, got "
                        f"{type(state).__name__}")
    if len({c.shape for c in state}) != 1:
        raise ValueError(f"the components of {name} must have one shape, got "
                         f"{[list(c.shape) for c in state]}")
    return state


def components(state: State) -> tuple[torch.Tensor, ...]:
    """The tensors of a state: ``(z,)`` for a tensor, the tuple itself otherwise."""
    return (state,) if isinstance(state, torch.Tensor) else state


def tree_map(fn: Callable, *states: State) -> State:
    """``fn`` applied component by component to states of one kind."""
    if isinstance(states[0], torch.Tensor):
        return fn(*states)
    return tuple(fn(*parts) for parts in zip(*states))


def stack(states: list) -> State:
    """A list of states ``[y^0, ..., y^K]`` as one state of stacks ``[K+1, ...]``."""
    if isinstance(states[0], torch.Tensor):
        return torch.stack(states)
    return tuple(torch.stack(parts) for parts in zip(*states))


def detached(state: State, requires_grad: bool = False) -> State:
    """A copy of the state cut from any graph; fresh leaves with ``requires_grad``."""
    return tree_map(lambda c: c.detach().requires_grad_(requires_grad), state)


def join(state: State) -> torch.Tensor:
    """One tensor: the state itself, or a tuple's components along the last axis."""
    return state if isinstance(state, torch.Tensor) else torch.cat(state, -1)


def split(y: torch.Tensor, like: State) -> State:
    """The inverse of :func:`join` for states of the kind of ``like``."""
    if isinstance(like, torch.Tensor):
        return y
    return tuple(y.split(like[0].shape[-1], -1))


def on_joined(fn: Callable[[State], State], like: State) -> Callable[[torch.Tensor], torch.Tensor]:
    """``fn`` as a map of joined tensors, ``y -> join(fn(split(y)))``, for states of the kind of
    ``like``: Jacobians and determinants of a map of tuple states are those of this map."""
    if isinstance(like, torch.Tensor):
        return fn
    return lambda y: join(fn(split(y, like)))
