"""The notebooks' set-up: seeded, deterministic, fixed threads, the right device."""
import os

import torch

import lib


def test_setup_notebook_seeds_and_makes_torch_deterministic():
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        device = lib.setup_notebook(seed=7, threads=1)
        first = torch.rand(3)
        lib.setup_notebook(seed=7, threads=1)
        assert torch.equal(torch.rand(3), first)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.get_num_threads() == 1
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] in (":4096:8", ":16:8")
        assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
