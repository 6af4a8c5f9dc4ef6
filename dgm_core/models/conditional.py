"""Conditional models: trained on (item, class label) pairs, they sample an item of a chosen class.

The label y enters both networks as a one-hot code. ``loss`` and ``train_step`` need the batch's labels;
``sample(n, labels)`` and ``decode(z, labels)`` draw for given labels, or for the classes in turn without them.
The number of classes comes from the data (``DataSpec.n_classes``) unless given.

CVAE (Sohn et al., 2015): encoder q(z|x, y), decoder p(x|z, y), prior p(z) = N(0, I), trained on the conditional ELBO

    log p(x | y) ≥ ELBO(x | y) = E_q(z|x,y)[log p(x | z, y)] − KL(q(z|x, y) ‖ p(z)).

Its likelihood must not peek at the label, so that it compares with unconditional models. With the model's own class
prior p(y), log p(x) = log Σ_y p(y) p(x | y) ≥ log Σ_y p(y) exp ELBO(x | y); ``log_prob`` returns a k-sample
importance-weighted estimate of log Σ_y p(y) p(x|y) whose expectation lies between that bound and log p(x) (a lower
bound, tighter than the per-label ELBOs). p(y) is the class frequencies of the training labels seen so far
(a buffer of counts, starting at one per class), so it is part of the model and saved with it.

Conditional GAN (Mirza & Osindero, 2014): G(z, y) and D(x, y); D judges whether x is a real item *of class y*.

Conditional MADE: p(x | y) = Π_d p(x_d | x_<d, y), exactly. The one-hot label is one more input of the masked
network that every hidden unit sees and no output predicts (degree 0), as in the conditional MADE inside MAF
(Papamakarios et al., 2017). Its likelihood is exact, log p(x) = log Σ_y p(y) p(x | y), and so is Bayes' rule.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import Tensor

from dgm_core.data import DataSpec
from dgm_core.models.autoregressive import MADE
from dgm_core.models.gan import GAN
from dgm_core.models.labels import cycle_labels, join, one_hot
from dgm_core.models.latent import VAE, standard_normal_log_pdf


class LabelFrequencies:
    """p(y) of a model trained on labels: the frequencies of the training labels seen so far, counted in the buffer
    ``label_counts`` (one per class to start with), so that the prior is part of the model and saved with it. A mixin:
    it comes first among the bases, and its ``train_step`` counts the batch's labels after the model's own step."""

    label_counts: Tensor
    n_classes: int

    def log_prior(self) -> Tensor:
        """log p(y) for every class."""
        return (self.label_counts / self.label_counts.sum()).log()

    def train_step(
        self, x: Tensor, optimizers: list[torch.optim.Optimizer], labels: Tensor | None = None
    ) -> dict[str, Tensor]:
        terms = super().train_step(x, optimizers, labels)
        self.label_counts += torch.bincount(labels, minlength=self.n_classes).to(self.label_counts)
        return terms


class CVAE(LabelFrequencies, VAE):
    def __init__(
        self,
        spec: DataSpec,
        hidden: int = 256,
        layers: int = 2,
        latent_dim: int | None = None,
        n_classes: int | None = None,
        k: int = 4,
    ) -> None:
        n_classes = _class_count(spec, n_classes)
        super().__init__(spec, hidden, layers, latent_dim, condition_dim=n_classes)
        self.n_classes = n_classes
        self.k = k
        self.register_buffer("label_counts", torch.ones(n_classes))
        self.capabilities = replace(
            self.capabilities,
            likelihood_name=f"ELBO summed over labels (k={k})",
            encoder=True,
            conditional=True,
            class_likelihood=True,
            marginalises=True,
        )

    def loss(self, x: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        """−ELBO(x | y) per dimension, with its reconstruction and KL parts."""
        return self._elbo_loss(*self.elbo_terms(x, one_hot(labels, self.n_classes)))

    marginal_k = 24  # importance samples for log p(x_obs | y): the encoder's guess is poorer with pixels hidden

    def conditional_log_prob(self, x: Tensor, labels: Tensor, observed: Tensor | None = None) -> Tensor:
        """The k-sample importance-weighted bound on log p(x | y) per item, or (``observed_log_prob``) on
        log p(x_obs | y) of the pixels ``observed`` (N, D) alone."""
        condition = one_hot(labels, self.n_classes)
        if observed is None:
            return self.iwae_bound(x, self.k, condition)
        return self.observed_log_prob(x, condition, observed, self.marginal_k)

    def observed_log_prob(self, x: Tensor, condition: Tensor, observed: Tensor, k: int) -> Tensor:
        """A k-sample importance-weighted lower bound (in expectation) on log p(x_obs | y) per item.

        The decoder's pixels are independent given (z, y), so hidden ones drop out of p(x | z, y) exactly:
        p(x_obs | y) = E_p(z)[Π_{d observed} p(x_d | z, y)], and only the average over z is estimated, with the
        defensive proposal (Hesterberg, 1995)

            r(z) = ½ q(z | x̃, y) + ½ p(z),   log p(x_obs | y) ≥ E[log (1/k) Σ_i p(x_obs | z_i, y) p(z_i) / r(z_i)],

        half the draws from each part. x̃ is x with its hidden pixels set to the decoder's mean at z = 0 for class y
        (the model's own picture of a y: the encoder never saw a pixel missing, and zeros would read as a thin
        digit); the prior's half keeps the estimate sound when so few pixels are left that the encoder's guess is
        poor. Measured on the 359 test digits with pixels hidden at random (Bayes' rule, the shipped CVAE): this
        proposal with k = 24 classifies 94.7 / 89.7 / 76.6 / 51.0 % right at 25 / 50 / 75 / 90 % hidden, against
        92.8 / 83.0 / 69.1 / 43.7 % for k = 4 draws from q(z | x with zeros, y); k = 64 is no better there
        (95.0 / 90.0 / 76.6 / 49.0 %) and costs almost three times as much.
        """
        guess = self._decoder_mean(self._decoder_params(x.new_zeros(len(x), self.latent_dim), condition))
        filled = torch.where(observed.reshape(x.shape), x, guess)
        mean, log_var = self._posterior(join(self._network_input(filled), condition))
        from_q = mean + torch.exp(0.5 * log_var) * torch.randn(k - k // 2, *mean.shape, device=x.device)
        z = torch.cat([from_q, torch.randn(k // 2, *mean.shape, device=x.device)])  # (k, N, latent)
        log_prior = standard_normal_log_pdf(z)
        log_q = standard_normal_log_pdf((z - mean) * torch.exp(-0.5 * log_var)) - 0.5 * log_var.sum(-1)
        log_proposal = torch.logaddexp(log_q, log_prior) - math.log(2)
        params = self._decoder_params(z.flatten(0, 1), condition.repeat(k, 1))
        repeated = x.repeat(k, *([1] * (x.dim() - 1)))
        log_likelihood = self._log_likelihood(params, repeated, observed.repeat(k, 1)).reshape(k, len(x))
        return torch.logsumexp(log_likelihood + log_prior - log_proposal, dim=0) - math.log(k)

    def log_prob(self, x: Tensor) -> Tensor:
        """log Σ_y p(y) (1/k) Σ_i p(x, z_yi | y) / q(z_yi | x, y), z_yi ~ q(z | x, y): a lower bound on log p(x)
        that needs no label (each term's expectation is p(x | y), and log is concave)."""
        return self._over_labels(x, self.k)

    def display_log_prob(self, x: Tensor, k: int = 8) -> Tensor:
        """The same bound with k draws ε shared by every item and label (common random numbers)."""
        return self._over_labels(x, k, torch.randn(k, 1, self.latent_dim, generator=torch.Generator().manual_seed(0)))

    def _over_labels(self, x: Tensor, k: int, eps: Tensor | None = None) -> Tensor:
        eps = None if eps is None else eps.to(x.device)
        per_label = torch.stack(
            [
                self.iwae_bound(x, k, one_hot(x.new_full((len(x),), y, dtype=torch.long), self.n_classes), eps=eps)
                for y in range(self.n_classes)
            ]
        )  # (classes, N), one class at a time to bound memory
        return torch.logsumexp(per_label + self.log_prior()[:, None], dim=0)

    def encode(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """The posterior mean μ(x, y): the encoder reads the item's class label too."""
        if labels is None:
            raise ValueError("The CVAE's encoder q(z | x, y) needs each item's class label.")
        return self._posterior(torch.cat([self._network_input(x), one_hot(labels, self.n_classes)], 1))[0]

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """E[x | z, y], for ``labels`` or for the classes in turn."""
        labels = cycle_labels(len(z), self.n_classes, z.device) if labels is None else labels
        return self._decoder_mean(self._decoder_params(z, one_hot(labels, self.n_classes)))

    def sample(self, n: int, labels: Tensor | None = None) -> Tensor:
        """z ~ N(0, I), then x ~ p(x | z, y), for ``labels`` or for the classes in turn."""
        labels = cycle_labels(n, self.n_classes, self.device) if labels is None else labels
        z = torch.randn(n, self.latent_dim, device=self.device)
        return self._draw(self._decoder_params(z, one_hot(labels, self.n_classes)))


class ConditionalGAN(GAN):
    def __init__(
        self,
        spec: DataSpec,
        hidden: int = 256,
        layers: int = 2,
        latent_dim: int | None = None,
        n_classes: int | None = None,
    ) -> None:
        n_classes = _class_count(spec, n_classes)
        super().__init__(spec, hidden, layers, latent_dim, condition_dim=n_classes, dropout=0.3)
        self.n_classes = n_classes
        self.capabilities = replace(self.capabilities, conditional=True)

    def loss(self, x: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        return self._losses(x, one_hot(labels, self.n_classes))

    def train_step(
        self, x: Tensor, optimizers: list[torch.optim.Optimizer], labels: Tensor | None = None
    ) -> dict[str, Tensor]:
        return self._adversarial_step(x, optimizers, one_hot(labels, self.n_classes))

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """G(z, y) in data units, for ``labels`` or for the classes in turn."""
        labels = cycle_labels(len(z), self.n_classes, z.device) if labels is None else labels
        return self._to_data(self._generate(z, one_hot(labels, self.n_classes), averaged=True), quantize=False)

    def sample(self, n: int, labels: Tensor | None = None) -> Tensor:
        labels = cycle_labels(n, self.n_classes, self.device) if labels is None else labels
        return self._to_data(self._fake(n, one_hot(labels, self.n_classes), averaged=True), quantize=True)


class ConditionalMADE(LabelFrequencies, MADE):
    """The sequence it fills when sampling is (N, D + C): the D dimensions, then the label's one-hot code, never
    drawn (so ``_fill`` and the order of the dimensions work as for any MADE)."""

    def __init__(
        self,
        spec: DataSpec,
        hidden: int = 128,
        layers: int = 2,
        components: int = 10,
        order: str = "natural",
        seed: int = 0,
        n_classes: int | None = None,
    ) -> None:
        n_classes = _class_count(spec, n_classes)
        super().__init__(spec, hidden, layers, components, order, seed, context=n_classes)  # the label: seen by all
        self.n_classes = n_classes
        self.register_buffer("label_counts", torch.ones(n_classes))
        self.capabilities = replace(
            self.capabilities, conditional=True, class_likelihood=True, inpainting=False, conditionals=False
        )

    def _params(self, u: Tensor) -> Tensor:
        """(N, P, D) from the sequence with its label code appended, (N, D + C)."""
        dim = self.spec.dim
        joined = torch.cat([self._scaled(u[:, :dim]), u[:, dim:]], 1)
        return self.net(joined).reshape(len(u), self.params_per_dim, dim)

    def conditional_log_prob(self, x: Tensor, labels: Tensor) -> Tensor:
        """log p(x | y), exactly, per item."""
        u, log_det = self._to_sequence(x)
        return self._sequence_log_prob(u, log_det, self._params(torch.cat([u, one_hot(labels, self.n_classes)], 1)))

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) = log Σ_y p(y) p(x | y): exact, and needs no label."""
        per_label = torch.stack(
            [self.conditional_log_prob(x, x.new_full((len(x),), y, dtype=torch.long)) for y in range(self.n_classes)]
        )  # (classes, N)
        return torch.logsumexp(per_label + self.log_prior()[:, None], dim=0)

    def loss(self, x: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        return {"loss": -self.conditional_log_prob(x, labels).mean() / self.spec.dim}

    @torch.no_grad()
    def sample(self, n: int, labels: Tensor | None = None) -> Tensor:
        """Ancestral sampling of x ~ p(x | y), for ``labels`` or for the classes in turn."""
        labels = cycle_labels(n, self.n_classes, self.device) if labels is None else labels
        code = one_hot(labels, self.n_classes)
        u = torch.cat([torch.zeros(n, self.spec.dim, device=self.device), code], 1)
        free = torch.cat([torch.ones(n, self.spec.dim), torch.zeros_like(code.cpu())], 1).bool().to(self.device)
        return self._from_sequence(self._fill(u, free)[:, : self.spec.dim])


def _class_count(spec: DataSpec, n_classes: int | None) -> int:
    if n_classes is None and spec.n_classes is None:
        raise ValueError(f"A conditional model needs class labels, and {spec.name} has none.")
    return n_classes or spec.n_classes
