"""Conditional models: the trainer hands them the labels of their own batch, they sample the classes asked for (or
every class in turn), and the CVAE's label-free likelihood is an honest lower bound on log p(x)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from dgm_core.data import load_dataset
from dgm_core.learn.train_config import TrainConfig
from dgm_core.learn.training import Trainer
from dgm_core.lecture.classifiers import bayes_probs
from dgm_core.models.conditional import CVAE, ConditionalGAN, ConditionalMADE
from dgm_core.models.labels import cycle_labels
from dgm_core.models.registry import MODELS, build_model
from tests.core_helpers import all_images, perturb, tiny_spec

torch.set_num_threads(1)

CONDITIONAL = [name for name, info in MODELS.items() if info.needs_labels]
WITH_LATENTS = ["CVAE", "cGAN"]


def _config(steps: int = 3) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=32, eval_every_s=None, eval_every_steps=None, sample_every_s=None)


def _first_losses(name: str, labels: dict[str, torch.Tensor]) -> dict[str, float]:
    data = replace(load_dataset("digits"), labels=labels)
    trainer = Trainer(build_model(name, data.spec, hidden=32), data, _config())
    return next(iter(trainer.run())).losses


# --- the trainer ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONDITIONAL)
def test_the_trainer_passes_labels_a_shuffle_changes_the_loss(name):
    labels = load_dataset("digits").labels
    shuffled = {
        split: y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))] for split, y in labels.items()
    }
    assert _first_losses(name, labels) == _first_losses(name, labels)
    assert _first_losses(name, labels) != _first_losses(name, shuffled)


def test_the_labels_are_those_of_the_batchs_own_items():
    data = load_dataset("digits")
    label_of = {x.numpy().tobytes(): y.item() for x, y in zip(data.train, data.labels["train"])}
    trainer = Trainer(build_model("CVAE", data.spec, hidden=32), data, _config(steps=2))
    seen = []
    original = trainer.model.train_step

    def recording_step(x, optimizers, labels=None):
        seen.append((x, labels))
        return original(x, optimizers, labels)

    trainer.model.train_step = recording_step
    list(trainer.run())
    assert len(seen) == 2
    for x, labels in seen:
        assert labels.shape == (32,) and labels.dtype == torch.long
        assert [label_of[item.numpy().tobytes()] for item in x] == labels.tolist()


def test_a_conditional_model_cannot_train_on_data_without_labels():
    data = load_dataset("digits")
    with pytest.raises(ValueError, match="needs class labels"):
        Trainer(build_model("CVAE", data.spec, hidden=32), replace(data, labels={}), _config())


@pytest.mark.parametrize("name", CONDITIONAL)
def test_conditional_models_refuse_a_batch_without_labels(name):
    data = load_dataset("digits")
    with pytest.raises(ValueError, match="labels"):
        build_model(name, data.spec, hidden=32).loss(data.test[:8])


# --- sampling ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONDITIONAL)
def test_samples_for_given_labels_are_images_and_no_labels_means_every_class_in_turn(name):
    data = load_dataset("digits")
    model = build_model(name, data.spec, hidden=32)
    labels = torch.tensor([3, 3, 7, 0, 9])
    with torch.no_grad():
        x = model.sample(5, labels=labels)
        torch.manual_seed(4)
        default = model.sample(25)
        torch.manual_seed(4)
        cycled = model.sample(25, labels=cycle_labels(25, 10, torch.device("cpu")))
    assert x.shape == (5, *data.spec.shape) and torch.equal(x, x.round()) and 0 <= x.min() and x.max() <= 16
    assert torch.equal(default, cycled)
    assert cycle_labels(12, 10, torch.device("cpu")).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


@pytest.mark.parametrize("name", WITH_LATENTS)
def test_the_label_changes_what_is_decoded(name):
    data = load_dataset("digits")
    model = build_model(name, data.spec, hidden=32)
    z = torch.randn(4, model.capabilities.latent_dim)
    with torch.no_grad():
        assert not torch.equal(model.decode(z, labels=torch.zeros(4, dtype=torch.long)), model.decode(z))


def test_the_number_of_classes_comes_from_the_data():
    assert CVAE(load_dataset("digits").spec, hidden=8).n_classes == 10
    assert ConditionalGAN(load_dataset("shapes").spec, hidden=8).n_classes == 4
    with pytest.raises(ValueError, match="class labels"):
        CVAE(load_dataset("moons").spec, hidden=8)


# --- the CVAE's likelihood without a label ----------------------------------------------------------------------------


def test_cvae_class_prior_counts_the_training_labels():
    data = load_dataset("digits")
    model = CVAE(data.spec, hidden=16)
    torch.testing.assert_close(model.log_prior().exp(), torch.full((10,), 0.1))
    model.train_step(data.train[:4], model.configure_optimizers(1e-3), labels=torch.tensor([2, 2, 2, 5]))
    expected = torch.ones(10)
    expected[2], expected[5] = 4.0, 2.0
    torch.testing.assert_close(model.log_prior().exp(), expected / 14)


def test_cvae_marginal_bound_lies_between_the_label_elbos_and_log_p():
    """On the 16 binary 2×2 images with two classes, p(y) = (¾, ¼):

        log Σ_y p(y) exp ELBO(x|y)  ≤  E[log_prob(x)]  ≤  log p(x) = log Σ_y p(y) E_{z~N(0,I)} p(x|z, y),

    log p(x) by Monte Carlo over 20,000 prior draws, the expectations over 400 draws.
    """
    spec = tiny_spec(levels=2)
    torch.manual_seed(0)
    model = CVAE(spec, hidden=16, n_classes=2)
    perturb(model.decoder, 0.3)
    perturb(model.encoder, 0.2, seed=1)
    model.label_counts.copy_(torch.tensor([3.0, 1.0]))
    x, repeats = all_images(spec), 400
    many = x.repeat(repeats, 1, 1, 1)
    log_prior = torch.tensor([0.75, 0.25]).log()
    with torch.no_grad():
        bound = model.log_prob(many).reshape(repeats, len(x)).mean(0)
        elbos = []
        for y in (0, 1):
            condition = torch.nn.functional.one_hot(torch.full((len(many),), y), 2).float()
            reconstruction, kl = model.elbo_terms(many, condition)
            elbos.append((reconstruction - kl).reshape(repeats, len(x)).mean(0))
        label_elbo_bound = torch.logsumexp(torch.stack(elbos) + log_prior[:, None], 0)
        z = torch.randn(20_000, model.latent_dim)
        log_px_given_y = []
        for y in (0, 1):
            condition = torch.nn.functional.one_hot(torch.full((len(z),), y), 2).float()
            logits = model._decoder_params(z, condition).log_softmax(1)
            picked = logits[:, x.flatten(1).long(), torch.arange(spec.dim)].sum(-1)  # (K, 16)
            log_px_given_y.append(torch.logsumexp(picked, 0) - math.log(len(z)))
        log_px = torch.logsumexp(torch.stack(log_px_given_y) + log_prior[:, None], 0)
    assert log_px.exp().sum().item() == pytest.approx(1.0, abs=1e-4)
    assert (label_elbo_bound < bound).all()
    assert (bound <= log_px + 0.01).all()
    assert bound.exp().sum().item() < 1.0


# --- the conditional MADE: exact p(x | y), exact Bayes' rule ---------------------------------------------------------


def test_conditional_made_gives_a_distribution_over_images_for_every_class_and_exact_bayes():
    """On the 81 images of 2×2 pixels with 3 levels, for each of 3 classes: Σ_x p(x | y) = 1; log p(x) mixes them
    with p(y); and Bayes' rule from the model equals p(x | y) p(y) / p(x) computed by hand."""
    spec = tiny_spec(levels=3)
    torch.manual_seed(0)
    model = ConditionalMADE(spec, hidden=16, n_classes=3)
    perturb(model.net, 0.5)
    model.label_counts.copy_(torch.tensor([1.0, 2.0, 5.0]))
    x = all_images(spec)
    with torch.no_grad():
        per_class = torch.stack([model.conditional_log_prob(x, torch.full((len(x),), y)) for y in range(3)])
        for y in range(3):
            assert per_class[y].exp().sum().item() == pytest.approx(1.0, abs=1e-5)
        assert not torch.allclose(per_class[0], per_class[1])  # the label matters
        log_joint = per_class + torch.tensor([1 / 8, 2 / 8, 5 / 8]).log()[:, None]
        torch.testing.assert_close(model.log_prob(x), torch.logsumexp(log_joint, 0))
        torch.testing.assert_close(bayes_probs(model, x), (log_joint - torch.logsumexp(log_joint, 0)).exp().T)
    with pytest.raises(ValueError, match="no marginalising ability"):  # its order cannot sum out any pixel
        bayes_probs(model, x, observed=torch.ones(len(x), 4, dtype=torch.bool))


