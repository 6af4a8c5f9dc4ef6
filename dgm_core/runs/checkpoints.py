"""Checkpoints: a run as ONE file ``*.dgm.zip`` that can be downloaded, shared, stored and loaded back safely.

The zip holds two members:

    config.json          the run's spec (model, data, settings), its phase, step, time, evaluations, loss curve and
                         the optimizers' non-tensor state, with a format tag and version; for a run on a user's own
                         data, that data's content hash and size (the data itself stays with its browser)
    weights.safetensors  named tensors: the kept weights (``last.*``, and ``best.*`` when they differ), and with the
                         training state the current weights (``model.*``), optimizer moments and the random state

Everything in an uploaded file is untrusted. Before anything is built, every limit is checked (file, member and
header sizes, tensor count, JSON size and nesting, text lengths), then every field against its type and range, then
the weights against the model: finite, the right names and shapes. Scores are never taken from the file: the kept
weights are scored again (``rescore``). Pickle is never loaded: a pickled file is recognised and refused. Every way
a file can be wrong raises ``CheckpointError`` with a sentence saying which.
"""

from __future__ import annotations

import json
import math
import os
import struct
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import safetensors.torch
import torch
from torch import Tensor

from dgm_core.data import load_dataset
from dgm_core.learn.evaluation import Scores
from dgm_core.learn.loss_curve import LossCurve
from dgm_core.runs.slices import PHASES, Phase
from dgm_core.runs.spec import RunSpec

FORMAT = "dgm-playground-checkpoint"
FORMAT_VERSION = 2
SUFFIX = ".dgm.zip"
CONFIG, WEIGHTS = "config.json", "weights.safetensors"
MAX_FILE_BYTES = 100 * 2**20  # the largest run allowed (4 M parameters) with its optimizer state fits in ~80 MB
MAX_CONFIG_BYTES = 4 * 2**20
MAX_JSON_DEPTH = 24
MAX_HEADER_BYTES = 2**20  # a safetensors header: names, dtypes, shapes and offsets of the tensors
MAX_TENSORS = 4000
MAX_HISTORY = 5000  # evaluations kept in a file
MAX_TEXT = 2000
RNG_STATE_BYTES = 8192  # a torch generator's state (5,056 bytes on the CPU)
DTYPES = {"F32", "F64", "F16", "BF16", "I64", "I32", "U8", "BOOL"}
NOT_A_CHECKPOINT = "The file is truncated or not a DGM Playground checkpoint (a .dgm.zip saved by the playground)."
PICKLE_REFUSED = (
    "This is a pickled PyTorch file (torch.save output): pickled files are never loaded (they can run code); "
    "export a safetensors checkpoint (a .dgm.zip saved by the playground) instead."
)


class CheckpointError(ValueError):
    """A file that cannot be loaded as a checkpoint; the message says why, in a sentence for the user."""


@dataclass
class RunRecord:
    """A run as its file holds it: what ``Run.to_record`` gives and ``Run.from_record`` takes."""

    spec: RunSpec
    phase: Phase
    message: str  # written for whoever reads the file; a loaded run says what it is itself
    target: int
    losses: LossCurve
    tensors: dict[str, Tensor]  # Trainer.state()'s tensors, or with no training state only the kept ones ("last.*")
    state: dict  # Trainer.state()'s JSON-friendly rest
    training_state: bool
    data: dict | None = None  # a user's own data: its content hash and item count (the data stays with its browser)


def shorten(text: object, limit: int = 60) -> str:
    """A value from a file, quoted for a message: at most ``limit`` characters, control characters dropped."""
    text = "".join(c for c in str(text) if c.isprintable())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


# --- saving -----------------------------------------------------------------------------------------------------------


def write_record(record: RunRecord, path: Path) -> Path:
    """Write ``record`` to ``path`` (``.dgm.zip`` added when missing) atomically; see ``Run.save``."""
    if not path.name.endswith(SUFFIX):
        path = path.with_name(path.name + SUFFIX)
    block = {
        **record.state,
        "phase": record.phase,
        "message": record.message[:MAX_TEXT],
        "target": record.target,
        "losses": record.losses.to_json(),
        "training_state": record.training_state,
    }
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "spec": record.spec.to_json(),
        "run": block,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "torch_version": torch.__version__,
    }
    if record.data is not None:
        config["data"] = record.data
    weights = {name: tensor.detach().cpu().contiguous().clone() for name, tensor in record.tensors.items()}
    partial = path.with_name(path.name + ".part")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(CONFIG, json.dumps(config))
        archive.writestr(WEIGHTS, safetensors.torch.save(weights))
    os.replace(partial, path)  # a crash mid-write never leaves a half-written checkpoint under the real name
    return path


