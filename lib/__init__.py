"""The library behind the book *Structure-preserving deep learning*.

One module per idea of the talk (B. Owren, LMS-Bath 2020):
``data`` (toy problems), ``tableaux`` (Runge--Kutta methods as validated data),
``integrators`` (explicit RK steps and solves), ``models`` (vector fields and the ODE network),
``train`` (full-batch training), ``plotting`` (the book's figures), ``runtime`` (reproducibility).
"""
from .data import make_dataset
from .models import ODENet
from .runtime import setup_notebook
from .tableaux import METHODS, ButcherTableau, get_tableau
from .train import History, train

__all__ = ["make_dataset", "ODENet", "setup_notebook", "METHODS", "ButcherTableau",
           "get_tableau", "History", "train"]
