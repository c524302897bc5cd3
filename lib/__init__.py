"""The library behind the book *Structure-preserving deep learning*.

One module per idea of the talk (B. Owren, LMS-Bath 2020); the README's module map lists them
floor by floor.  A network (:class:`ODENet`, :mod:`models`) is a lift, ``K`` layers and a
classifier; each layer is a map of states (:mod:`layers`: one explicit Runge--Kutta or
partitioned step of a vector field of :mod:`fields` or :mod:`hamiltonian`, with the methods of
:mod:`tableaux` and :mod:`integrators`), reached through ``net.layer(k)`` by every gradient
(:mod:`gradients`: DTO, OTD, backsolve, checkpointing, reversible, torchdiffeq's adjoint, each
a strategy object), diagnostic (:mod:`spectra`, :mod:`one_sided`, :mod:`folding`,
:mod:`growth`, :mod:`lipschitz`, :mod:`bilinear`) and figure (:mod:`plotting`, which draws and
never trains).  :func:`train` trains with any strategy; :mod:`claims` checks what the prose
says; :mod:`runtime` sets up a notebook.
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
