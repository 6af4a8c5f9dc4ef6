"""Checkpoints: one .dgm.zip per run that brings the run back exactly, and a clear refusal for every kind of bad file.

Every hostile file here is built by the test itself; nothing in it is trusted: scores are recomputed, every field is
checked, and limits are enforced before anything large is parsed.
"""

from __future__ import annotations

import json
import struct
import zipfile

import pytest
import safetensors.torch
import torch

from dgm_core.data import load_dataset
from dgm_core.learn.evaluation import item_log_probs
from dgm_core.learn.training import Trainer
from dgm_core.models.registry import MODELS
from dgm_core.runs.checkpoints import MAX_CONFIG_BYTES, MAX_TENSORS, CheckpointError
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec
from tests.core_helpers import trains_on

torch.set_num_threads(1)

HIDDEN = 16
DETERMINISTIC = {"eval_every_s": None, "eval_every_steps": 3, "sample_every_s": None}
CASES = [(name, dataset) for dataset in ("moons", "digits") for name in MODELS if trains_on(name, dataset)]


def _trained(name: str = "RealNVP", dataset: str = "moons", steps: int = 6, **spec) -> Run:
    run = Run(
        RunSpec.defaults(name, dataset, hidden=HIDDEN, batch_size=32, steps=steps, seed=3, **spec), **DETERMINISTIC
    )
    run.start()
    while run.active:
        run.advance(5.0)
    return run


def _saved(tmp_path, name: str = "RealNVP", dataset: str = "moons", **spec) -> tuple[Run, object]:
    run = _trained(name, dataset, **spec)
    return run, run.save(tmp_path / f"{name}-{dataset}")


def _parts(path) -> tuple[dict, bytes]:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json")), archive.read("weights.safetensors")


def _rewritten(path, tmp_path, config: dict | None = None, weights: bytes | dict | None = None, name="edited"):
    """A copy of checkpoint ``path`` with another config.json (or weights)."""
    old_config, raw_weights = _parts(path)
    if isinstance(weights, dict):
        weights = safetensors.torch.save(weights)
    copy = tmp_path / f"{name}.dgm.zip"
    with zipfile.ZipFile(copy, "w") as archive:
        archive.writestr("config.json", json.dumps(config if config is not None else old_config))
        archive.writestr("weights.safetensors", weights if weights is not None else raw_weights)
    return copy


def _refused(path, match: str) -> None:
    with pytest.raises(CheckpointError, match=match):
        Run.load(path)


# --- round trips ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, dataset", CASES)
def test_a_loaded_run_scores_and_samples_exactly_like_the_saved_one(name, dataset, tmp_path):
    run, path = _saved(tmp_path, name, dataset)
    loaded = Run.load(path)
    assert type(loaded.model) is type(run.model) and loaded.spec == run.spec
    assert loaded.step == run.step and loaded.phase == "done" and loaded.kept.step == run.kept.step
    assert loaded.history == run.history  # recomputed on load, and evaluation is deterministic
    x = load_dataset(dataset).test[:64]
    if run.model.capabilities.likelihood != "none":
        assert torch.equal(item_log_probs(loaded.model, x), item_log_probs(run.model, x))
    for model in (run.model, loaded.model):
        model.eval()
    with torch.no_grad():
        torch.manual_seed(5)
        expected = run.model.sample(16)
        torch.manual_seed(5)
        assert torch.equal(loaded.model.sample(16), expected)