# --- loading ----------------------------------------------------------------------------------------------------------


def read_record(path: Path) -> RunRecord:
    """The record in ``path``, checked from the outside in; ``CheckpointError`` for any bad file (see the module). The
    weights' names and shapes are checked against the model its settings build, from their header, before any
    tensor is read."""
    config, raw_weights = _read_members(path)
    header = _weights_header(raw_weights)
    spec, meta = _parse_config(config)
    try:
        spec.check_cost()  # from_json checked the rest
        with torch.device("meta"):  # names and shapes only: nothing allocated, nothing initialised
            model = spec.build(checked=True)
    except ValueError as error:
        raise CheckpointError(f"The checkpoint's settings cannot build a run here: {error}") from None
    _check_weights(spec, model.state_dict(), header, meta)
    block = {name: meta.pop(name) for name in ("phase", "message", "target", "losses", "training_state")}
    return RunRecord(spec, tensors=_load_tensors(raw_weights), state=meta, data=config.get("data"), **block)


def _read_members(path: Path) -> tuple[dict, bytes]:
    """config.json (parsed) and the weights' bytes, after checking sizes, pickle and zip structure."""
    try:
        size = path.stat().st_size
    except OSError as error:
        raise CheckpointError(f"Cannot read {shorten(path.name)}: {error.strerror or error}.") from error
    if size > MAX_FILE_BYTES:
        raise CheckpointError(
            f"The file is {size / 2**20:.0f} MB; checkpoints larger than {MAX_FILE_BYTES // 2**20} MB are refused."
        )
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
            if any(name.endswith((".pkl", ".pt", ".pth")) or "data.pkl" in name for name in names):
                raise CheckpointError(PICKLE_REFUSED)
            if sorted(names) != sorted([CONFIG, WEIGHTS]):
                raise CheckpointError(
                    f"This zip is not a DGM Playground checkpoint: it must hold exactly {CONFIG} and {WEIGHTS} "
                    f"(found: {', '.join(shorten(name, 40) for name in names[:5]) or 'nothing'})."
                )
            raw_config = _read_capped(archive, CONFIG, MAX_CONFIG_BYTES)
            raw_weights = _read_capped(archive, WEIGHTS, MAX_FILE_BYTES)
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, RuntimeError) as error:
        raise CheckpointError(NOT_A_CHECKPOINT) from error
    return _parse_json(raw_config, CONFIG), raw_weights


