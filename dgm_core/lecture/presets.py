"""Lecture presets: one small, already-trained run per topic of a deep-generative-models course, shipped in
``assets/pretrained/`` so that a demo opens at once instead of after a minute of training in front of the room.

    preset = PRESETS["latent-walk"]
    run = open_preset(preset)        # the shipped weights, loaded and scored again (never trusted from the file)
    fresh = Run(preset.spec)         # the same settings from scratch: the class watches it learn

Every preset is a model's default settings on one data set (``RunSpec.defaults``), so "train it live" is exactly what
the Train tab would do. ``python -m dgm_core.lecture.pretrain`` trains them all and writes the files and
``manifest.json`` (the test score each run had when it was made); a test loads every file and checks that it still
scores so.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from dgm_core.learn.evaluation import Scores
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec

PRETRAINED = Path(__file__).resolve().parents[2] / "assets" / "pretrained"
MANIFEST = PRETRAINED / "manifest.json"

# the kind of figure that makes the preset's point: the Train, Likelihood or Latent tab's, or one of lecture 1's own
View = Literal["samples", "likelihood", "latent", "inference", "classifiers", "conditional"]


@dataclass(frozen=True)
class Preset:
    """A card of the lecture gallery: a topic, what to look for, the run that shows it, and the view to open."""

    key: str  # also the URL: ?preset=<key>
    topic: str
    title: str
    look_for: str
    model: str
    dataset: str
    view: View = "samples"
    companions: tuple[str, ...] = ()  # more models on the same data that the view shows beside the first

    @property
    def spec(self) -> RunSpec:
        return RunSpec.defaults(self.model, self.dataset)

    @property
    def companion_specs(self) -> dict[str, RunSpec]:
        """The companions' runs, by the name of their shipped file."""
        return {f"{self.key}-{m.lower()}": RunSpec.defaults(m, self.dataset) for m in self.companions}


_ALL = [
    Preset(
        "what-is-a-generative-model",
        "1 · What is a generative model",
        "p(x) on 2D points",
        "A distribution you can sample and evaluate: orange samples land where the blue density log p(x) is high, "
        "and the held-out NLL says how well p fits data it never saw.",
        "RealNVP",
        "moons",
    ),
    Preset(
        "sampling-digits",
        "1 · What is a generative model",
        "New digits from p(x)",
        "Each image is drawn pixel by pixel from p(x_i | x_<i): new digits, not copies — and the same model scores "
        "every test digit exactly.",
        "PixelCNN",
        "digits",
    ),
    Preset(
        "generation-and-inference",
        "1 · Generation and inference",
        "Graphics, and vision as inverse graphics",
        "Set the factors and the renderer draws the shape (generation); a trained encoder reads the factors back "
        "from the pixels (inference), with its error per factor; a VAE finds such factors without being told.",
        "β-VAE",
        "shapes",
        "inference",
    ),
    Preset(
        "discriminative-vs-generative",
        "1 · Discriminative vs generative",
        "p(y | x) against p(x, y), with pixels missing",
        "Both classify digits about equally well; hide pixels and the generative one, which marginalises them "
        "(Bayes' rule on p(x_obs | y) p(y)), holds up far better than the discriminative one, which must guess them.",
        "CVAE",
        "digits",
        "classifiers",
    ),
    Preset(
        "conditional-generation",
        "1 · Conditional generation",
        "Digits of the class you ask for",
        "p(x | y): pick a class and three conditional models draw digits of it; a classifier p(y | x) is the "
        "simplest conditional generative model, of y.",
        "CVAE",
        "digits",
        "conditional",
        companions=("cGAN", "cMADE"),
    ),
    Preset(
        "latent-walk-by-class",
        "1 · Conditional generation",
        "A walk with the class held fixed",
        "Pick a class in the Latent explorer and walk between two digits of it: the class stays fixed while the "
        "style changes.",
        "CVAE",
        "digits",
        "latent",
    ),
    Preset(
        "autoregressive-masks",
        "2 · Autoregressive models",
        "MADE: one network, every conditional",
        "Masked connections make one forward pass give every p(x_i | x_<i); the density is exact, so the NLL is "
        "not a bound. Open *How it works* under the figures to see p(x₁) and p(x₂ | x₁) and sample step by step.",
        "MADE",
        "8gaussians",
    ),
    Preset(
        "flows-on-rings",
        "3 · Normalizing flows",
        "A spline flow bends space into rings",
        "An invertible map from a Gaussian: exact log p(x) by the change of variables, and sampling in one pass. "
        "Open *How it works* under the figures to watch the layers bend the Gaussian into rings.",
        "NSF",
        "rings",
    ),
    Preset(
        "latent-walk",
        "4 · Latent-variable models",
        "A VAE's latent space of digits",
        "Walk between two encoded digits: every point on the path decodes to a plausible digit; the NLL shown is a "
        "bound (ELBO).",
        "VAE",
        "digits",
        "latent",
    ),
    Preset(
        "latent-walk-mnist",
        "4 · Latent-variable models",
        "Walking between two MNIST digits",
        "The same walk on 28×28 MNIST: it opens between two draws from the prior; choose *two test items* to "
        "encode two real digits and decode the path between their codes, one digit turning into the other through "
        "shapes a hand could have written.",
        "VAE",
        "mnist",
        "latent",
    ),
    Preset(
        "disentangled-factors",
        "4 · Latent-variable models",
        "β-VAE on shapes with known factors",
        "Traverse each latent dimension and read the table: which one tracks position, size, kind or intensity.",
        "β-VAE",
        "shapes",
        "latent",
    ),
    Preset(
        "gan-modes",
        "5 · GANs",
        "A GAN on eight Gaussians",
        "No likelihood: the blue field is the discriminator's belief that a point is real, the arrows show where "
        "the generator pulls each sample, and the subtitle counts the modes it covers; scored by MMD² only.",
        "GAN",
        "8gaussians",
    ),
    Preset(
        "likelihood-surprise",
        "6 · Evaluation",
        "Out-of-distribution surprise",
        "Score items the model never saw: some unlike any digit (blank or constant images) get a better likelihood "
        "than real test digits.",
        "PixelCNN",
        "digits",
        "likelihood",
    ),
    Preset(
        "diffusion",
        "7 · Beyond: diffusion",
        "DDPM: denoising from pure noise",
        "Samples are made by reversing a noising process step by step; its NLL is a variational bound. Open *How "
        "it works* under the figures to noise the data, see the denoiser's pull and play the reverse chains.",
        "DDPM",
        "moons",
    ),
    Preset(
        "energy-based",
        "7 · Beyond: energy-based models",
        "An energy-based model sampled by Langevin dynamics",
        "p(x) ∝ exp(−E(x)) with an unknown normaliser: no likelihood; the blue landscape is −E(x) and the arrows "
        "the drift of a Langevin step, the noisy gradient steps on E that make samples.",
        "EBM",
        "moons",
    ),
]
PRESETS: dict[str, Preset] = {preset.key: preset for preset in _ALL}