@pytest.mark.parametrize("name", ["RealNVP", "VAE", "GAN", "DDPM", "EBM"])
def test_a_run_saved_midway_continues_exactly_like_one_never_interrupted(name, tmp_path):
    """Optimizer moments, the learning-rate schedule and the batch stream are saved too: 6 steps, save, load, 6
    more gives the same weights and scores as 12 steps straight."""
    straight = _trained(name, steps=12, lr_schedule="cosine")
    half = Run(straight.spec, **DETERMINISTIC)
    half.start(6)
    while half.active:
        half.advance(5.0)
    resumed = Run.load(half.save(tmp_path / "half"), **DETERMINISTIC)
    resumed.start(6)
    while resumed.active:
        resumed.advance(5.0)
    weights, expected = resumed.model.state_dict(), straight.model.state_dict()
    assert all(torch.equal(weights[key], expected[key]) for key in expected)
    assert [s.nll or s.val_mmd for s in resumed.history] == [s.nll or s.val_mmd for s in straight.history]


def test_the_file_is_one_stored_zip_of_config_and_safetensors_weights(tmp_path):
    _, path = _saved(tmp_path)
    assert path.name == "RealNVP-moons.dgm.zip" and path.exists()
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["config.json", "weights.safetensors"]
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
    config, _ = _parts(path)
    assert config["format"] == "dgm-playground-checkpoint" and config["format_version"] == 2
    assert config["spec"]["model"] == "RealNVP" and config["run"]["phase"] == "done"
    assert config["torch_version"] == torch.__version__ and config["created"]
    assert not list(tmp_path.glob("*.part"))


def test_a_slim_file_holds_only_the_kept_weights_and_loads_them(tmp_path):
    run, _ = _saved(tmp_path)
    slim = run.save(tmp_path / "slim", training_state=False)
    names = safetensors.torch.load(_parts(slim)[1]).keys()
    assert all(name.startswith("last.") for name in names)
    loaded = Run.load(slim)
    x = load_dataset("moons").test[:64]
    assert torch.equal(item_log_probs(loaded.model, x), item_log_probs(run.model, x))


def test_a_loaded_run_draws_its_samples_once_and_only_when_they_are_asked_for(tmp_path, monkeypatch):
    """A reload after a restart brings back a browser's many runs; only the one shown needs samples."""
    _, path = _saved(tmp_path, "DDPM")  # a hundred network passes per draw
    drawn = []
    samples = Trainer.samples
    monkeypatch.setattr(Trainer, "samples", lambda self, n, label=None: drawn.append(n) or samples(self, n, label))
    loaded = Run.load(path)
    assert drawn == []
    assert loaded.samples.shape == (loaded.trainer.config.n_samples, 2) and loaded.samples is loaded.samples
    assert drawn == [loaded.trainer.config.n_samples]


def test_a_models_declared_options_come_back(tmp_path):
    run, path = _saved(tmp_path, "β-VAE", "digits", options={"beta": 8.0})
    loaded = Run.load(path)
    assert loaded.spec.options == {"beta": 8.0} and loaded.model.beta == 8.0


# --- the file's own claims are never shown --------------------------------------------------------------------------


def test_scores_are_recomputed_on_load_whatever_the_file_claims(tmp_path):
    run, path = _saved(tmp_path)
    config, _ = _parts(path)
    for row in config["run"]["history"]:
        row["nll"] = {split: 0.001 for split in row["nll"]}  # a flattering claim
    loaded = Run.load(_rewritten(path, tmp_path, config))
    assert loaded.kept.scores.nll == run.kept.scores.nll and loaded.kept.scores.nll["test"] > 1


def test_the_files_message_is_never_shown_the_page_says_what_the_recomputed_scores_say(tmp_path):
    run, path = _saved(tmp_path)
    config, _ = _parts(path)
    config["run"]["message"] = "Kept the weights of step 6: test NLL 0.001 nats <img src=x onerror=alert(1)>"
    loaded = Run.load(_rewritten(path, tmp_path, config))
    assert "0.001" not in loaded.message and "<img" not in loaded.message
    assert f"test NLL {run.kept.scores.nll['test']:.3f} nats" in loaded.message


def test_non_finite_weights_are_refused(tmp_path):
    run, path = _saved(tmp_path)
    weights = safetensors.torch.load(_parts(path)[1])
    first = next(name for name in weights if name.startswith("last."))
    weights[first] = weights[first].clone().fill_(float("nan"))
    _refused(_rewritten(path, tmp_path, weights=weights), "NaN or infinite values")


