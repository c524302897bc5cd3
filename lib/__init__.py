"""The library behind the book *Structure-preserving deep learning*.

One module per idea of the talk (B. Owren, LMS-Bath 2020):
``data`` (toy problems), ``tableaux`` (Runge--Kutta methods and partitioned pairs such as
Störmer--Verlet as validated data, symplectic partners), ``integrators`` (explicit RK and
partitioned steps and solves, for a tensor or a tuple state), ``activations`` (sigma and its
antiderivative gamma), ``fields`` (vector fields f(z; theta) with per-layer parameters),
``hamiltonian`` (Hamiltonian fields H = T(p) + V(z), energy, symplecticity, the extended phase
space), ``models`` (the ODE network, with members for several seeds; Hamiltonian networks with
state (z, p) and their exact inverse), ``train`` (full-batch training), ``adjoint``
(gradients: DTO, OTD, backsolve, checkpointing, reversible), ``stability`` (eigenvalues,
logarithmic norms, one-sided Lipschitz constants), ``growth`` (the largest growth of
perturbations, the 2-norm of the end-to-end Jacobian, beside the spectra's predictions),
``deep_limit`` (refinement, convergence orders, the deep limit's objective), ``experiments``
(training outcomes over several seeds), ``optim`` (optimisers as steps of discretised flows),
``msa`` (training by the maximum principle), ``claims`` (the checks behind
the prose), ``plotting`` (the book's figures, one module per kind), ``runtime``
(reproducibility).  Chapter 8 adds the digits to ``data``, ``lipschitz`` (Lipschitz bounds
of Euler networks, the non-expansive step constraint) and ``robustness`` (attacks,
certificates, the digit experiments).
"""
__version__ = "0.2.0"
"""The version of the library and of the book; every chapter's set-up cell installs this one."""

from .data import make_dataset
from .models import ODENet
from .runtime import setup_notebook
from .tableaux import METHODS, ButcherTableau, get_tableau
from .training import History, train

__all__ = ["make_dataset", "ODENet", "setup_notebook", "METHODS", "ButcherTableau",
           "get_tableau", "History", "train"]
