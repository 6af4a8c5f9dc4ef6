"""Data sets: each is a fixed train / validation / test split of tensors plus a ``DataSpec`` describing it.

Nothing here downloads: 2D sets and shapes are generated from a seed, digits ship with scikit-learn, and 5,000 MNIST
digits with this repository (``assets/data``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from torch import Tensor

from dgm_core.data import digits, mnist, shapes, toy2d

DataKind = Literal["points2d", "image"]
DISPLAY_SAMPLES: dict[DataKind, int] = {"points2d": 600, "image": 64}  # samples a run draws to show, per kind


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about its data.

    shape: the shape of one item, (2,) for points or (C, H, W) for images.
    levels: number of discrete intensity levels for images (pixels are integers 0..levels-1); None for continuous data.
    mean, std: per-dimension statistics of the training split (models may standardise with them).
    entropy_nats: the data generator's differential entropy when known: no honest test NLL can go below it.
    n_classes: number of class labels (0..n_classes-1) when the data set has them, else None.
    class_names: what each class label stands for ("7", "circle"), when there are labels.
    content_hash: for a user's own data, the hash of its content (``UserData.content_hash``); None for built-ins.
    """

    name: str
    kind: DataKind
    shape: tuple[int, ...]
    levels: int | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    entropy_nats: float | None = None
    description: str = ""
    n_classes: int | None = None
    class_names: tuple[str, ...] | None = None
    content_hash: str | None = None

    @property
    def display_samples(self) -> int:
        """How many samples a run draws to show what it learned (a cloud of points, a grid of images)."""
        return DISPLAY_SAMPLES[self.kind]

    @property
    def dim(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


@dataclass
class Dataset:
    spec: DataSpec
    train: Tensor
    val: Tensor
    test: Tensor
    labels: dict[str, Tensor] = field(default_factory=dict)  # split name -> class labels, where the data has them
    factors: dict[str, dict[str, Tensor]] = field(default_factory=dict)  # split -> factor -> values, where known

    @property
    def factor_names(self) -> list[str]:
        """The generative factors known for every item, in display order (empty for most data sets)."""
        return list(self.factors.get("train", {}))


@dataclass(frozen=True)
class DataSource:
    name: str
    kind: DataKind
    description: str
    make: Callable[[int], tuple[dict[str, Tensor], dict[str, Tensor], dict]]  # seed -> splits, labels, spec extras


SOURCES: dict[str, DataSource] = {}
for _name, _description in toy2d.DESCRIPTIONS.items():
    SOURCES[_name] = DataSource(_name, "points2d", _description, lambda seed, n=_name: toy2d.make_splits(n, seed))
SOURCES["digits"] = DataSource(
    "digits", "image", digits.DESCRIPTION, lambda seed: digits.make_splits(seed, binary=False)
)
SOURCES["digits-binary"] = DataSource(
    "digits-binary", "image", digits.DESCRIPTION_BINARY, lambda seed: digits.make_splits(seed, binary=True)
)
SOURCES["shapes"] = DataSource("shapes", "image", shapes.DESCRIPTION, shapes.make_splits)
SOURCES["mnist"] = DataSource("mnist", "image", mnist.DESCRIPTION, lambda seed: mnist.make_splits(seed, binary=False))
SOURCES["mnist-binary"] = DataSource(
    "mnist-binary", "image", mnist.DESCRIPTION_BINARY, lambda seed: mnist.make_splits(seed, binary=True)
)


USER_SETS: dict[str, Dataset] = {}  # users' own data sets by name, registered by ``dgm_core.data.user.register``


def dataset_names() -> list[str]:
    """The built-in data sets (a user's own are known by name once registered: ``is_known``)."""
    return list(SOURCES)


def is_known(name: str) -> bool:
    return name in SOURCES or name in USER_SETS


def load_dataset(name: str, seed: int = 0) -> Dataset:
    """The fixed splits of data set ``name`` (the same seed gives the same tensors; a user's set has one split)."""
    if name in USER_SETS:
        return USER_SETS[name]
    return built_in_dataset(name, seed)


@lru_cache(maxsize=32)
def built_in_dataset(name: str, seed: int) -> Dataset:
    if name not in SOURCES:
        raise ValueError(f"Unknown data set {name!r}; choose one of: {', '.join(SOURCES)}")
    source = SOURCES[name]
    splits, labels, extras = source.make(seed)
    train = splits["train"]
    flat = train.reshape(len(train), -1)
    spec = DataSpec(
        name=name,
        kind=source.kind,
        shape=tuple(train.shape[1:]),
        levels=extras.get("levels"),
        mean=tuple(flat.mean(0).tolist()),
        std=tuple(flat.std(0).tolist()),
        entropy_nats=extras.get("entropy_nats"),
        n_classes=int(labels["train"].max()) + 1 if "train" in labels else None,
        class_names=extras.get("class_names"),
        description=source.description,
    )
    return Dataset(spec, splits["train"], splits["val"], splits["test"], labels, extras.get("factors", {}))
