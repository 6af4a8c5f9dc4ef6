"""Checkpoints: one .dgm.zip per run that rebuilds the same model, and a clear refusal for every kind of bad file."""

from __future__ import annotations

import json
import zipfile

import pytest
import safetensors.torch
import torch

from dgm_core.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from dgm_core.data import load_dataset
from dgm_core.evaluation import item_log_probs
from dgm_core.models.registry import MODELS, build_model, supports
from tests.core_helpers import perturb

torch.set_num_threads(1)

HIDDEN = 16
CASES = [(name, dataset) for dataset in ("moons", "digits") for name in MODELS if supports(name, load_dataset(dataset))]


def _saved(tmp_path, name: str = "RealNVP", dataset: str = "moons", **extra) -> tuple:
    """A small model with weights away from its seeded initialisation, and the checkpoint it was saved to."""
    model = build_model(name, load_dataset(dataset).spec, hidden=HIDDEN, seed=3)
    perturb(model, 0.05, seed=11)  # so a rebuild from the seed alone cannot pass for a loaded checkpoint
    return model, save_checkpoint(tmp_path / f"{name}-{dataset}", name, dataset, HIDDEN, 3, model, extra)


def _rewritten(path, tmp_path, config_change: dict | None = None, weights: dict | None = None):
    """A copy of checkpoint ``path`` with fields of config.json replaced, or other weights."""
    with zipfile.ZipFile(path) as archive:
        config, raw_weights = json.loads(archive.read("config.json")), archive.read("weights.safetensors")
    config.update(config_change or {})
    if weights is not None:
        raw_weights = safetensors.torch.save(weights)
    copy = tmp_path / "edited.dgm.zip"
    with zipfile.ZipFile(copy, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("weights.safetensors", raw_weights)
    return copy


# --- round trips ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, dataset", CASES)
def test_a_loaded_checkpoint_scores_and_samples_exactly_like_the_saved_model(name, dataset, tmp_path):
    model, path = _saved(tmp_path, name, dataset)
    loaded, record = load_checkpoint(path)
    assert type(loaded) is type(model) and not loaded.training
    assert (record.model_name, record.dataset, record.hidden, record.seed) == (name, dataset, HIDDEN, 3)
    x = load_dataset(dataset).test[:64]
    if model.capabilities.likelihood != "none":
        assert torch.equal(item_log_probs(loaded, x), item_log_probs(model, x))
    model.eval()
    with torch.no_grad():
        torch.manual_seed(5)
        expected = model.sample(16)
        torch.manual_seed(5)
        assert torch.equal(loaded.sample(16), expected)


def test_the_file_is_one_stored_zip_of_config_and_safetensors_weights(tmp_path):
    _, path = _saved(tmp_path)
    assert path.name == "RealNVP-moons.dgm.zip" and path.exists()
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["config.json", "weights.safetensors"]
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
        config = json.loads(archive.read("config.json"))
    assert config["format"] == "dgm-playground-checkpoint" and config["format_version"] == 1
    assert config["torch_version"] == torch.__version__ and config["created"]
    assert not list(tmp_path.glob("*.part"))


def test_the_run_information_comes_back(tmp_path):
    history = [{"step": 100, "val_nll": 1.5}, {"step": 200, "val_nll": 1.2}]
    _, path = _saved(
        tmp_path,
        training={"steps": 200, "lr": 5e-3},
        metrics={"test_nll": torch.tensor(1.25)},  # tensors are stored as numbers
        history=history,
        note="first try",
    )
    _, record = load_checkpoint(path)
    assert record.training == {"steps": 200, "lr": 5e-3} and record.metrics == {"test_nll": 1.25}
    assert record.history == history and record.extra == {"note": "first try"} and record.model_kwargs == {}


def test_a_models_declared_options_rebuild_the_same_model(tmp_path):
    spec = load_dataset("digits").spec
    model = build_model("β-VAE", spec, hidden=HIDDEN, beta=8.0)
    path = save_checkpoint(tmp_path / "vae", "β-VAE", "digits", HIDDEN, 0, model, {"model_kwargs": {"beta": 8.0}})
    loaded, record = load_checkpoint(path)
    assert record.model_kwargs == {"beta": 8.0} and loaded.beta == 8.0
    x = load_dataset("digits").test[:32]
    assert torch.equal(item_log_probs(loaded, x), item_log_probs(model, x))


def test_undeclared_constructor_arguments_are_refused(tmp_path):
    spec = load_dataset("digits").spec
    model = build_model("VAE", spec, hidden=HIDDEN)
    path = save_checkpoint(tmp_path / "vae", "VAE", "digits", HIDDEN, 0, model, {"model_kwargs": {"latent_dim": 3}})
    _refused(path, "VAE has no option 'latent_dim'")


# --- refusals ---------------------------------------------------------------------------------------------------------


def _refused(path, match: str) -> None:
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


def test_truncated_files_are_refused(tmp_path):
    _, path = _saved(tmp_path)
    data = path.read_bytes()
    for keep in (len(data) // 2, len(data) - 10, 3, 0):
        cut = tmp_path / "cut.dgm.zip"
        cut.write_bytes(data[:keep])
        _refused(cut, "truncated or not a DGM Playground checkpoint")


def test_a_zip_of_something_else_is_refused(tmp_path):
    other = tmp_path / "photos.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("cat.txt", "meow")
    _refused(other, r"not a DGM Playground checkpoint: it lacks config.json and weights.safetensors \(found: cat.txt\)")


def test_a_config_without_the_format_tag_is_refused(tmp_path):
    _, path = _saved(tmp_path)
    _refused(_rewritten(path, tmp_path, {"format": "someone-else"}), "lacks the format tag")


def test_a_bare_safetensors_file_is_refused(tmp_path):
    bare = tmp_path / "weights.safetensors"
    bare.write_bytes(safetensors.torch.save({"w": torch.zeros(3)}))
    _refused(bare, "bare safetensors file")


def test_a_newer_format_version_is_refused(tmp_path):
    _, path = _saved(tmp_path)
    _refused(_rewritten(path, tmp_path, {"format_version": 99}), "format version 99.*Update the playground")


def test_unknown_models_and_data_sets_are_named(tmp_path):
    _, path = _saved(tmp_path)
    _refused(_rewritten(path, tmp_path, {"model": "PixelRNN"}), "model 'PixelRNN', which this version does not have")
    _refused(_rewritten(path, tmp_path, {"dataset": "cifar10"}), "data set 'cifar10', which this version does not have")
    _refused(_rewritten(path, tmp_path, {"hidden": "wide"}), "valid 'hidden'")


def test_weights_that_do_not_fit_the_model_are_refused_naming_the_tensors(tmp_path):
    model, path = _saved(tmp_path)
    _refused(
        _rewritten(path, tmp_path, {"hidden": 2 * HIDDEN}), r"do not fit RealNVP with hidden width 32.*wrong shapes"
    )
    weights = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    first = next(iter(weights))
    weights.pop(first)
    weights["stowaway"] = torch.zeros(2)
    _refused(_rewritten(path, tmp_path, weights=weights), f"missing: {first}; unexpected: stowaway")


@pytest.mark.parametrize("zipped", [True, False])
def test_pickled_pytorch_files_are_never_loaded(tmp_path, zipped):
    """torch.save output, current (a zip holding data.pkl) or legacy (a raw pickle): recognised, never unpickled."""
    model = build_model("RealNVP", load_dataset("moons").spec, hidden=HIDDEN)
    path = tmp_path / "model.dgm.zip"
    torch.save(model.state_dict(), path, _use_new_zipfile_serialization=zipped)
    _refused(path, r"pickled files are never loaded \(they can run code\); export a safetensors checkpoint")


def test_files_over_the_size_limit_are_refused_before_reading(tmp_path):
    huge = tmp_path / "huge.dgm.zip"
    with huge.open("wb") as file:
        file.truncate(201 * 2**20)  # sparse: nothing is written
    _refused(huge, "larger than 200 MB")


def test_a_missing_file_is_a_checkpoint_error(tmp_path):
    _refused(tmp_path / "nowhere.dgm.zip", "Cannot read nowhere.dgm.zip")
