"""The book's example problems and networks, built in one place through the fields' hooks
(:meth:`~lib.fields.VectorField.set_affine`), never by parameter name:

- :func:`smooth_network`: layers sampling one smooth ``theta(t)`` (convergence in ``h``,
  chapters 2, 3 and the appendix);
- :func:`markus_yamabe`, :func:`markus_yamabe_network`: eigenvalues in the left half-plane and
  growth nonetheless (chapters 4 and 6);
- :func:`constant_network`: ``z' = J z`` with one matrix in every layer (chapter 6);
- :func:`gradient_layer`: one Euler step of a gradient field at a given ``h ||A||^2``
  (chapter 8);
- :func:`parametric_oscillator`: Mathieu's equation as a second-order field (chapter 5).
"""
from __future__ import annotations

import math

import torch

from .fields import AffineParameters
from .hamiltonian import SecondOrderField
from .models import ODENet
from .validate import non_negative, positive_int

__all__ = ["smooth_network", "markus_yamabe", "markus_yamabe_network", "constant_network",
           "gradient_layer", "parametric_oscillator"]


def smooth_network(width: int = 4, depth: int = 16, T: float = 1.0, method="rk4",
                   activation: str = "tanh", contraction=0.0, seed: int = 0,
                   dtype: torch.dtype = torch.float64, device=None, field="resnet") -> ODENet:
    """An :class:`ODENet` whose layers sample one continuous ``theta(t)``:

        A(t) = (1 - t/T) A_a + (t/T) A_b - C,   b(t) = (1 - t/T) b_a + (t/T) b_b,

    at ``t_k = k h``, with ``(A_a, b_a)``, ``(A_b, b_b)`` two random layers drawn from ``seed``
    and the classifier drawn with them.
    Networks of different depths are then discretisations of the same continuous problem,
    which is what convergence in ``h`` needs.  ``C = contraction I`` for a number, and
    ``C = diag(contraction)`` for a sequence of ``width`` rates.  For ``contraction > 0`` the
    field is contractive where ``sigma' ~ 1`` (the identity activation: everywhere once
    ``contraction`` exceeds the largest eigenvalue of the symmetric part of ``A``); rates of
    both signs, ``(c, -c, ...)``, make a saddle that contracts some directions and expands
    others.  ``field`` is passed to :class:`ODENet`
    (e.g. :class:`~lib.hamiltonian.SecondOrderField` with ``method="stormer_verlet"``); every
    stacked parameter is interpolated the same way."""
    net = ODENet(width=width, depth=depth, T=T, method=method, activation=activation,
                 field=field, seed=seed)
    reference = ODENet(width=width, depth=2, activation=activation, field=field, seed=seed)
    rates = _contraction_rates(contraction, width)
    if bool(rates.ne(0).any()) and not isinstance(net.field, AffineParameters):
        raise ValueError(f"contraction needs a field with a free matrix A^k (AffineParameters); "
                         f"{type(net.field).__name__} has {list(net.field.stacks())}")
    s = torch.arange(depth, dtype=torch.float64) * net.h / net.T
    with torch.no_grad():
        for theta, ends in zip(net.field.stacks().values(), reference.field.stacks().values()):
            ends = ends.double()
            shape = (depth,) + (1,) * (ends.dim() - 1)
            theta.copy_((1 - s.view(shape)) * ends[0] + s.view(shape) * ends[1])
        for param, value in zip(net.classifier.parameters(), reference.classifier.parameters()):
            param.copy_(value)
    if bool(rates.ne(0).any()):
        net.field.set_affine(net.field.linear_parts() - torch.diag(rates))
    return net.to(device=device, dtype=dtype)


def _contraction_rates(contraction, width: int) -> torch.Tensor:
    """The diagonal of ``C`` in :func:`smooth_network`: ``width`` copies of a number, or a
    sequence of ``width`` finite rates."""
    if isinstance(contraction, bool):
        raise TypeError("contraction must be a number or a sequence of numbers, "
                        f"got {contraction!r}")
    if isinstance(contraction, (int, float)):
        contraction = [float(contraction)] * width
    try:
        rates = torch.tensor([float(c) for c in contraction], dtype=torch.float64)
    except (TypeError, ValueError):
        raise TypeError("contraction must be a number or a sequence of numbers, "
                        f"got {contraction!r}") from None
    if rates.numel() != width or not bool(rates.isfinite().all()):
        raise ValueError(f"contraction must be one finite rate or {width} finite rates (one per "
                         f"coordinate), got {list(contraction)!r}")
    return rates


