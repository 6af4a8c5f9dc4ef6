"""Normalizing flows: an invertible map f from data x to a Gaussian z, with the exact change of variables

    log p(x) = log N(f(x); 0, I) + log |det ∂f/∂x|.

``base`` holds what they share (the ``Bijection`` layer protocol and ``FlowModel``); each other module is one idea:
coupling layers (NICE, RealNVP), masked autoregressive layers (MAF), learned linear mixing (Glow) and
rational-quadratic spline couplings (neural spline flow).
"""

from dgm_core.models.flows.autoregressive import MAF, MaskedAffineAutoregressive
from dgm_core.models.flows.base import Bijection, FlowModel, Reverse
from dgm_core.models.flows.couplings import (
    NICE,
    AdditiveCoupling,
    AffineCoupling,
    DiagonalScale,
    RealNVP,
    alternating_masks,
)
from dgm_core.models.flows.glow import ActNorm, Glow, InvertibleLinear
from dgm_core.models.flows.splines import (
    Knots,
    NeuralSplineFlow,
    RationalQuadraticCoupling,
    rational_quadratic_spline,
    rational_quadratic_spline_inverse,
)

__all__ = [
    "MAF",
    "NICE",
    "ActNorm",
    "AdditiveCoupling",
    "AffineCoupling",
    "Bijection",
    "DiagonalScale",
    "FlowModel",
    "Glow",
    "InvertibleLinear",
    "Knots",
    "MaskedAffineAutoregressive",
    "NeuralSplineFlow",
    "RationalQuadraticCoupling",
    "RealNVP",
    "Reverse",
    "alternating_masks",
    "rational_quadratic_spline",
    "rational_quadratic_spline_inverse",
]
