"""The one protocol, checked for every model in the registry on points and on images.

New models registered in ``registry.MODELS`` are covered here without editing this file.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import fields

import pytest
import torch

from dgm_core.data import dataset_names, load_dataset
from dgm_core.models.abilities import ABILITIES, Denoising, Field, ability
from dgm_core.models.base import Capabilities, GenerativeModel
from dgm_core.models.registry import (
    FAMILIES,
    MODELS,
    build_model,
    defaults_for,
    models_by_family,
    models_for,
    supports,
    unsupported_reason,
)
from tests.core_helpers import LIKELIHOOD, all_images, home_dataset, likelihood_of, perturb, tiny_spec, trains_on

torch.set_num_threads(1)

NAMES = list(MODELS)
DATASETS = ["moons", "digits", "digits-binary", "shapes"]
CASES = [(name, dataset) for name in NAMES for dataset in DATASETS if trains_on(name, dataset)]


def _batch(dataset: str, n: int = 16) -> torch.Tensor:
    return load_dataset(dataset).test[:n]


def _labels_for(model: GenerativeModel, dataset: str, n: int = 16) -> dict[str, torch.Tensor]:
    """The batch's class labels as keyword arguments, for conditional models only (others never receive them)."""
    return {"labels": load_dataset(dataset).labels["test"][:n]} if model.capabilities.conditional else {}


def _model(name: str, dataset: str, seed: int = 0) -> GenerativeModel:
    return build_model(name, load_dataset(dataset).spec, seed=seed)


# --- the registry -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_registry_entry_is_complete(name):
    info = MODELS[name]
    assert info.name == name and info.family in FAMILIES and info.description
    assert info.defaults and set(info.defaults) <= {"points2d", "image"}
    for d in info.defaults.values():
        assert d.steps >= 1 and 0 < d.lr <= 1 and 2 <= d.batch_size and 4 <= d.hidden <= 4096


def test_every_data_set_has_models_and_every_model_has_data():
    assert all(models_for(load_dataset(dataset)) for dataset in DATASETS)
    assert all(any(supports(name, load_dataset(dataset)) for dataset in DATASETS) for name in NAMES)


@pytest.mark.parametrize("name, dataset", [(n, d) for n in NAMES for d in DATASETS])
def test_unsupported_pairs_say_why_in_a_sentence(name, dataset):
    data = load_dataset(dataset)
    reason = unsupported_reason(name, data)
    assert (reason is None) == supports(name, data)
    if reason is not None:
        assert reason.startswith(name) and reason.endswith(".")
        with pytest.raises(ValueError):
            defaults_for(name, data.spec)


def test_models_by_family_lists_every_model_once():
    grouped = models_by_family()
    assert list(grouped) == list(FAMILIES)
    assert sorted(n for names in grouped.values() for n in names) == sorted(NAMES)


def test_defaults_follow_the_kind_of_data():
    for name, dataset in CASES:
        spec = load_dataset(dataset).spec
        assert defaults_for(name, spec) == MODELS[name].defaults[spec.kind]


@pytest.mark.parametrize("name", NAMES)
def test_build_model_same_seed_same_weights(name):
    home = home_dataset(name)
    a, b, c = _model(name, home, 0), _model(name, home, 0), _model(name, home, 1)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), c.state_dict().values()))


def test_build_model_rejects_unknown_names_and_takes_the_width_it_is_given():
    spec = load_dataset("moons").spec
    with pytest.raises(ValueError, match="Unknown model"):
        build_model("PixelRNN", spec)
    assert build_model(NAMES[0], spec, hidden=4).num_parameters() < build_model(NAMES[0], spec).num_parameters()


# --- capabilities -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_the_helpers_tables_say_which_model_trains_on_which_set_with_which_likelihood(name):
    for dataset in dataset_names():
        assert trains_on(name, dataset) == supports(name, load_dataset(dataset)), dataset
        if dataset in DATASETS and trains_on(name, dataset):
            assert _model(name, dataset).capabilities.likelihood == likelihood_of(name, dataset), dataset


def test_every_model_declares_its_likelihood_in_the_helpers_table():
    assert set(LIKELIHOOD) == set(NAMES)


@pytest.mark.parametrize("name, dataset", CASES)
def test_capabilities_are_well_formed(name, dataset):
    """Every model says what it offers; a bound is named by what it bounds."""
    caps = _model(name, dataset).capabilities
    assert isinstance(caps, Capabilities)
    assert caps.likelihood in ("exact", "bound", "none")
    if caps.likelihood == "bound":
        assert caps.likelihood_name != Capabilities("exact").likelihood_name
    assert caps.latent_dim is None or caps.latent_dim >= 1


