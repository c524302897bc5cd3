"""Reproducible set-up shared by every notebook and benchmark."""
from __future__ import annotations

import inspect
import os
import random

import torch

from .validate import positive_int

__all__ = ["setup_notebook", "show_source"]


def setup_notebook(seed: int = 0, threads: int | None = None) -> torch.device:
    """Seed every generator, make PyTorch deterministic, fix the thread count, apply the book's
    figure style (:mod:`lib.plotting.style`), and return the device to compute on (``cuda`` when
    present, else ``cpu``).

    ``threads`` defaults to the environment variable ``OMP_NUM_THREADS``, else 1 (the book's
    networks are tiny, so more threads only add synchronisation).  Determinism
    (``torch.use_deterministic_algorithms``) makes a re-execution on the same machine repeat
    every bit; across machines the chapters rely only on what the claims check
    (``CONTRIBUTING.md``).
    """
    if threads is None:
        threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    positive_int(threads, "threads")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)
    from .plotting import style  # here, not at the top: ``import lib`` loads no matplotlib

    style.use()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


COLUMN_CHARACTERS = 88
"""The longest code line that fits the book's text column."""


def show_source(obj):
    """The source code of a function or class of ``lib``, syntax-highlighted in a notebook
    (``IPython.display.Code``; plain text where IPython is absent), so that a chapter shows the
    algorithm it runs and cannot drift from it.  Refuses code with lines longer than
    :data:`COLUMN_CHARACTERS`, which would scroll sideways on the page."""
    if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismethod(obj)):
        raise TypeError(f"obj must be a function, method or class, got {type(obj).__name__}")
    source = inspect.getsource(obj)
    wide = [n for n, line in enumerate(source.splitlines(), 1) if len(line) > COLUMN_CHARACTERS]
    if wide:
        raise ValueError(f"{obj.__qualname__} has lines longer than {COLUMN_CHARACTERS} "
                         f"characters (lines {wide} of its source); wrap them to show it")
    try:
        from IPython.display import Code
    except ImportError:
        return source
    return Code(source, language="python")
