"""An autoregressive transformer over pixels in raster order (as in Image GPT, Chen et al., 2020, in miniature).

The image is a sequence of D tokens, the levels 0..L−1. The input at position d is the token x_{d−1} (a start token
at d = 0) plus a learned embedding of the position d; blocks of causal self-attention (position d attends to
positions ≤ d only) and MLPs, each with a residual connection and a LayerNorm before it, turn it into the logits of
p(x_d | x_<d). Every conditional is trained in one pass; sampling takes one pass per pixel, each for one new position
that attends to keys and values cached from the earlier ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgm_core.data import DataSpec
from dgm_core.models.autoregressive import AutoregressiveModel


class CausalSelfAttention(nn.Module):
    """softmax(Q Kᵀ / √d_head + M) V per head, with M = −∞ above the diagonal (no position sees a later one)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.project = nn.Linear(width, width)

    def forward(self, x: Tensor, cache: list[Tensor] | None = None) -> Tensor:
        """x (N, T, width). With a ``cache`` [keys, values] of the positions before, x holds the next positions only:
        their keys and values are appended to it and they attend to everything cached (used when sampling)."""
        n, length, width = x.shape
        q, k, v = self.qkv(x).reshape(n, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        if cache is not None:
            if cache:
                k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
            cache[:] = [k, v]
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=length > 1)  # (N, heads, T, d_head)
        return self.project(attended.transpose(1, 2).reshape(n, length, width))


class Block(nn.Module):
    """x + attention(LN(x)), then x + MLP(LN(x)) (pre-norm, as in GPT-2)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm_attention = nn.LayerNorm(width)
        self.attention = CausalSelfAttention(width, heads)
        self.norm_mlp = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: Tensor, cache: list[Tensor] | None = None) -> Tensor:
        x = x + self.attention(self.norm_attention(x), cache)
        return x + self.mlp(self.norm_mlp(x))


class Transformer(AutoregressiveModel):
    """``layers`` blocks of width ``hidden`` with as many heads, up to ``heads``, as divide the width."""

    def __init__(self, spec: DataSpec, hidden: int = 64, layers: int = 2, heads: int = 4) -> None:
        if spec.levels is None:
            raise ValueError("This transformer models images of discrete levels.")
        super().__init__(spec)
        self.start_token = spec.levels
        self.token_embedding = nn.Embedding(spec.levels + 1, hidden)
        self.position_embedding = nn.Parameter(0.02 * torch.randn(spec.dim, hidden))
        self.blocks = nn.ModuleList(Block(hidden, math.gcd(hidden, heads)) for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, spec.levels)

    def embed(self, u: Tensor) -> Tensor:
        """(N, T, width) inputs for a sequence u (N, T): position d holds token u_{d−1} (the start token at 0)."""
        start = torch.full((len(u), 1), self.start_token, dtype=torch.long, device=u.device)
        tokens = torch.cat([start, u[:, :-1].long()], 1)
        return self.token_embedding(tokens) + self.position_embedding[: u.shape[1]]

    def network(self, inputs: Tensor, caches: list[list[Tensor]] | None = None) -> Tensor:
        """(N, T, L) logits; position d depends on inputs at positions ≤ d only (and on the cached ones before)."""
        x = inputs
        for i, block in enumerate(self.blocks):
            x = block(x, None if caches is None else caches[i])
        return self.head(self.norm(x))

    def _params(self, u: Tensor) -> Tensor:
        return self.network(self.embed(u)).transpose(1, 2)

    def _conditionals(self, u: Tensor, free: Tensor) -> Iterator[tuple[int, Tensor]]:
        """One position per pass, each attending to the keys and values cached from the positions before: D passes
        of one token rather than of the whole sequence."""
        caches: list[list[Tensor]] = [[] for _ in self.blocks]
        for d in range(self.spec.dim):
            token_input = self.embed(u[:, : d + 1])[:, -1:]  # token x_{d-1} at position d
            yield d, self.network(token_input, caches)[:, -1]
