"""Reproducible set-up shared by every notebook and benchmark."""
from __future__ import annotations

import os
import random

import torch


def setup_notebook(seed: int = 0, threads: int = 1) -> torch.device:
    """Seed every generator, make PyTorch deterministic, fix the thread count, and return the
    device to compute on (``cuda`` when present, else ``cpu``).

    Determinism (``torch.use_deterministic_algorithms``) is what lets nbval compare the printed
    numbers of a re-executed notebook with the committed ones.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
