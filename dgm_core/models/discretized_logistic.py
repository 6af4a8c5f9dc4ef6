"""The discretized logistic (Salimans et al., 2017): a distribution over a pixel's L grey levels from two numbers.

Level k sits at c_k = 2k / (L − 1) − 1 on [−1, 1], in a bin of half-width h = 1 / (L − 1). A logistic with mean μ
and scale s, F(y) = σ((y − μ) / s), gives each bin its mass, the outer bins taking the tails:

    P(0) = F(c_0 + h),   P(k) = F(c_k + h) − F(c_k − h),   P(L − 1) = 1 − F(c_{L−1} − h),

which sum to 1 exactly, so log P(x) is an honest discrete log-likelihood. A categorical needs L numbers per pixel;
this needs 2, and says that neighbouring levels are alike.

References:
    Salimans, Karpathy, Chen & Kingma. PixelCNN++: improving the PixelCNN with discretized logistic mixture
    likelihood and other modifications. ICLR 2017.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.functional import logsigmoid

LOG_SCALE_RANGE = (-7.0, 3.0)


def level_log_probs(mean: Tensor, log_scale: Tensor, levels: int, x: Tensor | None = None) -> Tensor:
    """log P(level) of each pixel: of the levels ``x`` (N, D) given, as (N, D); else of every level, as (N, L, D).

    Arguments:
        mean: μ of each pixel on the [−1, 1] scale, (N, D).
        log_scale: log s of each pixel, (N, D) (clamped to ``LOG_SCALE_RANGE``).
        levels: L ≥ 2.
        x: levels 0..L−1 as floats, (N, D), or None.
    """
    half_bin = 1.0 / (levels - 1)
    if x is None:
        centres = torch.linspace(-1.0, 1.0, levels, device=mean.device, dtype=mean.dtype)[None, :, None]
        mean, log_scale = mean[:, None], log_scale[:, None]
    else:
        centres = x * (2.0 * half_bin) - 1.0
    inverse_scale = torch.exp(-log_scale.clamp(*LOG_SCALE_RANGE))
    upper = (centres + half_bin - mean) * inverse_scale
    lower = (centres - half_bin - mean) * inverse_scale
    log_below_upper, log_below_lower = logsigmoid(upper), logsigmoid(lower)
    # log(F(u) − F(l)) = log F(u) + log(1 − F(l) / F(u)); F(l) < F(u) kept strict (by 1e-30, no mass to speak of) so
    # that a bin the logistic gives no mass in float32 has a finite log and gradient
    inner = log_below_upper + torch.log(-torch.expm1((log_below_lower - log_below_upper).clamp(max=-1e-30)))
    first, last = centres < -1.0 + half_bin / 2, centres > 1.0 - half_bin / 2
    return torch.where(first, log_below_upper, torch.where(last, logsigmoid(-lower), inner))
