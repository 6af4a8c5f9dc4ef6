"""Checkpoints: a trained run as ONE file ``*.dgm.zip`` that can be downloaded, shared and loaded back safely.

The zip (stored, not compressed) holds two members:

    config.json          what rebuilds the model (model and data set names, hidden width, seed, constructor extras)
                         and what describes the run (training settings, metrics, history, time, torch version)
    weights.safetensors  the state_dict as raw tensors (safetensors: no code, only shapes, dtypes and bytes)

Loading never unpickles: pickle files (``torch.save`` output) can run arbitrary code when loaded, so they are
recognised and refused. Every way a file can be wrong raises ``CheckpointError`` with a sentence saying which.
"""

from __future__ import annotations

import json
import os
import struct
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import safetensors.torch
import torch
from torch import Tensor

from dgm_core.data import dataset_names, load_dataset
from dgm_core.models.base import GenerativeModel
from dgm_core.models.registry import MODELS, build_model, supports

FORMAT = "dgm-playground-checkpoint"
FORMAT_VERSION = 1
SUFFIX = ".dgm.zip"
MAX_BYTES = 200 * 2**20  # larger files are refused before anything is read
CONFIG, WEIGHTS = "config.json", "weights.safetensors"
NOT_A_CHECKPOINT = "The file is truncated or not a DGM Playground checkpoint (a .dgm.zip saved by the playground)."
PICKLE_REFUSED = (
    "This is a pickled PyTorch file (torch.save output): pickled files are never loaded (they can run code); "
    "export a safetensors checkpoint (a .dgm.zip saved by the playground) instead."
)
RUN_FIELDS = ("training", "metrics", "history", "model_kwargs")  # keys of ``extra`` with their own record field


class CheckpointError(ValueError):
    """A file that cannot be loaded as a checkpoint; the message says why, in a sentence for the user."""


@dataclass
class CheckpointRecord:
    """Everything in config.json: how to rebuild the model, and what the run did."""

    model_name: str
    dataset: str
    hidden: int
    seed: int
    training: dict = field(default_factory=dict)  # the training settings (steps, lr, batch size, ...)
    metrics: dict = field(default_factory=dict)  # the kept weights' scores
    history: list = field(default_factory=list)  # one row per evaluation
    model_kwargs: dict = field(default_factory=dict)  # constructor arguments beyond the hidden width (e.g. beta)
    extra: dict = field(default_factory=dict)  # anything else the caller stored
    created: str = ""
    torch_version: str = ""
    format_version: int = FORMAT_VERSION


# --- saving -----------------------------------------------------------------------------------------------------------


def save_checkpoint(
    path: str | os.PathLike,
    model_name: str,
    dataset: str,
    hidden: int,
    seed: int,
    model: GenerativeModel,
    extra: dict | None = None,
) -> Path:
    """Write ``model`` and its run to one ``.dgm.zip`` file (the suffix is added when missing); returns its path.

    ``extra`` holds JSON-friendly run information: the keys "training", "metrics", "history" and "model_kwargs"
    (constructor arguments that ``load_checkpoint`` passes back to the model's class) get their own record fields;
    any other key is kept as it is in ``CheckpointRecord.extra``.
    """
    path = Path(path)
    if not path.name.endswith(SUFFIX):
        path = path.with_name(path.name + SUFFIX)
    extra = dict(extra or {})
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model_name,
        "dataset": dataset,
        "hidden": int(hidden),
        "seed": int(seed),
        **{name: extra.pop(name) for name in RUN_FIELDS if name in extra},
        "extra": extra,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "torch_version": torch.__version__,
    }
    weights = {name: tensor.detach().cpu().contiguous().clone() for name, tensor in model.state_dict().items()}
    partial = path.with_name(path.name + ".part")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(CONFIG, json.dumps(config, indent=2, default=_to_json))
        archive.writestr(WEIGHTS, safetensors.torch.save(weights))
    os.replace(partial, path)  # a crash mid-write never leaves a half-written checkpoint under the real name
    return path