def _read_capped(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """A member's bytes, refusing it once more than ``limit`` come out (whatever size its header claims: a small
    zip can inflate to gigabytes)."""
    if archive.getinfo(name).file_size > limit:
        raise CheckpointError(f"The checkpoint's {name} is larger than {limit // 2**20} MB; it is refused.")
    with archive.open(name) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise CheckpointError(f"The checkpoint's {name} inflates beyond {limit // 2**20} MB; it is refused.")
    return data


def _parse_json(raw: bytes, what: str) -> object:
    """JSON after checking its nesting depth by a scan of the brackets (deep nesting overflows the parser)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            escaped, in_string = (not escaped and byte == 0x5C), in_string and (escaped or byte != 0x22)
        elif byte == 0x22:
            in_string = True
        elif byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                raise CheckpointError(f"The checkpoint's {what} nests deeper than {MAX_JSON_DEPTH} levels; refused.")
        elif byte in b"]}":
            depth -= 1
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CheckpointError(f"The checkpoint's {what} is not valid JSON.") from error


def _weights_header(raw: bytes) -> dict[str, dict]:
    """The safetensors header (tensor name → dtype, shape, byte range), read by hand: its length, entry count,
    dtypes, shapes and byte ranges are checked before anything parses it (a header can declare millions of empty
    tensors); a pickle in its place is named as one."""
    pickled = raw.startswith(b"\x80") or raw.startswith(b"PK\x03\x04")  # a raw pickle, or torch.save's zip of one
    if pickled and raw[8:9] != b"{":  # (a safetensors header's length may start with 0x80 too; its JSON follows)
        raise CheckpointError(f"The checkpoint's {WEIGHTS} is a pickle (torch.save output): " + PICKLE_REFUSED)
    if len(raw) < 8:
        raise CheckpointError(f"The checkpoint's {WEIGHTS} is damaged: it is too short.")
    (length,) = struct.unpack("<Q", raw[:8])
    if length > min(MAX_HEADER_BYTES, len(raw) - 8):
        raise CheckpointError(f"The checkpoint's {WEIGHTS} declares a header of {length:,} bytes; refused.")
    header = _parse_json(raw[8 : 8 + length], f"{WEIGHTS} header")
    if not isinstance(header, dict) or len(header) > MAX_TENSORS + 1:
        raise CheckpointError(f"The checkpoint's {WEIGHTS} must hold at most {MAX_TENSORS:,} named tensors.")
    header.pop("__metadata__", None)
    data_bytes = len(raw) - 8 - length
    for name, entry in header.items():
        ok = (
            isinstance(entry, dict)
            and entry.get("dtype") in DTYPES
            and isinstance(entry.get("shape"), list)
            and len(entry["shape"]) <= 8
            and all(isinstance(s, int) and 0 <= s <= 2**31 for s in entry["shape"])
            and isinstance(entry.get("data_offsets"), list)
            and len(entry["data_offsets"]) == 2
            and all(isinstance(o, int) and 0 <= o <= data_bytes for o in entry["data_offsets"])
        )
        if not ok or len(name) > 200:
            raise CheckpointError(f"The checkpoint's {WEIGHTS} has a malformed entry {shorten(name)}.")
    return header


def _load_tensors(raw: bytes) -> dict[str, Tensor]:
    """The tensors of a header already checked (``_weights_header``, ``_check_weights``), all finite."""
    try:
        weights = safetensors.torch.load(raw)
    except Exception as error:  # safetensors raises its own error types for malformed headers and sizes
        raise CheckpointError(f"The checkpoint's {WEIGHTS} is damaged: {shorten(error, 120)}") from error
    for name, tensor in weights.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"The checkpoint's weights hold NaN or infinite values ({shorten(name)}); refused.")
    return weights


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    """safetensors starts with the little-endian u64 length of a JSON header, then the header's '{'."""
    return len(head) >= 9 and head[8:9] == b"{" and 0 < struct.unpack("<Q", head[:8])[0] <= size - 8


def _parse_config(config: object) -> tuple[RunSpec, dict]:
    """The spec and the run block of config.json, every field checked; CheckpointError names the first fault."""
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"This zip is not a DGM Playground checkpoint: its {CONFIG} lacks the format tag.")
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        shown = version if isinstance(version, int) else shorten(version, 20)
        raise CheckpointError(
            f"This checkpoint has format version {shown}; this version of DGM Playground reads "
            f"version {FORMAT_VERSION}." + (" Update the playground to load it." if newer else " Save it again.")
        )
    if set(config) - {"format", "format_version", "spec", "run", "created", "torch_version", "data"}:
        raise CheckpointError(f"The checkpoint's {CONFIG} has fields this version does not know.")
    try:
        spec = RunSpec.from_json(config.get("spec"))
    except ValueError as error:
        raise CheckpointError(f"The checkpoint's settings are not valid: {shorten(error, 200)}.") from None
    _check_data(spec, config.get("data"))
    meta = config.get("run")
    try:
        return spec, _check_run_block(meta)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"The checkpoint's run record is not valid: {shorten(error, 200)}.") from None


def _check_data(spec: RunSpec, claimed: object) -> None:
    """A run on a user's own data names the content it was trained on; the data set known here must be that one."""
    own = load_dataset(spec.dataset)
    if own.spec.content_hash is None and claimed is None:
        return
    n = len(own.train) + len(own.val) + len(own.test)
    if claimed != {"content_hash": own.spec.content_hash, "items": n}:
        raise CheckpointError(
            f"This checkpoint was trained on other data than the data set {shorten(spec.dataset, 40)} here "
            f"({n:,} items): add the data it was trained on, then load it again."
        )


