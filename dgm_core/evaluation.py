"""Honest numbers: held-out log-likelihoods in nats and bits/dim, baselines, and a two-sample test for every family.

bits/dim = NLL in nats / (D · ln 2). For images this is the discrete data's bits per pixel; for 2D points it is the
same density in base 2 per coordinate (nats per item are the primary number there).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dgm_core.data import Dataset, DataSpec
from dgm_core.models.base import GenerativeModel


@torch.no_grad()
def mean_log_prob(model: GenerativeModel, x: Tensor, batch_size: int = 4096) -> float:
    """Mean log p(x) (or the model's bound) over the items of x, in nats per item."""
    total = 0.0
    for chunk in x.split(batch_size):
        total += model.log_prob(chunk).double().sum().item()
    return total / len(x)


def bits_per_dim(nll_nats: float, spec: DataSpec) -> float:
    return nll_nats / (spec.dim * math.log(2))


@torch.no_grad()
def mmd(x: Tensor, y: Tensor, bandwidth: float | None = None) -> float:
    """Unbiased squared maximum mean discrepancy with a Gaussian kernel k(a, b) = exp(−|a − b|² / (2h²)).

    The bandwidth h defaults to the median distance between the pooled points (the median heuristic).
    """
    in_x = torch.arange(len(x) + len(y), device=x.device) < len(x)
    return _mmd_of_splits(_pooled_kernel(x, y, bandwidth), in_x[None]).item()


@torch.no_grad()
def mmd_test(x: Tensor, y: Tensor, n_permutations: int = 200, seed: int = 0) -> tuple[float, float]:
    """A permutation two-sample test of H₀: x and y come from one distribution, with the statistic of ``mmd``.

    Under H₀ the labels "x" and "y" are exchangeable, so the statistic of random relabellings of the pooled points
    (same kernel, same bandwidth) samples its null distribution. p = (1 + #{permuted ≥ observed}) / (1 + P): the
    chance, if H₀ held, of a discrepancy at least as large as the one seen. Returns (MMD², p-value); seeded.
    """
    kernel = _pooled_kernel(x, y)
    size = len(kernel)
    observed = torch.arange(size, device=kernel.device) < len(x)
    generator = torch.Generator().manual_seed(seed)
    permutations = torch.rand(n_permutations, size, generator=generator).argsort(1).to(kernel.device)
    statistics = _mmd_of_splits(kernel, torch.cat([observed[None], permutations < len(x)]))
    p_value = (1 + (statistics[1:] >= statistics[0]).sum().item()) / (1 + n_permutations)
    return statistics[0].item(), p_value


def _pooled_kernel(x: Tensor, y: Tensor, bandwidth: float | None = None) -> Tensor:
    """The Gaussian kernel matrix of the pooled points [x; y] (flattened, float64), median-heuristic bandwidth."""
    pooled = torch.cat([x.flatten(1), y.flatten(1)]).double()
    squared = torch.cdist(pooled, pooled).pow(2)
    if bandwidth is None:
        off_diagonal = squared[~torch.eye(len(pooled), dtype=torch.bool, device=squared.device)]
        bandwidth = off_diagonal.median().sqrt().clamp_min(1e-6).item()
    return torch.exp(-squared / (2 * bandwidth**2))


def _mmd_of_splits(kernel: Tensor, in_x: Tensor) -> Tensor:
    """Unbiased MMD² for each split of the pooled points into x and y, given as boolean rows in_x (P, n + m):

    mean_{i≠j} k(x_i, x_j) + mean_{i≠j} k(y_i, y_j) − 2 mean_{i,j} k(x_i, y_j), as quadratic forms aᵀ K₀ b of the
    membership vectors a = in_x, b = 1 − a and the kernel K₀ with its diagonal removed (it only drops the i = j terms).
    """
    off_diagonal = kernel - torch.diag(kernel.diagonal())
    a = in_x.to(kernel.dtype)
    b = 1 - a
    n, m = a.sum(1), b.sum(1)
    a_kernel = a @ off_diagonal
    kxx = (a_kernel * a).sum(1) / (n * (n - 1))
    kyy = ((b @ off_diagonal) * b).sum(1) / (m * (m - 1))
    kxy = (a_kernel * b).sum(1) / (n * m)
    return kxx + kyy - 2 * kxy


def baseline_nll(data: Dataset) -> tuple[str, float]:
    """The simplest honest model's test NLL in nats per item: a full-covariance Gaussian for points,
    independent per-pixel categoricals (add-one smoothing) for images."""
    train, test = data.train.flatten(1).double(), data.test.flatten(1).double()
    if data.spec.levels is None:
        mean = train.mean(0)
        covariance = torch.cov(train.T)
        gaussian = torch.distributions.MultivariateNormal(mean, covariance)
        return "single Gaussian", -gaussian.log_prob(test).mean().item()
    levels = data.spec.levels
    counts = torch.nn.functional.one_hot(train.long(), levels).sum(0).double() + 1.0  # (D, L)
    log_probs = (counts / counts.sum(-1, keepdim=True)).log()
    picked = log_probs.gather(1, test.long().T).T  # (N_test, D)
    return "independent pixels", -picked.sum(1).mean().item()


@torch.no_grad()
def log_density_grid(model: GenerativeModel, bounds: tuple[float, float, float, float], n: int = 100) -> Tensor:
    """log p on an n×n grid over (x_min, x_max, y_min, y_max) for 2D models: rows follow y, columns follow x."""
    x_min, x_max, y_min, y_max = bounds
    xs = torch.linspace(x_min, x_max, n)
    ys = torch.linspace(y_min, y_max, n)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([grid_x.flatten(), grid_y.flatten()], 1).to(model.device)
    return model.log_prob(points).reshape(n, n).cpu()


@torch.no_grad()
def item_log_probs(model: GenerativeModel, x: Tensor, batch: int = 1000) -> Tensor:
    """log p(x) (or the model's bound) of each item, (N,) on the CPU, in eval mode. Random draws inside the model
    (dequantization noise, a VAE's z) are seeded with the trainer's evaluation seed, so a call is reproducible."""
    from dgm_core.training import EVAL_SEED  # training imports this module

    model.eval()
    device = model.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(EVAL_SEED)
        return torch.cat([model.log_prob(chunk.to(device)).cpu() for chunk in x.split(batch)])