def _to_json(value: object) -> object:
    """Tensors and numpy scalars as plain numbers or lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} cannot be stored in a checkpoint's config.json")


# --- loading ----------------------------------------------------------------------------------------------------------


def load_checkpoint(
    path: str | os.PathLike, device: torch.device | None = None
) -> tuple[GenerativeModel, CheckpointRecord]:
    """The model (in eval mode, on ``device``, default CPU) and its record; ``CheckpointError`` for any bad file."""
    config, weights = _read_members(Path(path))
    record = _record(config)
    model = _build(record)
    _check_weights(model, weights, record)
    model.load_state_dict(weights, strict=True)
    return model.to(device or torch.device("cpu")).eval(), record


def _read_members(path: Path) -> tuple[dict, dict[str, Tensor]]:
    """config.json (parsed) and the weights, after checking size, pickle and zip structure."""
    try:
        size = path.stat().st_size
    except OSError as error:
        raise CheckpointError(f"Cannot read {path.name}: {error.strerror or error}.") from error
    if size > MAX_BYTES:
        raise CheckpointError(f"{path.name} is {size / 2**20:.0f} MB; checkpoints larger than 200 MB are refused.")
    with path.open("rb") as file:
        head = file.read(16)
    if head.startswith(b"\x80"):
        raise CheckpointError(PICKLE_REFUSED)
    if _looks_like_safetensors(head, size):
        raise CheckpointError(
            "This is a bare safetensors file (weights only): a checkpoint is a .dgm.zip holding config.json and "
            "weights.safetensors, as saved by DGM Playground."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if any(name.endswith(".pkl") for name in names):
                raise CheckpointError(PICKLE_REFUSED)
            if CONFIG not in names or WEIGHTS not in names:
                raise CheckpointError(
                    f"This zip is not a DGM Playground checkpoint: it lacks {CONFIG} and {WEIGHTS} "
                    f"(found: {', '.join(names[:5]) or 'nothing'})."
                )
            if sum(archive.getinfo(name).file_size for name in (CONFIG, WEIGHTS)) > MAX_BYTES:
                raise CheckpointError("The checkpoint's contents exceed 200 MB; it is refused.")
            raw_config, raw_weights = archive.read(CONFIG), archive.read(WEIGHTS)
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as error:
        raise CheckpointError(NOT_A_CHECKPOINT) from error
    try:
        config = json.loads(raw_config)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"The checkpoint's {CONFIG} is not valid JSON.") from error
    try:
        weights = safetensors.torch.load(raw_weights)
    except Exception as error:  # safetensors raises its own error types for malformed headers and sizes
        raise CheckpointError(f"The checkpoint's {WEIGHTS} is damaged: {error}") from error
    return config, weights


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    """safetensors starts with the little-endian u64 length of a JSON header, then the header's '{'."""
    return len(head) >= 9 and head[8:9] == b"{" and 0 < struct.unpack("<Q", head[:8])[0] <= size - 8


def _record(config: object) -> CheckpointRecord:
    """The record in config.json, after checking the format tag, its version and the field types."""
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"This zip is not a DGM Playground checkpoint: its {CONFIG} lacks the format tag.")
    version = config.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise CheckpointError(
            f"This checkpoint has format version {version}; this version of DGM Playground reads version "
            f"{FORMAT_VERSION}." + (" Update the playground to load it." if newer else "")
        )
    expected = {"model": str, "dataset": str, "hidden": int, "seed": int}
    for key, kind in expected.items():
        if not isinstance(config.get(key), kind):
            raise CheckpointError(f"The checkpoint's {CONFIG} lacks a valid {key!r} ({kind.__name__}).")
    runs = {name: config.get(name, [] if name == "history" else {}) for name in RUN_FIELDS}
    if not isinstance(runs["model_kwargs"], dict):
        raise CheckpointError(f"The checkpoint's {CONFIG} has 'model_kwargs' that are not a JSON object.")
    return CheckpointRecord(
        model_name=config["model"],
        dataset=config["dataset"],
        hidden=config["hidden"],
        seed=config["seed"],
        **runs,
        extra=config.get("extra", {}),
        created=str(config.get("created", "")),
        torch_version=str(config.get("torch_version", "")),
        format_version=version,
    )


def _build(record: CheckpointRecord) -> GenerativeModel:
    """A fresh model of the recorded kind, size and data set (its weights are replaced next)."""
    if record.model_name not in MODELS:
        raise CheckpointError(
            f"The checkpoint is for model {record.model_name!r}, which this version does not have "
            f"(it has: {', '.join(MODELS)})."
        )
    if record.dataset not in dataset_names():
        raise CheckpointError(
            f"The checkpoint was trained on data set {record.dataset!r}, which this version does not have "
            f"(it has: {', '.join(dataset_names())})."
        )
    data = load_dataset(record.dataset)
    if not supports(record.model_name, data):
        raise CheckpointError(f"The checkpoint pairs {record.model_name} with {record.dataset}, which it cannot model.")
    try:
        return build_model(record.model_name, data.spec, hidden=record.hidden, seed=record.seed, **record.model_kwargs)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"The checkpoint's settings cannot build {record.model_name}: {error}") from error


def _check_weights(model: GenerativeModel, weights: dict[str, Tensor], record: CheckpointRecord) -> None:
    """Raise naming the missing, unexpected and wrongly shaped tensors, when the weights do not fit the model."""
    expected = model.state_dict()
    missing = [name for name in expected if name not in weights]
    unexpected = [name for name in weights if name not in expected]
    reshaped = [
        f"{name} {tuple(weights[name].shape)} (the model has {tuple(tensor.shape)})"
        for name, tensor in expected.items()
        if name in weights and weights[name].shape != tensor.shape
    ]
    problems = [
        f"{label}: {', '.join(names[:5])}{' …' if len(names) > 5 else ''}"
        for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shapes", reshaped))
        if names
    ]
    if problems:
        raise CheckpointError(
            f"The weights do not fit {record.model_name} with hidden width {record.hidden} on {record.dataset} — "
            + "; ".join(problems)
            + "."
        )
