"""Generation and inference on the procedural shapes: "graphics" renders an image from its factors, "vision as
inverse graphics" reads the factors back from the image (lecture 1).

Graphics is ``shapes.render(kind, size, x, y, intensity)``: exact and fast. Inference is learnt: a ``FactorReader``
is a small network trained by regression on (image, factors) pairs of the training split,

    minimise  CE(kind logits, kind) + Σ_f ((ŷ_f − y_f) / σ_f)²     over the continuous factors f,

with σ_f each factor's training spread, so that the four factors weigh alike. ``factor_errors`` reports, on held-out
images, the mean absolute error of each factor in its own units and the share of kinds read right.

    reader = load_reader()                       # shipped in assets/pretrained (python -m dgm_core.lecture.pretrain)
    kind, factors = reader.read(image[None])     # the factors it sees in one image
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from dgm_core.data import Dataset, load_dataset
from dgm_core.data.shapes import FACTOR_NAMES, KINDS, LEVELS, RESOLUTION
from dgm_core.inspect.latent_tools import factor_correlations, to_latent
from dgm_core.models.base import GenerativeModel, mlp

READER_FILE = Path(__file__).resolve().parents[2] / "assets" / "pretrained" / "factor-reader.safetensors"


class FactorReader(nn.Module):
    """Image (N, 1, R, R) → kind logits (N, 4) and the continuous factors (N, 4) in their own units."""

    def __init__(self, hidden: int = 256) -> None:
        super().__init__()
        self.net = mlp([RESOLUTION * RESOLUTION, hidden, hidden, len(KINDS) + len(FACTOR_NAMES)])
        self.register_buffer("factor_mean", torch.zeros(len(FACTOR_NAMES)))
        self.register_buffer("factor_std", torch.ones(len(FACTOR_NAMES)))

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        out = self.net(images.flatten(1) / (LEVELS - 1))
        kind_logits, standardised = out.split([len(KINDS), len(FACTOR_NAMES)], dim=1)
        return kind_logits, standardised * self.factor_std + self.factor_mean

    @torch.no_grad()
    def read(self, images: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Kind indices (N,) and each factor's values (N,), as the reader sees them in ``images``."""
        kind_logits, factors = self(images)
        return kind_logits.argmax(1), dict(zip(FACTOR_NAMES, factors.unbind(1)))


def _targets(data: Dataset, split: str) -> Tensor:
    return torch.stack([data.factors[split][name] for name in FACTOR_NAMES], dim=1).float()


def train_reader(steps: int = 3000, batch_size: int = 256, seed: int = 0) -> FactorReader:
    """A reader trained on the shapes' training split (Adam, cosine learning rate), the same for the same seed."""
    data = load_dataset("shapes")
    torch.manual_seed(seed)
    reader = FactorReader()
    targets = _targets(data, "train")
    reader.factor_mean.copy_(targets.mean(0))
    reader.factor_std.copy_(targets.std(0))
    optimizer = torch.optim.Adam(reader.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    kinds = data.labels["train"]
    for _ in range(steps):
        rows = torch.randint(len(data.train), (batch_size,))
        kind_logits, factors = reader(data.train[rows])
        residual = (factors - targets[rows]) / reader.factor_std
        loss = F.cross_entropy(kind_logits, kinds[rows]) + residual.pow(2).sum(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return reader.eval()


@dataclass(frozen=True)
class ReadingErrors:
    """How well a reader inverts the renderer on held-out images."""

    mean_absolute: dict[str, float]  # factor → mean |read − true|, in the factor's units (image widths, levels)
    kind_accuracy: float  # share of images whose kind is read right
    items: int


def factor_errors(reader: FactorReader, split: str = "test") -> ReadingErrors:
    data = load_dataset("shapes")
    kind, factors = reader.read(getattr(data, split))
    truth = data.factors[split]
    errors = {name: (factors[name] - truth[name]).abs().mean().item() for name in FACTOR_NAMES}
    accuracy = (kind == data.labels[split]).float().mean().item()
    return ReadingErrors(errors, accuracy, len(kind))


@torch.no_grad()
def latents_against_factors(model: GenerativeModel, split: str = "test") -> dict[str, tuple[int, float]]:
    """What an encoder learnt *without* the factors: for the kind and each factor, the latent dimension that
    follows it best on the ``split``'s shapes and how strongly (``latent_tools.factor_correlations``: |Spearman ρ|,
    or the correlation ratio η for the kind), 0 = unrelated, 1 = determined."""
    data = load_dataset("shapes")
    latents = to_latent(model, getattr(data, split))
    factors = {"kind": data.labels[split], **data.factors[split]}
    table = factor_correlations(latents, factors)  # (latent dims, factors)
    best = table.max(0)
    return {name: (int(best.indices[j]), float(best.values[j])) for j, name in enumerate(factors)}


def save_reader(reader: FactorReader, path: Path = READER_FILE) -> None:
    save_file({name: t.contiguous() for name, t in reader.state_dict().items()}, str(path))


def load_reader(path: Path = READER_FILE) -> FactorReader:
    """The shipped reader (safetensors: tensors only, never pickle); every tensor must match the network's."""
    reader = FactorReader()
    reader.load_state_dict(load_file(str(path)), strict=True)
    return reader.eval()
