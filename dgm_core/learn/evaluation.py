"""Honest numbers: held-out log-likelihoods in nats and bits/dim, baselines, and a two-sample test for every family.

bits/dim = NLL in nats / (D · ln 2). For images this is the discrete data's bits per pixel; for 2D points it is the
same density in base 2 per coordinate (nats per item are the primary number there).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

from dgm_core.data import Dataset, DataSpec
from dgm_core.learn.seeding import EVAL_SEED, RandomStream
from dgm_core.models.abilities import Field, ability
from dgm_core.models.base import GenerativeModel

SPLITS = ("train", "val", "test")
MAX_BOUNDS = 8  # extra bounds one evaluation may carry (a stored file claiming more is refused)


@dataclass(frozen=True)
class Scores:
    """One evaluation of a model's weights on held-out data.

    nll: per split ("train", "val", "test"), the mean negative log-likelihood (or its bound) in nats per item;
        empty for a model without a likelihood. "train" uses as many training items as "val" has, to show overfitting.
    bounds: other upper bounds on the test NLL that the model tracks (e.g. IWAE with k = 64 beside a VAE's ELBO),
        in nats per item, by display name.
    val_mmd: multi-scale MMD² between model samples and validation items (``mmd``); every family has one.
    dim: the data's dimension, to convert nats per item to bits per dimension (``bits``).
    """

    step: int
    elapsed_s: float
    dim: int
    val_mmd: float
    nll: Mapping[str, float] = field(default_factory=dict)
    bounds: Mapping[str, float] = field(default_factory=dict)

    @property
    def score(self) -> float:
        """What ranks weights on validation (lower is better): the validation NLL, or MMD² without a likelihood."""
        return self.nll.get("val", self.val_mmd)

    def bits(self, nats: float) -> float:
        """nats per item → bits per dimension."""
        return nats / (self.dim * math.log(2))

    def to_json(self) -> dict:
        return {
            "step": self.step,
            "elapsed_s": self.elapsed_s,
            "dim": self.dim,
            "val_mmd": self.val_mmd,
            "nll": dict(self.nll),
            "bounds": dict(self.bounds),
        }

    @classmethod
    def from_json(cls, data: object) -> Scores:
        """Scores from stored JSON, checked field by field: ValueError names the first thing wrong."""
        if not isinstance(data, dict) or set(data) != {"step", "elapsed_s", "dim", "val_mmd", "nll", "bounds"}:
            raise ValueError("an evaluation needs exactly step, elapsed_s, dim, val_mmd, nll and bounds")
        nll, bounds = data["nll"], data["bounds"]
        if not isinstance(nll, dict) or not set(nll) <= set(SPLITS):
            raise ValueError(f"an evaluation's nll must map some of {', '.join(SPLITS)} to numbers")
        if (
            not isinstance(bounds, dict)
            or len(bounds) > MAX_BOUNDS
            or not all(isinstance(name, str) and 0 < len(name) <= 60 for name in bounds)
        ):
            raise ValueError(f"an evaluation's bounds must map at most {MAX_BOUNDS} short names to numbers")
        numbers = [data["elapsed_s"], data["val_mmd"], *nll.values(), *bounds.values()]
        if not all(_finite(number) for number in numbers) or data["elapsed_s"] < 0:
            raise ValueError("an evaluation's scores must be finite numbers")
        for name in ("step", "dim"):
            if not isinstance(data[name], int) or isinstance(data[name], bool) or data[name] < (name == "dim"):
                raise ValueError(f"an evaluation's {name} must be a whole number ≥ {int(name == 'dim')}")
        return cls(
            data["step"],
            float(data["elapsed_s"]),
            data["dim"],
            float(data["val_mmd"]),
            {k: float(v) for k, v in nll.items()},
            {k: float(v) for k, v in bounds.items()},
        )


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@torch.no_grad()
def mean_log_prob(model: GenerativeModel, x: Tensor, batch_size: int = 4096) -> float:
    """Mean log p(x) (or the model's bound) over the items of x, in nats per item."""
    total = 0.0
    for chunk in x.split(batch_size):
        total += model.log_prob(chunk).double().sum().item()
    return total / len(x)


def bits_per_dim(nll_nats: float, spec: DataSpec) -> float:
    return nll_nats / (spec.dim * math.log(2))


BANDWIDTH_SCALES = tuple(4.0 / 2**i for i in range(7))  # 4, 2, 1, ½ … 1/16 × the median distance: shape to detail
# (halving from one to the next: ``_pooled_kernels`` relies on it)
MEDIAN_POINTS = 512  # the median distance is taken among at most this many pooled points (evenly strided)


@torch.no_grad()
def mmd(x: Tensor, y: Tensor, bandwidth: float | None = None) -> float:
    """Unbiased squared maximum mean discrepancy between the items of x and y (flattened).

    With a ``bandwidth`` h: one Gaussian kernel k(a, b) = exp(−|a − b|² / (2h²)). Without: the mean of the MMD² of
    Gaussian kernels at h = median pooled distance × each of ``BANDWIDTH_SCALES`` (a multi-scale kernel: the median
    alone is blind to detail finer than the data's overall spread, e.g. two moons against a Gaussian blob).

    Unbiased means E[MMD²] = 0 when x and y share one law, so a value can be slightly negative: read it as ≈ 0.
    """
    kernels = _pooled_kernels(x, y, bandwidth)
    in_x = (torch.arange(len(x) + len(y), device=x.device) < len(x))[None]
    return torch.stack([_mmd_of_splits(kernel, in_x) for kernel in kernels]).mean().item()


@torch.no_grad()
def mmd_test(x: Tensor, y: Tensor, n_permutations: int = 200, seed: int = 0) -> tuple[float, float]:
    """A permutation two-sample test of H₀: x and y come from one distribution. Returns (``mmd(x, y)``, p); seeded.

    The test statistic is the largest *standardised* MMD² over the bandwidths of ``mmd``: each bandwidth's MMD² is
    centred and scaled by its own mean and standard deviation over the relabellings, so that whichever scale sees a
    difference (the spread, or fine structure such as rings) decides. Under H₀ the labels "x" and "y" are
    exchangeable, so random relabellings of the pooled points, put through the very same statistic, sample its null
    distribution; p = (1 + #{permuted ≥ observed}) / (1 + P) is the chance, if H₀ held, of a discrepancy at least
    as large as the one seen. At 500 points a side it rejects a Gaussian with the data's own mean and covariance on
    all eight 2D sets, and rejects about 5% of real-against-real splits (``tests/test_evaluation.py``).
    """
    kernels = _pooled_kernels(x, y)
    size = len(x) + len(y)
    observed = torch.arange(size, device=x.device) < len(x)
    generator = torch.Generator().manual_seed(seed)
    permutations = torch.rand(n_permutations, size, generator=generator).argsort(1).to(x.device)
    splits = torch.cat([observed[None], permutations < len(x)])
    statistics = torch.stack([_mmd_of_splits(kernel, splits) for kernel in kernels])  # (scales, 1 + P)
    null = statistics[:, 1:]
    standardised = (statistics - null.mean(1, keepdim=True)) / null.std(1, keepdim=True).clamp_min(1e-30)
    largest = standardised.max(0).values
    p_value = (1 + (largest[1:] >= largest[0]).sum().item()) / (1 + n_permutations)
    return statistics[:, 0].mean().item(), p_value


def _pooled_kernels(x: Tensor, y: Tensor, bandwidth: float | None = None) -> list[Tensor]:
    """Gaussian kernel matrices (n + m, n + m) of the pooled points [x; y] (flattened, float64): one per bandwidth
    h = median distance × ``BANDWIDTH_SCALES``, or the one ``bandwidth`` given."""
    pooled = torch.cat([x.flatten(1), y.flatten(1)]).double()
    squared = torch.cdist(pooled, pooled).pow(2)
    if bandwidth is not None:
        return [torch.exp(-squared / (2 * bandwidth**2))]
    some = torch.arange(0, len(pooled), -(-len(pooled) // MEDIAN_POINTS), device=squared.device)
    among = squared[some][:, some]
    median = among[torch.triu(torch.ones_like(among, dtype=torch.bool), diagonal=1)].median().sqrt().clamp_min(1e-6)
    # each scale is half the one before, so its kernel is the one before to the 4th power: exp(−d²/(2(h/2)²)) =
    # exp(−d²/(2h²))⁴; two squarings instead of one more exp over (n + m)² values
    kernels = [torch.exp(squared * (-0.5 / (median.item() * BANDWIDTH_SCALES[0]) ** 2))]
    for _ in BANDWIDTH_SCALES[1:]:
        kernels.append(kernels[-1].square().square())
    return kernels


def _mmd_of_splits(kernel: Tensor, in_x: Tensor) -> Tensor:
    """Unbiased MMD² for each split of the pooled points into x and y, given as boolean rows in_x (P, n + m):

    mean_{i≠j} k(x_i, x_j) + mean_{i≠j} k(y_i, y_j) − 2 mean_{i,j} k(x_i, y_j), as quadratic forms aᵀ K₀ b of the
    membership vectors a = in_x, b = 1 − a and the kernel K₀ with its diagonal removed (it only drops the i = j terms).
    """
    off_diagonal = kernel.clone().fill_diagonal_(0)
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
    """log p (or the model's bound, drawn smoothly: ``display_log_prob``) on an n×n grid over
    (x_min, x_max, y_min, y_max) for 2D models: rows follow y, columns follow x."""
    return model.display_log_prob(_grid(bounds, n).to(model.device)).reshape(n, n).cpu()


def field_grid(model: GenerativeModel, bounds: tuple[float, float, float, float], n: int = 100) -> Tensor:
    """The model's field (``abilities.Field``: a GAN's discriminator, an EBM's −E) on the same n×n grid."""
    return ability(model, Field).field(_grid(bounds, n).to(model.device)).reshape(n, n).cpu()


def _grid(bounds: tuple[float, float, float, float], n: int) -> Tensor:
    """(n², 2) points of an n×n grid, row by row from y_min, each row from x_min."""
    x_min, x_max, y_min, y_max = bounds
    grid_y, grid_x = torch.meshgrid(torch.linspace(y_min, y_max, n), torch.linspace(x_min, x_max, n), indexing="ij")
    return torch.stack([grid_x.flatten(), grid_y.flatten()], 1)


@torch.no_grad()
def item_log_probs(model: GenerativeModel, x: Tensor, batch: int = 1000) -> Tensor:
    """log p(x) (or the model's bound) of each item, (N,) on the CPU, in eval mode. Random draws inside the model
    (dequantization noise, a VAE's z) are seeded with the trainer's evaluation seed, so a call is reproducible."""
    model.eval()
    device = model.device
    with RandomStream(EVAL_SEED, device):
        return torch.cat([model.log_prob(chunk.to(device)).cpu() for chunk in x.split(batch)])