def markus_yamabe(t: torch.Tensor) -> torch.Tensor:
    """The matrix of Markus & Yamabe (1960), shape ``[..., 2, 2]`` for times ``t`` ``[...]``:

        A(t) = [[-1 + 3/2 cos^2 t,  1 - 3/2 cos t sin t],
                [-1 - 3/2 sin t cos t,  -1 + 3/2 sin^2 t]].

    For every ``t`` its eigenvalues are ``(-1 +- i sqrt 7) / 4`` (real part ``-1/4``), yet
    ``z' = A(t) z`` has the solution ``e^(t/2) (-cos t, sin t)``: the logarithmic norm is
    ``mu_2(A(t)) = 1/2`` (the symmetric part is ``-I + 3/2 v v^T``, ``v = (cos t, -sin t)``), so
    ``nu = 1/2`` exactly, and the growth ``e^(t/2)`` attains the bound ``e^(nu t)``."""
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        raise TypeError(f"t must be a floating-point torch.Tensor, got {type(t).__name__}")
    c, s = torch.cos(t), torch.sin(t)
    rows = [torch.stack([-1 + 1.5 * c * c, 1 - 1.5 * c * s], -1),
            torch.stack([-1 - 1.5 * s * c, -1 + 1.5 * s * s], -1)]
    return torch.stack(rows, -2)


def markus_yamabe_network(T: float, depth: int, method="rk4") -> ODENet:
    """The linear network ``z' = A(t) z`` of :func:`markus_yamabe` on ``[0, T]``: a width-2
    :class:`~lib.models.ODENet` with the identity ResNet field whose layer ``k`` holds
    ``A^k = A(t_k + h/2)`` (the midpoint of its step) and ``b^k = 0``; float64."""
    net = ODENet(width=2, depth=depth, T=T, method=method, activation="identity",
                 field="resnet").double()
    midpoints = (torch.arange(depth, dtype=torch.float64) + 0.5) * net.h
    net.field.set_affine(markus_yamabe(midpoints), torch.zeros(2))
    return net


def constant_network(J: torch.Tensor, T: float, depth: int, method="euler") -> ODENet:
    """The linear network ``z' = J z`` on ``[0, T]`` with the same matrix ``J`` ``[d, d]`` in
    every layer: an :class:`~lib.models.ODENet` of width ``d`` with the identity activation,
    ``A^k = J`` and ``b^k = 0``, in the dtype of ``J``.  Its Jacobian along every trajectory is
    ``J``, so the eigenvalues predict ``e^{T alpha(J)}``; with Euler steps its largest growth
    is ``|(I + h J)^K|_2``, which tends to the flow's ``|e^{TJ}|_2`` as ``h -> 0``."""
    if not isinstance(J, torch.Tensor) or J.dim() != 2 or J.shape[0] != J.shape[1] \
            or not J.is_floating_point():
        raise ValueError(f"J must be a floating-point square matrix [d, d], got {J!r}")
    net = ODENet(width=J.shape[0], depth=depth, T=T, method=method, activation="identity",
                 field="resnet").to(dtype=J.dtype, device=J.device)
    net.field.set_affine(J, torch.zeros(J.shape[0]))
    return net


def gradient_layer(h_norm2: float, width: int = 3, activation: str = "tanh",
                   rank: int | None = None, generator: torch.Generator | None = None,
                   dtype: torch.dtype = torch.float64, device=None) -> ODENet:
    """One explicit Euler step (``h = 1``, ``b = 0``) of the gradient field whose random ``A``
    (of rank ``rank``; full rank by default) is scaled to ``h ||A||_2^2 = h_norm2`` exactly:
    the layer of the non-expansive theorem at, below or past its limit ``h ||A||_2^2 = 2``.
    With ``activation="identity"`` and ``rank < width`` its bound ``max(1, h_norm2 - 1)`` is
    attained."""
    non_negative(h_norm2, "h_norm2")
    positive_int(width, "width")
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int)
                             or not 1 <= rank <= width):
        raise ValueError(f"rank must be an int in 1..{width} or None, got {rank!r}")
    net = ODENet(width=width, depth=1, field="gradient", activation=activation)
    A = torch.randn(width, width, generator=generator, dtype=dtype)
    if rank is not None:
        U, S, Vh = torch.linalg.svd(A)
        A = U[:, :rank] @ torch.diag(S[:rank]) @ Vh[:rank]
    A = A * math.sqrt(h_norm2) / torch.linalg.matrix_norm(A, ord=2)
    net = net.to(device=device, dtype=dtype)
    net.field.set_affine(A, torch.zeros(width))
    return net


def parametric_oscillator(T: float, layers: int = 201, strength: float = 0.5) -> SecondOrderField:
    """A non-autonomous example with resonance: the second-order field of width 1 with
    ``sigma = id``, ``A^k = a(t_k)``, ``b^k = 0`` at ``t_k = k T / (layers - 1)``,
    ``a(t)^2 = 1 + strength cos 2t``, so that with :func:`theta_at` it is
    ``z'' = -a(t)^2 z`` (Mathieu's equation, sampled and interpolated linearly in ``a``), whose
    energy ``H = p^2/2 + a(t)^2 z^2/2`` grows exponentially (parametric resonance)."""
    if non_negative(strength, "strength") >= 1:
        raise ValueError(f"strength must be a number in [0, 1), got {strength!r}")
    field = SecondOrderField(1, layers, "identity").double()
    t = torch.linspace(0, T, layers, dtype=torch.float64)
    field.set_affine(torch.sqrt(1 + strength * torch.cos(2 * t)).view(-1, 1, 1), torch.zeros(1))
    return field