@pytest.mark.parametrize("name, dataset", CASES)
def test_every_declared_ability_is_implemented_with_its_protocols_signature(name, dataset):
    """A flag is a promise: the model has each method of its protocol, its own (not the base class's placeholder),
    taking the protocol's arguments first and any others with defaults, and each promised attribute."""
    model = _model(name, dataset)
    for flag, protocol in ABILITIES.items():
        if not getattr(model.capabilities, flag):
            continue
        assert isinstance(model, protocol), (flag, protocol.__name__)
        for method in (m for m in vars(protocol) if callable(vars(protocol)[m]) and not m.startswith("_")):
            implemented = getattr(type(model), method)
            assert implemented is not getattr(GenerativeModel, method, None), (flag, method)
            promised = list(inspect.signature(vars(protocol)[method]).parameters.values())
            offered = list(inspect.signature(implemented).parameters.values())
            assert [p.name for p in offered[: len(promised)]] == [p.name for p in promised], (flag, method)
            assert all(p.default is not p.empty for p in offered[len(promised) :]), (flag, method)


def test_every_flag_but_the_kind_of_training_promises_a_protocol():
    flags = {f.name for f in fields(Capabilities) if f.type == "bool"}
    assert flags - set(ABILITIES) == {"conditional"}
    assert set(ABILITIES) <= flags


def test_asking_for_an_ability_a_model_lacks_says_which():
    gan = _model("GAN", "moons")
    assert ability(gan, Field) is gan
    with pytest.raises(ValueError, match="no denoising ability"):
        ability(gan, Denoising)


# --- the protocol -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, dataset", CASES)
def test_loss_is_a_finite_differentiable_scalar(name, dataset):
    model = _model(name, dataset)
    terms = model.loss(_batch(dataset), **_labels_for(model, dataset))
    assert "loss" in terms
    assert all(isinstance(v, torch.Tensor) and v.shape == () and torch.isfinite(v) for v in terms.values())
    terms["loss"].backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


# Models whose forward pass branches in Python on a tensor's value, which the meta device cannot give (a GPU can).
BRANCHES_ON_VALUES = {
    "Glow": "actnorm initialises itself from the first batch it sees",
    "cMADE": "class labels are checked to be in range",
    "CVAE": "class labels are checked to be in range",
    "cGAN": "class labels are checked to be in range",
}


@pytest.mark.parametrize("name, dataset", [c for c in CASES if c[0] not in BRANCHES_ON_VALUES])
def test_the_loss_and_its_gradient_stay_on_the_models_device(name, dataset):
    """The GPU path without a GPU: on the meta device (shapes, no values) any tensor a model makes on the CPU
    instead of on its own device fails to combine with the rest, as it would on CUDA."""
    model = _model(name, dataset).to("meta")
    labels = {key: value.to("meta") for key, value in _labels_for(model, dataset).items()}
    terms = model.loss(_batch(dataset).to("meta"), **labels)
    terms["loss"].backward()
    assert terms["loss"].device.type == "meta"
    assert all(p.grad is None or p.grad.device.type == "meta" for p in model.parameters())


@pytest.mark.parametrize("name, dataset", CASES)
def test_train_step_moves_the_weights_and_reports_detached_terms(name, dataset):
    model = _model(name, dataset)
    before = [p.detach().clone() for p in model.parameters()]
    terms = model.train_step(_batch(dataset, 64), model.configure_optimizers(1e-3), **_labels_for(model, dataset, 64))
    assert "loss" in terms and all(not v.requires_grad and torch.isfinite(v) for v in terms.values())
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


@pytest.mark.parametrize("name, dataset", CASES)
def test_samples_are_in_the_datas_native_representation(name, dataset):
    """Points: finite float vectors. Images: float tensors (N, C, H, W) holding integer levels 0..L−1."""
    model = _model(name, dataset)
    spec = model.spec
    with torch.no_grad():
        x = model.sample(32)
    assert x.shape == (32, *spec.shape) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    if spec.levels is not None:
        assert torch.equal(x, x.round()) and x.min() >= 0 and x.max() <= spec.levels - 1