def _check_run_block(meta: object) -> dict:
    fields = {
        "step",
        "elapsed_s",
        "history",
        "best_step",
        "last_step",
        "optimizers",
        "schedulers",
        "phase",
        "message",
        "target",
        "losses",
        "training_state",
    }
    if not isinstance(meta, dict) or set(meta) != fields:
        raise ValueError(f"it needs exactly {', '.join(sorted(fields))}")
    for name in ("step", "target"):
        if not isinstance(meta[name], int) or isinstance(meta[name], bool) or not 0 <= meta[name] <= 10**9:
            raise ValueError(f"{name} must be a whole number from 0 to 10⁹")
    if not isinstance(meta["elapsed_s"], (int, float)) or not 0 <= meta["elapsed_s"] < math.inf:
        raise ValueError("elapsed_s must be a finite number of seconds")
    if meta["phase"] not in PHASES or not isinstance(meta["message"], str) or len(meta["message"]) > MAX_TEXT:
        raise ValueError(f"phase must be one of {', '.join(PHASES)}, with a message under {MAX_TEXT} characters")
    if not isinstance(meta["training_state"], bool):
        raise ValueError("training_state must be true or false")
    history = meta["history"]
    if not isinstance(history, list) or len(history) > MAX_HISTORY:
        raise ValueError(f"history must list at most {MAX_HISTORY} evaluations")
    meta["history"] = [Scores.from_json(row).to_json() for row in history]
    steps = [row["step"] for row in meta["history"]]
    if steps != sorted(steps) or (steps and steps[-1] > meta["step"]):
        raise ValueError("evaluations must be in order of steps, none after the run's last step")
    for name in ("best_step", "last_step"):
        if meta[name] is not None and meta[name] not in steps:
            raise ValueError(f"{name} must be the step of one of its evaluations")
    if (meta["best_step"] is None) != (meta["last_step"] is None):
        raise ValueError("a run with evaluations has both a best and a last step")
    for name in ("optimizers", "schedulers"):
        if not isinstance(meta[name], list) or len(meta[name]) > 4:
            raise ValueError(f"{name} must be a short list")
    meta["losses"] = LossCurve.from_json(meta["losses"])
    return meta


def _check_weights(spec: RunSpec, expected: dict[str, Tensor], header: dict[str, dict], meta: dict) -> None:
    """Raise naming missing, unexpected and wrongly shaped tensors when the weights (as their header declares them)
    do not fit the model. Besides the model's weights, a file may hold only the optimizer moments its record names
    (none larger than the model's largest weight, or a random generator's state) and the batch stream's state."""
    groups = ["model", "last"] if meta["training_state"] else ["last"]
    if meta["best_step"] is not None and meta["best_step"] != meta["last_step"]:
        groups.append("best")
    if meta["last_step"] is None:
        groups.remove("last")
    wanted = {f"{group}.{name}": tuple(tensor.shape) for group in groups for name, tensor in expected.items()}
    wanted |= dict.fromkeys(_tensors_named(meta["optimizers"]))  # any shape, within the largest weight's size
    wanted["rng.batches"] = None
    largest = max(RNG_STATE_BYTES, *(tensor.numel() for tensor in expected.values()))
    given = {name: tuple(entry["shape"]) for name, entry in header.items()}
    missing = [name for name, shape in wanted.items() if shape is not None and name not in given]
    unexpected = [name for name in given if name not in wanted]
    reshaped = [
        f"{name} {shape} (the model has {wanted[name]})"
        for name, shape in given.items()
        if name in wanted and wanted[name] is not None and shape != wanted[name]
    ] + [
        f"{name} {shape} (larger than any weight of the model)"
        for name, shape in given.items()
        if name in wanted and wanted[name] is None and math.prod(shape) > largest
    ]
    problems = [
        f"{label}: {', '.join(shorten(n, 80) for n in names[:5])}{' …' if len(names) > 5 else ''}"
        for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shapes", reshaped))
        if names
    ]
    if problems:
        raise CheckpointError(
            f"The weights do not fit {spec.model} with hidden width {spec.hidden} on {spec.dataset} — "
            + "; ".join(problems)
            + "."
        )


def _tensors_named(packed: object) -> list[str]:
    """The tensor names a packed optimizer state refers to (``learn.packing``; nesting is capped by the JSON's)."""
    if isinstance(packed, dict):
        if set(packed) == {"tensor"} and isinstance(packed["tensor"], str):
            return [packed["tensor"]]
        return [name for value in packed.values() for name in _tensors_named(value)]
    if isinstance(packed, list):
        return [name for value in packed for name in _tensors_named(value)]
    return []
