"""Run the library tests on one thread: the networks are tiny, so more threads only add
synchronisation (and CI shares its cores with the notebook kernels)."""
import torch

torch.set_num_threads(1)