# --- refusals: every field is checked -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda c: c["spec"].update(model="PixelRNN"), "Choose a model"),
        (lambda c: c["spec"].update(dataset="cifar10"), "Choose a data set"),
        (lambda c: c["spec"].update(hidden="wide"), "'hidden' must be a int"),
        (lambda c: c["spec"].update(model="MADE" * 250_000), "settings are not valid: .{1,220}$"),
        (lambda c: c["spec"].update(options={"latent_dim": 3}), "has no option 'latent_dim'"),
        (lambda c: c["spec"].update(steps=-5), "Steps must be between"),
        (lambda c: c["spec"].pop("lr"), "need exactly"),
        (lambda c: c["run"].update(step="x"), "step must be a whole number"),
        (lambda c: c["run"]["history"][-1].update(val_mmd="x"), "must be finite numbers"),
        (lambda c: c["run"]["history"][-1]["nll"].update(test=float("nan")), "not valid JSON|finite numbers"),
        (lambda c: c["run"].update(best_step=999), "best_step must be the step of one of its evaluations"),
        (lambda c: c["run"].update(phase="hacked"), "phase must be one of"),
        (lambda c: c["run"].update(message="x" * 5000), "message under"),
        (lambda c: c["run"].update(history=[c["run"]["history"][0]] * 6000), "at most 5000 evaluations"),
        (lambda c: c["run"]["losses"].update(steps=["a"]), "equally many|numbers only"),
        (lambda c: c.update(surprise=1), "fields this version does not know"),
        (lambda c: c.update(format="someone-else"), "lacks the format tag"),
        (lambda c: c.update(format_version=99), "format version 99.*Update the playground"),
        (lambda c: c.update(format_version=1), "format version 1.*Save it again"),
    ],
)
def test_a_bad_field_is_refused_with_its_reason(change, match, tmp_path):
    _, path = _saved(tmp_path)
    config, _ = _parts(path)
    change(config)
    _refused(_rewritten(path, tmp_path, config), match)


def test_settings_that_disagree_with_the_weights_are_refused_naming_the_tensors(tmp_path):
    """A config saying "VAE on digits" over RealNVP weights once showed as a VAE that then failed: now refused."""
    _, path = _saved(tmp_path)
    config, _ = _parts(path)
    config["spec"].update(RunSpec.defaults("VAE", "digits", hidden=HIDDEN).to_json())
    _refused(
        _rewritten(path, tmp_path, config), r"do not fit VAE with hidden width 16 on digits — missing: .*unexpected"
    )


def test_a_tensor_the_model_does_not_have_is_refused_before_it_is_read(tmp_path):
    """A valid file padded with an unused 98 MB tensor was once read whole (+322 MB): now its name is refused."""
    _, path = _saved(tmp_path)
    weights = safetensors.torch.load(_parts(path)[1])
    _refused(_rewritten(path, tmp_path, weights={**weights, "padding": torch.zeros(10)}), "unexpected: 'padding'")


def test_an_optimizer_moment_larger_than_any_weight_is_refused(tmp_path):
    _, path = _saved(tmp_path)
    weights = safetensors.torch.load(_parts(path)[1])
    moment = next(name for name in weights if name.startswith("optimizer."))
    weights[moment] = torch.zeros(10**6)
    refusal = r"wrong shapes: 'optimizer\.\S+ \(1000000,\) \(larger than any"
    _refused(_rewritten(path, tmp_path, weights=weights), refusal)


def test_a_very_long_name_is_shortened_in_the_message(tmp_path):
    _, path = _saved(tmp_path)
    config, _ = _parts(path)
    config["spec"]["model"] = "M" * 1_000_000
    with pytest.raises(CheckpointError) as refused:
        Run.load(_rewritten(path, tmp_path, config))
    assert len(str(refused.value)) < 500


