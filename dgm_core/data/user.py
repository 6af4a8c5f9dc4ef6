"""A user's own data as a ``Dataset``: what ``upload`` read, split once from a seed like the built-in sets, known by
a name that ends in its content hash, and kept in a file beside its browser's runs.

    name = name_for(data, "clusters.csv")                  # "clusters-3fa2c1b0": the same data, the same name
    register(data, name)                                    # load_dataset(name) works from now on
    save(data, folder / f"{name}.npz")                      # no pickle: plain arrays and strings
    data = load(folder / f"{name}.npz")                     # checked again, hash included

The split is the digits' one: a seeded permutation gives the test set (20%), then validation (10%), then training
(the remaining 70%). The spec's mean and std come from the training split; images have 17 levels (0..16).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from dgm_core.data import USER_SETS, Dataset, DataSpec
from dgm_core.data.digits import FRACTIONS, LEVELS
from dgm_core.data.upload import points_from_drawing
from dgm_core.data.upload_rules import MAX_FILE_BYTES, DataError, UserData

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,23}-([0-9a-f]{8})$")  # a stem from the file's name, then the content hash
MAX_REGISTERED = 256  # user data sets held in memory by one server (the oldest go first; runs keep their own)


def user_dataset(data: UserData, name: str, seed: int = 0) -> Dataset:
    """Splits a user's data into a training, validation and test set; the same seed gives the same tensors.

    Arguments:
        data: what ``read_upload`` or ``points_from_drawing`` read.
        name: the data set's name in its spec.
        seed: the seed of the permutation that splits the items.
    """
    n = len(data.items)
    order = np.random.RandomState(seed).permutation(n)
    n_test, n_val = int(FRACTIONS["test"] * n), int(FRACTIONS["val"] * n)
    index = {"train": order[n_test + n_val :], "val": order[n_test : n_test + n_val], "test": order[:n_test]}
    splits = {
        split: torch.from_numpy(np.ascontiguousarray(data.items[i], dtype=np.float32)) for split, i in index.items()
    }
    labels = (
        {} if data.labels is None else {split: torch.from_numpy(data.labels[i]).long() for split, i in index.items()}
    )
    train = splits["train"].reshape(len(splits["train"]), -1)
    spec = DataSpec(
        name=name,
        kind=data.kind,
        shape=tuple(data.items.shape[1:]),
        levels=LEVELS if data.kind == "image" else None,
        mean=tuple(train.mean(0).tolist()),
        std=tuple(train.std(0).tolist()),
        description=data.note,
        n_classes=None if data.class_names is None else len(data.class_names),
        class_names=data.class_names,
        content_hash=data.content_hash(),
    )
    return Dataset(spec, splits["train"], splits["val"], splits["test"], labels)


def name_for(data: UserData, title: str) -> str:
    """ "clusters-3fa2c1b0": a short stem from ``title`` (a file name, "drawing") and the first 8 digits of the
    content hash, so that the same data always gets the same name and different data never does."""
    stem = re.sub(r"[^a-z0-9]+", "-", Path(title).stem.lower()).strip("-")[:24].strip("-") or "data"
    return f"{stem}-{data.content_hash()[:8]}"


def register(data: UserData, name: str) -> None:
    """Make ``data`` the data set that ``load_dataset(name)`` gives (``name`` from ``name_for``, or a saved file's)."""
    if content_hash(name) != data.content_hash()[:8]:
        raise DataError(f"{name[:40]} is not the name of this data.")
    if name not in USER_SETS:
        while len(USER_SETS) >= MAX_REGISTERED:
            USER_SETS.pop(next(iter(USER_SETS)))
        USER_SETS[name] = user_dataset(data, name)


def content_hash(name: str) -> str | None:
    """The content hash a user data set's name ends with (None for a built-in name)."""
    match = NAME.match(name)
    return match[1] if match else None


def save(data: UserData, path: Path) -> None:
    """The data as an .npz of plain arrays (kind, items, labels, class names, note); written atomically."""
    labels = np.zeros(0, np.int64) if data.labels is None else data.labels
    names = np.asarray(data.class_names or (), dtype=str)
    partial = path.with_name(path.name + ".partial.npz")
    np.savez(
        partial,
        kind=np.asarray(data.kind),
        items=data.items,
        labels=labels,
        class_names=names,
        note=np.asarray(data.note),
    )
    partial.replace(path)


def load(path: Path) -> UserData:
    """A data set written by ``save``, checked as an upload would be (no pickle) and against the hash in its name."""
    if path.stat().st_size > 2 * MAX_FILE_BYTES:
        raise DataError(f"{path.name} is larger than a user data set can be.")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            kind, items, labels = str(arrays["kind"]), arrays["items"], arrays["labels"]
            class_names, note = tuple(str(n) for n in arrays["class_names"]), str(arrays["note"])
    except (OSError, KeyError, ValueError) as error:
        raise DataError(f"{path.name} is not a saved data set ({str(error)[:40]}).") from None
    if kind == "points2d":
        data = points_from_drawing(items)
    elif kind == "image" and items.ndim == 4 and items.shape[1] == 1 and np.isin(items, np.arange(LEVELS)).all():
        data = UserData("image", items.astype(np.float32), None, None, note)
    else:
        raise DataError(f"{path.name} holds neither points nor images of 17 levels.")
    if len(labels):
        if len(labels) != len(items) or not class_names or labels.min() < 0 or labels.max() >= len(class_names):
            raise DataError(f"{path.name} has labels that do not fit its items and classes.")
        data = UserData(data.kind, data.items, labels.astype(np.int64), class_names, note)
    else:
        data = UserData(data.kind, data.items, None, None, note)
    if content_hash(path.stem) != data.content_hash()[:8]:
        raise DataError(f"{path.name} does not hold the data its name says.")
    return data
