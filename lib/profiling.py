"""Measuring computations, apart from the mathematics: the peak memory of a call, counted
tensor by tensor, and its median wall-clock time."""
from __future__ import annotations

import time
import weakref
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = ["peak_memory", "seconds_per_call"]


class _PeakMemory(TorchDispatchMode):
    """Counts the bytes of every tensor storage created while active and frees them again when
    the storage dies, keeping the peak."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self._seen: set[int] = set()

    def _free(self, key: int, nbytes: int) -> None:
        self.live -= nbytes
        self._seen.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                key = storage._cdata
                if key not in self._seen:
                    self._seen.add(key)
                    self.live += storage.nbytes()
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(storage, self._free, key, storage.nbytes())
        return out


def peak_memory(fn: Callable, *args, **kwargs) -> tuple[object, int]:
    """``(fn(*args, **kwargs), peak)``: ``peak`` is the largest number of bytes held at once by
    tensors created during the call (inputs and parameters excluded), counted op by op.  It
    is deterministic and works on every device; it does not count allocator slack."""
    meter = _PeakMemory()
    with meter:
        out = fn(*args, **kwargs)
    return out, meter.peak


def seconds_per_call(fn: Callable, *args, repeat: int = 3, **kwargs) -> float:
    """The median wall-clock time of ``repeat`` calls of ``fn(*args, **kwargs)`` after one
    warm-up call (synchronising CUDA when it is in use)."""
    def once():
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(*args, **kwargs)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter() - start

    once()
    return sorted(once() for _ in range(repeat))[repeat // 2]