def test_deep_nesting_is_refused_before_parsing(tmp_path):
    _, path = _saved(tmp_path)
    deep = b'{"format": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    copy = tmp_path / "deep.dgm.zip"
    with zipfile.ZipFile(copy, "w") as archive:
        archive.writestr("config.json", deep)
        archive.writestr("weights.safetensors", _parts(path)[1])
    _refused(copy, "nests deeper than")


def test_a_huge_config_is_refused(tmp_path):
    _, path = _saved(tmp_path)
    copy = tmp_path / "big.dgm.zip"
    with zipfile.ZipFile(copy, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", b" " * (MAX_CONFIG_BYTES + 1) + b"{}")
        archive.writestr("weights.safetensors", _parts(path)[1])
    _refused(copy, "config.json is larger than")


def test_a_member_whose_size_is_understated_is_refused(tmp_path):
    """A zip bomb that lies about its size: the declared size caps what is read, the CRC then fails."""
    _, path = _saved(tmp_path)
    copy = tmp_path / "liar.dgm.zip"
    with zipfile.ZipFile(copy, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", b" " * 3_000_000 + b"{}")
        archive.writestr("weights.safetensors", _parts(path)[1])
    data = bytearray(copy.read_bytes())
    for header, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local and central uncompressed-size fields
        start = data.find(header)
        data[start + offset : start + offset + 4] = struct.pack("<I", 100)
    copy.write_bytes(bytes(data))
    _refused(copy, "truncated or not a DGM Playground checkpoint|not valid JSON")


def _safetensors_with_header(entries: int) -> bytes:
    header = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(entries)}
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw


@pytest.mark.parametrize(("entries", "match"), [(MAX_TENSORS + 10, "at most 4,000 named tensors"), (40_000, "header")])
def test_a_weights_header_declaring_too_many_tensors_is_refused_before_parsing(entries, match, tmp_path):
    """1.5 M declared empty tensors once took 33–55 s and 2.8 GB to parse; counts and header size are capped."""
    _, path = _saved(tmp_path)
    _refused(_rewritten(path, tmp_path, weights=_safetensors_with_header(entries)), match)


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
    _refused(other, r"must hold exactly config.json and weights.safetensors \(found: 'cat.txt'\)")


def test_a_bare_safetensors_file_is_refused(tmp_path):
    bare = tmp_path / "weights.safetensors"
    bare.write_bytes(safetensors.torch.save({"w": torch.zeros(3)}))
    _refused(bare, "bare safetensors file")


@pytest.mark.parametrize("zipped", [True, False])
def test_pickled_pytorch_files_are_never_loaded(tmp_path, zipped):
    """torch.save output, current (a zip holding data.pkl) or legacy (a raw pickle): recognised, never unpickled."""
    run = _trained()
    path = tmp_path / "model.dgm.zip"
    torch.save(run.model.state_dict(), path, _use_new_zipfile_serialization=zipped)
    _refused(path, r"pickled files are never loaded \(they can run code\); export a safetensors checkpoint")


def test_a_pickle_in_place_of_the_weights_is_named_a_pickle(tmp_path):
    _, path = _saved(tmp_path)
    pickled = tmp_path / "state.pt"
    torch.save({"w": torch.zeros(3)}, pickled)
    _refused(_rewritten(path, tmp_path, weights=pickled.read_bytes()), "weights.safetensors is a pickle")


def test_files_over_the_size_limit_are_refused_before_reading(tmp_path):
    huge = tmp_path / "huge.dgm.zip"
    with huge.open("wb") as file:
        file.truncate(101 * 2**20)  # sparse: nothing is written
    _refused(huge, "larger than 100 MB")


def test_a_missing_file_is_a_checkpoint_error(tmp_path):
    _refused(tmp_path / "nowhere.dgm.zip", "Cannot read 'nowhere.dgm.zip'")
