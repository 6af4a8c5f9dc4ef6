"""The two oldest neural autoregressive models, siblings of MADE: FVSBN and NADE.

FVSBN, the fully visible sigmoid belief net (Neal, 1992; Frey, 1998): every conditional is a generalised linear model
of the earlier dimensions, logits_d = b_d + Σ_{j<d} W_dj x_j (a softmax over the L levels of a pixel; for real
coordinates the mean of one Gaussian of fixed scale). O(D²) weights, no hidden units.

NADE (Larochelle & Murray, 2011) puts one hidden layer in each conditional and shares its input weights W across
them: h_d = σ(c + W_{:,<d} x_<d), logits_d = b_d + V_d h_d. Since a_d = c + Σ_{j<d} W_{:,j} x_j grows by one column
per dimension, all D hidden layers cost one cumulative sum, O(DH) instead of O(D²H). For real coordinates the
conditionals are mixtures of K Gaussians, as in RNADE (Uria et al., 2013).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgm_core.data import DataSpec
from dgm_core.models.autoregressive import AutoregressiveModel, MaskedLinear


class FVSBN(AutoregressiveModel):
    """Linear conditionals: a strictly lower-triangular weight matrix per parameter of the conditional. For points
    only the Gaussian's mean is linear in the earlier coordinates, its scale a constant per coordinate, so the joint
    is exactly a full-covariance Gaussian."""

    def __init__(self, spec: DataSpec) -> None:
        super().__init__(spec, components=1)
        earlier = torch.ones(spec.dim, spec.dim).tril(-1)  # earlier[d, j] ⇔ j < d
        none = torch.zeros_like(earlier)
        blocks = [earlier] * self.params_per_dim if self.discrete else [none, earlier, none]  # logit, mean, log σ
        self.linear = MaskedLinear(torch.cat(blocks))

    def _params(self, u: Tensor) -> Tensor:
        return self.linear(self._scaled(u)).reshape(len(u), self.params_per_dim, self.spec.dim)

    def _params_of(self, u: Tensor, d: int) -> Tensor:
        """Conditional d alone, as in the sampler: the P rows of the weights that belong to it, O(PD) work."""
        rows = torch.arange(self.params_per_dim, device=u.device) * self.spec.dim + d
        weight = self.linear.weight[rows] * self.linear.mask[rows]
        return self._scaled(u) @ weight.T + self.linear.bias[rows]


class NADE(AutoregressiveModel):
    """One sigmoid hidden layer of width H per conditional, its input weights shared (W: D × H) and its activations
    accumulated along the order."""

    def __init__(self, spec: DataSpec, hidden: int = 128, components: int = 10) -> None:
        super().__init__(spec, components)
        dim, params = spec.dim, self.params_per_dim
        self.input_weight = nn.Parameter(torch.randn(hidden, dim) / dim**0.5)  # W; column j: what x_j adds
        self.hidden_bias = nn.Parameter(torch.zeros(hidden))
        self.output_weight = nn.Parameter(torch.randn(dim, hidden, params) / hidden**0.5)  # V_d for each d
        self.output_bias = nn.Parameter(torch.zeros(params, dim))

    def hidden_states(self, u: Tensor) -> Tensor:
        """(N, H, D): h_d = σ(c + Σ_{j<d} x_j W_{:,j}), an exclusive cumulative sum (exact: x_d never enters h_d)."""
        contributions = self._scaled(u)[:, None, :] * self.input_weight  # (N, H, D): column j is x_j W_{:,j}
        before = F.pad(contributions.cumsum(-1)[..., :-1], (1, 0))
        return torch.sigmoid(self.hidden_bias[:, None] + before)

    def _params(self, u: Tensor) -> Tensor:
        hidden = self.hidden_states(u).permute(2, 0, 1).contiguous()  # (D, N, H)
        return torch.bmm(hidden, self.output_weight).permute(1, 2, 0) + self.output_bias  # logits_d = h_d V_d + b_d

    def _params_of(self, u: Tensor, d: int) -> Tensor:
        """Conditional d alone, as in the sampler: one hidden layer h_d, O(DH) work instead of all D of them."""
        hidden = torch.sigmoid(self.hidden_bias + self._scaled(u[:, :d]) @ self.input_weight[:, :d].T)  # (N, H)
        return hidden @ self.output_weight[d] + self.output_bias[:, d]