def test_the_cvae_marginal_of_observed_pixels_agrees_with_plain_monte_carlo_over_the_prior():
    """log p(x_obs | y) = log E_p(z)[p(x_obs | z, y)]: the defensive importance-sampling estimate (k = 1,024) and a
    plain average over 100,000 prior draws agree, whatever the proposal's weights are worth."""
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = CVAE(data.spec, hidden=32).eval()
    x, labels = data.test[:4], data.labels["test"][:4]
    observed = torch.rand(4, 64, generator=torch.Generator().manual_seed(1)) < 0.25
    condition = torch.nn.functional.one_hot(labels, 10).float()
    with torch.no_grad():
        estimate = model.observed_log_prob(x, condition, observed, k=1024)
        z = torch.randn(100_000, model.latent_dim)
        plain = []
        for item in range(4):
            params = model._decoder_params(z, condition[item].expand(len(z), -1))
            log_likelihood = model._log_likelihood(params, x[item].expand(len(z), *x.shape[1:]), observed[item])
            plain.append(torch.logsumexp(log_likelihood, 0) - math.log(len(z)))
    torch.testing.assert_close(estimate, torch.stack(plain), atol=0.05, rtol=0)


@pytest.mark.slow
def test_the_conditional_gan_learns_digits_when_its_discriminator_drops_units():
    """Without dropout the conditional discriminator wins outright on digits and val MMD² stays near 0.5."""
    data = load_dataset("digits")
    model = build_model("cGAN", data.spec, hidden=256, seed=0)
    assert any(isinstance(layer, torch.nn.Dropout) for layer in model.discriminator)
    trainer = Trainer(
        model,
        data,
        TrainConfig(steps=600, lr=5e-4, batch_size=128, eval_every_s=None, eval_every_steps=300, sample_every_s=None),
    )
    for _ in trainer.run():
        pass
    assert trainer.history[-1].val_mmd < 0.1