@pytest.mark.parametrize("name, dataset", CASES)
def test_log_prob_is_one_finite_number_per_item_or_absent(name, dataset):
    model = _model(name, dataset)
    x = _batch(dataset)
    if model.capabilities.likelihood == "none":
        with pytest.raises(NotImplementedError):
            model.log_prob(x)
        return
    with torch.no_grad():
        log_p = model.log_prob(x)
    assert log_p.shape == (len(x),) and torch.isfinite(log_p).all()
    if model.spec.levels is not None and model.capabilities.likelihood == "exact":
        assert (log_p <= 0).all()  # a probability mass is at most one


@pytest.mark.parametrize("name, dataset", [c for c in CASES if likelihood_of(*c) == "exact"])
def test_exact_log_prob_of_a_batch_is_that_of_each_item(name, dataset):
    """Items never see each other: log p(x_i) does not depend on what else is in the batch (the model as it scores:
    in evaluation mode, where nothing is dropped at random)."""
    model = _model(name, dataset).eval()
    x = _batch(dataset, 8)
    with torch.no_grad():
        together = model.log_prob(x)
        alone = torch.cat([model.log_prob(x[i : i + 1]) for i in range(len(x))])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-4)


POINT_LIKELIHOODS = [c for c in CASES if c[1] == "moons" and likelihood_of(*c) != "none"]


@pytest.mark.parametrize("name, dataset", POINT_LIKELIHOODS)
def test_the_density_picture_is_deterministic_smooth_and_exact_where_the_likelihood_is(name, dataset):
    """``display_log_prob`` along a line of 300 points: the same numbers whatever the global random state; for an
    exact likelihood, log_prob itself; for a bound drawn with common random numbers, neighbours differ far less than
    the bound drawn afresh per point (which painted the VAE's and DDPM's density as speckle)."""
    model = _model(name, dataset).eval()
    x = torch.stack([torch.linspace(-1.5, 1.5, 300), torch.full((300,), 0.3)], 1)
    with torch.no_grad():
        torch.manual_seed(1)
        picture = model.display_log_prob(x)
        torch.manual_seed(2)
        assert torch.equal(model.display_log_prob(x), picture) and torch.isfinite(picture).all()
        fresh = model.log_prob(x)
    if model.capabilities.likelihood == "exact":
        torch.testing.assert_close(picture, fresh)
    else:
        roughness = (picture.diff().abs().mean() / fresh.diff().abs().mean()).item()
        assert roughness < 0.25, roughness


@pytest.mark.parametrize("name, dataset", CASES)
def test_latent_space_shapes(name, dataset):
    """decode: (N, latent_dim) → data shape (images: values in 0..L−1); encode, where offered: x → (N, latent_dim)."""
    model = _model(name, dataset)
    spec, latent_dim = model.spec, model.capabilities.latent_dim
    if latent_dim is None:
        with pytest.raises(NotImplementedError):
            model.decode(torch.zeros(2, 2))
        return
    with torch.no_grad():
        x = model.decode(torch.randn(8, latent_dim))
        assert x.shape == (8, *spec.shape) and torch.isfinite(x).all()
        if spec.levels is not None:
            assert x.min() >= 0 and x.max() <= spec.levels - 1
        try:
            z = model.encode(_batch(dataset, 8), **_labels_for(model, dataset, 8))
        except NotImplementedError:
            return
    assert z.shape == (8, latent_dim) and torch.isfinite(z).all()


WIDTHLESS = {"FVSBN"}  # no hidden units: each conditional is linear in the earlier pixels


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_is_positive_and_grows_with_width(name):
    spec = load_dataset(home_dataset(name)).spec
    small, large = build_model(name, spec, hidden=16), build_model(name, spec, hidden=64)
    assert 0 < small.num_parameters() <= large.num_parameters()
    assert small.num_parameters() < large.num_parameters() or name in WIDTHLESS
    assert small.device == torch.device("cpu")


# --- family-specific promises -----------------------------------------------------------------------------------------


def test_vae_kl_term_is_the_closed_form_gaussian_kl():
    """KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ (μ² + σ² − 1 − log σ²), checked against torch.distributions (the registry's
    VAE on points has a mixture prior: a VAE with the N(0, I) prior here)."""
    from dgm_core.models.latent import VAE

    torch.manual_seed(0)
    model = VAE(load_dataset("moons").spec, hidden=32)
    x = _batch("moons")
    u = model.standardize(x)[0]
    mean, log_var = model._posterior(u)
    q = torch.distributions.Normal(mean, (0.5 * log_var).exp())
    expected = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(1)
    _, kl = model.elbo_terms(x)
    torch.testing.assert_close(kl, expected, rtol=1e-5, atol=1e-6)


