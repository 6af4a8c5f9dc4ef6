"""Discriminative against generative classifiers, and what each does when pixels are missing (lecture 1).

A discriminative classifier models p(y | x) alone: here multinomial logistic regression,

    p(y | x) = softmax(W x + b)_y,

fitted by maximum likelihood with an L2 penalty chosen on the validation split. A generative classifier models the
joint p(x, y) = p(x | y) p(y), with p(x | y) from a class-conditional generative model
(``Capabilities.class_likelihood``), and classifies by Bayes' rule:

    p(y | x) = p(x | y) p(y) / Σ_y' p(x | y') p(y').

When some pixels are hidden only the generative classifier answers from its own model: it marginalises them,
p(x_obs | y) = Σ_{x_hid} p(x_obs, x_hid | y), which a model whose pixels are independent given a latent does by
leaving them out of p(x | z, y). The discriminative one was fitted to whole items and must impute the hidden pixels
first (here with each pixel's training mean). The shallowest generative classifier, naive Bayes, makes every pixel
independent given the class,

    p(x | y) = Π_d p(x_d | y),

so that hidden pixels drop out of the product exactly: the baseline a deep generative classifier has to beat.

    classifier = fit_logistic(data)
    curve = accuracy_vs_missing(cvae, classifier, data.test, data.labels["test"], fractions=(0.0, 0.5, 0.9))
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor

from dgm_core.data import Dataset
from dgm_core.learn.seeding import forked
from dgm_core.models.abilities import ClassLikelihood, Marginalising, ability
from dgm_core.models.base import GenerativeModel

PENALTIES = (1e-4, 1e-3, 1e-2, 1e-1)  # L2 weights tried; the best on validation is kept
SMOOTHING = (0.01, 0.1, 0.5, 1.0, 2.0)  # naive Bayes' pseudo-counts tried; the best on validation is kept


@dataclass(frozen=True)
class LogisticRegression:
    """p(y | x) = softmax(W x / (L − 1) + b); hidden pixels are imputed with their training means."""

    weight: Tensor  # (C, D)
    bias: Tensor  # (C,)
    pixel_mean: Tensor  # (D,) training mean of each pixel, in levels
    levels: int

    def probs(self, x: Tensor, observed: Tensor | None = None) -> Tensor:
        """(N, C) class probabilities of items ``x`` (N, ...), with pixels not ``observed`` (N, D) imputed."""
        flat = x.flatten(1)
        if observed is not None:
            flat = torch.where(observed, flat, self.pixel_mean)
        return (flat / (self.levels - 1) @ self.weight.T + self.bias).softmax(1)


def fit_logistic(data: Dataset, steps: int = 100) -> LogisticRegression:
    """Logistic regression on the training split, its L2 penalty the one of ``PENALTIES`` best on validation."""
    levels, n_classes = data.spec.levels, data.spec.n_classes
    if levels is None or n_classes is None:
        raise ValueError(f"{data.spec.name} is not a labelled image data set.")
    x, y = data.train.flatten(1), data.labels["train"]
    pixel_mean = x.mean(0)
    fits = [_fit(x / (levels - 1), y, n_classes, penalty, steps) for penalty in PENALTIES]
    candidates = [LogisticRegression(w, b, pixel_mean, levels) for w, b in fits]
    return max(candidates, key=lambda c: accuracy(c.probs(data.val), data.labels["val"]))


def _fit(x: Tensor, y: Tensor, n_classes: int, penalty: float, steps: int) -> tuple[Tensor, Tensor]:
    """Minimise mean cross-entropy + penalty · ‖W‖² by L-BFGS (the problem is convex)."""
    weight = torch.zeros(n_classes, x.shape[1], requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=steps, line_search_fn="strong_wolfe")

    def objective() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight.T + bias, y) + penalty * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(objective)
    return weight.detach(), bias.detach()


@dataclass(frozen=True)
class NaiveBayes:
    """p(y | x_obs) ∝ p(y) Π_{d observed} p(x_d | y): each pixel a categorical over the L levels given the class,
    from the training counts plus ``smoothing`` in every cell (Laplace's rule at 1)."""

    log_pixel: Tensor  # (D, L, C) log p(x_d = l | y)
    log_prior: Tensor  # (C,) log p(y), the training frequencies
    smoothing: float

    def probs(self, x: Tensor, observed: Tensor | None = None) -> Tensor:
        """(N, C) class probabilities of items ``x`` (N, ...) from their ``observed`` (N, D) pixels alone."""
        levels = x.flatten(1).long()  # (N, D)
        per_pixel = self.log_pixel[torch.arange(levels.shape[1]), levels]  # (N, D, C)
        if observed is not None:
            per_pixel = per_pixel * observed[..., None]  # a hidden pixel's factor is 1: summed out exactly
        return (per_pixel.sum(1) + self.log_prior).softmax(1)


def fit_naive_bayes(data: Dataset) -> NaiveBayes:
    """Naive Bayes from the training split's counts, its smoothing the one of ``SMOOTHING`` best on validation."""
    levels, n_classes = data.spec.levels, data.spec.n_classes
    if levels is None or n_classes is None:
        raise ValueError(f"{data.spec.name} is not a labelled image data set.")
    x, y = data.train.flatten(1).long(), data.labels["train"]
    counts = torch.zeros(x.shape[1], levels, n_classes)  # (D, L, C)
    counts.index_put_((torch.arange(x.shape[1]).expand_as(x), x, y[:, None].expand_as(x)), torch.ones(x.shape), True)
    log_prior = torch.bincount(y, minlength=n_classes).float().div(len(y)).log()

    def fitted(smoothing: float) -> NaiveBayes:
        smoothed = counts + smoothing
        return NaiveBayes((smoothed / smoothed.sum(1, keepdim=True)).log(), log_prior, smoothing)

    return max(map(fitted, SMOOTHING), key=lambda nb: accuracy(nb.probs(data.val), data.labels["val"]))


@torch.no_grad()
def bayes_probs(model: GenerativeModel, x: Tensor, observed: Tensor | None = None) -> Tensor:
    """(N, C) p(y | x) ∝ p(x | y) p(y) from a class-conditional model, or p(y | x_obs) ∝ p(x_obs | y) p(y) with
    the pixels not ``observed`` (N, D) marginalised (a model that ``marginalises``). A bound or an estimate of
    log p(x | y) gives approximate posteriors; an exact one, exact posteriors."""
    classes = ability(model, ClassLikelihood)
    if observed is None:
        log_likelihood = classes.conditional_log_prob
    else:
        log_likelihood = partial(ability(model, Marginalising).conditional_log_prob, observed=observed)
    with forked(x.device, seed=0):  # the same draws for every class and call, where the model estimates: repeatable
        log_prior = classes.log_prior()
        labels = [x.new_full((len(x),), y, dtype=torch.long) for y in range(len(log_prior))]
        log_joint = torch.stack([log_likelihood(x, y) for y in labels], dim=1) + log_prior
    return log_joint.softmax(1)


def hide_pixels(n: int, dim: int, fraction: float, seed: int = 0) -> Tensor:
    """(n, dim) bool: True where a pixel is observed; round(fraction · dim) pixels of each item hidden at random."""
    hidden = round(fraction * dim)
    order = torch.rand(n, dim, generator=torch.Generator().manual_seed(seed)).argsort(1)
    return order >= hidden  # each row's first `hidden` positions of a random permutation are hidden


def accuracy(probs: Tensor, labels: Tensor) -> float:
    return (probs.argmax(1) == labels).float().mean().item()


@dataclass(frozen=True)
class MissingPixelCurve:
    """Accuracy of the three classifiers at each fraction of hidden pixels (the same pixels for all)."""

    fractions: tuple[float, ...]
    discriminative: tuple[float, ...]
    generative: tuple[float, ...]
    naive_bayes: tuple[float, ...]


def accuracy_vs_missing(
    model: GenerativeModel,
    classifier: LogisticRegression,
    naive_bayes: NaiveBayes,
    x: Tensor,
    labels: Tensor,
    fractions: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 0.9),
    seed: int = 0,
) -> MissingPixelCurve:
    """The three classifiers on items ``x`` with a growing fraction of their pixels hidden at random."""
    x = x.to(model.device)
    discriminative, generative, naive = [], [], []
    for fraction in fractions:
        observed = hide_pixels(len(x), x[0].numel(), fraction, seed).to(x.device)
        discriminative.append(accuracy(classifier.probs(x.cpu(), observed.cpu()), labels))
        hidden_any = fraction > 0  # nothing hidden: the full likelihood, nothing to marginalise
        generative.append(accuracy(bayes_probs(model, x, observed if hidden_any else None).cpu(), labels))
        naive.append(accuracy(naive_bayes.probs(x.cpu(), observed.cpu()), labels))
    return MissingPixelCurve(tuple(fractions), tuple(discriminative), tuple(generative), tuple(naive))