def shipped_runs() -> dict[str, RunSpec]:
    """The runs to ship, by file name (presets may share one): each preset's key of its first use."""
    runs: dict[str, RunSpec] = {}
    for preset in PRESETS.values():
        runs.setdefault(run_key(preset), preset.spec)
        runs.update(preset.companion_specs)
    return runs


def run_key(preset: Preset) -> str:
    """The shipped run a preset opens: presets with the same model and data share one file."""
    return next(p.key for p in PRESETS.values() if (p.model, p.dataset) == (preset.model, preset.dataset))


def shipped_path(key: str) -> Path:
    """The file of shipped run ``key`` (a key of ``shipped_runs``)."""
    return PRETRAINED / f"{key}.dgm.zip"


def run_path(preset: Preset) -> Path:
    return shipped_path(run_key(preset))


def open_preset(preset: Preset, device: torch.device | None = None, rescore: bool = True) -> Run:
    """The preset's shipped run, checked field by field and scored again on this machine (unless ``rescore`` is
    False: for a view that shows no scores; then it has none)."""
    return _open(run_path(preset), device, rescore)


def open_companions(preset: Preset, device: torch.device | None = None, rescore: bool = True) -> list[Run]:
    """The shipped runs of the preset's companions, loaded as ``open_preset`` loads its run."""
    return [_open(shipped_path(key), device, rescore) for key in preset.companion_specs]


_scores: dict[tuple[Path, str], dict[int, Scores]] = {}  # shipped file and device → its kept weights' scores here
_scoring: dict[tuple[Path, str], threading.Lock] = {}  # one per file and device: pages opening it wait for one scoring


def _open(path: Path, device: torch.device | None, rescore: bool) -> Run:
    """A shipped run, scored here once per process: the files are read-only, so a class opening the same card again
    and again reuses the scores this process computed (never the file's own). Pages opening the same card at once
    wait for one scoring; a card never waits for another's (the warm-up scoring every card, after a restart)."""
    run = Run.load(path, device, rescore=False)
    if rescore:
        key = path, str(run.device)
        with _scoring.setdefault(key, threading.Lock()):
            _scores[key] = run.rescore(_scores.get(key))
    return run


def recorded_scores() -> dict[str, dict]:
    """``manifest.json``: for each shipped run, its settings and the test score it had when it was made."""
    return json.loads(MANIFEST.read_text())