def test_vae_elbo_is_a_lower_bound_on_a_tiny_discrete_space():
    """ELBO(x) ≤ log p(x) = log E_{z~N(0,I)} p(x|z) for each of the 16 binary 2×2 images, so Σ_x exp ELBO(x) ≤ 1.

    p(x) by plain Monte Carlo over 20,000 prior draws; the ELBO averaged over 256 draws of z ~ q(z|x).
    """
    spec = tiny_spec(levels=2)
    torch.manual_seed(0)
    model = MODELS["VAE"].make(spec, hidden=16)
    perturb(model.decoder, 0.3)  # make p(x|z) far from uniform
    perturb(model.encoder, 0.2, seed=1)  # and q(z|x) far from the prior
    x = all_images(spec)
    with torch.no_grad():
        elbo = model.log_prob(x.repeat(256, 1, 1, 1), n_samples=1).reshape(256, len(x)).mean(0)
        log_px_given_z = model._decoder_params(torch.randn(20_000, model.latent_dim)).log_softmax(1)  # (K, L, D)
        picked = log_px_given_z[:, x.flatten(1).long(), torch.arange(spec.dim)]  # (K, 16, D): log p(x_d | z)
        log_px = torch.logsumexp(picked.sum(-1), 0) - math.log(20_000)
    assert log_px.exp().sum().item() == pytest.approx(1.0, abs=1e-4)
    assert (elbo < log_px).all()
    assert elbo.exp().sum().item() < 1.0


def test_vae_log_prob_is_reconstruction_minus_kl_and_loss_its_negative_per_dim():
    """log_prob(x) = log p(x|z) − KL(q(z|x) ‖ p(z)) with z ~ q(z|x); loss = −mean ELBO / D (same draws of z)."""
    model = _model("VAE", "digits")
    perturb(model.encoder, 0.2)  # a KL well away from zero
    x = _batch("digits")
    with torch.no_grad():
        torch.manual_seed(3)
        reconstruction, kl = model.elbo_terms(x)
        torch.manual_seed(3)
        elbo = model.log_prob(x, n_samples=1)
        torch.manual_seed(3)
        terms = model.loss(x)
    assert (kl > 1).all()
    torch.testing.assert_close(elbo, reconstruction - kl)
    dim = model.spec.dim
    torch.testing.assert_close(terms["loss"], -elbo.mean() / dim)
    torch.testing.assert_close(terms["kl"], kl.mean() / dim)
    torch.testing.assert_close(terms["recon"], -reconstruction.mean() / dim)


def test_gan_train_step_moves_both_players():
    model = _model("GAN", "moons")
    d_before = [p.detach().clone() for p in model.discriminator.parameters()]
    g_before = [p.detach().clone() for p in model.generator.parameters()]
    model.train_step(_batch("moons", 64), model.configure_optimizers(1e-3))
    assert all(not torch.equal(b, p) for b, p in zip(d_before, model.discriminator.parameters()))
    assert all(not torch.equal(b, p) for b, p in zip(g_before, model.generator.parameters()))


def test_gan_discriminator_loss_at_chance_is_two_log_two():
    """With D ≡ 0 (σ(D) = ½ everywhere): −log ½ − log ½ = 2 log 2 for D, log 2 for G."""
    model = _model("GAN", "moons")
    with torch.no_grad():
        for p in model.discriminator.parameters():
            p.zero_()
    terms = model.loss(_batch("moons"))
    assert terms["loss"].item() == pytest.approx(2 * math.log(2), abs=1e-6)
    assert terms["generator"].item() == pytest.approx(math.log(2), abs=1e-6)


def test_each_family_has_one_representative_that_works_on_points_and_images():
    for family, names in models_by_family().items():
        representatives = [name for name in names if MODELS[name].representative]
        assert len(representatives) == 1, family
        assert set(MODELS[representatives[0]].defaults) == {"points2d", "image"}


@pytest.mark.parametrize("name, dataset", CASES)
def test_every_table_names_the_likelihood_alike(name, dataset):
    """One label for what a held-out score is: exact, a named bound, or none."""
    caps = _model(name, dataset).capabilities
    label = caps.likelihood_label
    expected = {"exact": "exact", "none": "none (no likelihood)"}.get(caps.likelihood)
    assert label == expected if expected else label.startswith("bound (") and "bound)" not in label
