"""A nest of dicts, lists and scalars holding tensors (an optimizer's ``state_dict``) as JSON plus named tensors, so
that a run's whole training state fits a safetensors file and a JSON config, never a pickle.

    tensors = {}
    meta = pack(optimizer.state_dict(), "optimizer.0", tensors)   # JSON-able; tensors filled in
    optimizer.load_state_dict(unpack(meta, tensors))              # ValueError for anything pack cannot have written
"""

from __future__ import annotations

from torch import Tensor


def pack(value: object, name: str, tensors: dict[str, Tensor]) -> object:
    """A nest of dicts, lists and scalars (an optimizer's state) as JSON, its tensors moved into ``tensors`` under
    names starting with ``name``; dict keys keep their type (optimizers key their state by parameter index)."""
    if isinstance(value, Tensor):
        tensors[name] = value
        return {"tensor": name}
    if isinstance(value, dict):
        return {"dict": [[key, pack(item, f"{name}.{key}", tensors)] for key, item in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"list": [pack(item, f"{name}.{i}", tensors) for i, item in enumerate(value)]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    raise TypeError(f"cannot store a {type(value).__name__} in a run's state")


def unpack(packed: object, tensors: dict[str, Tensor], depth: int = 0) -> object:
    """Undo ``pack``; ValueError for anything that ``pack`` cannot have written (or nests deeper than 8)."""
    if depth > 8 or not isinstance(packed, dict) or len(packed) != 1:
        raise ValueError("a packed state entry must be a one-key object, at most 8 deep")
    ((kind, content),) = packed.items()
    if kind == "tensor" and isinstance(content, str) and content in tensors:
        return tensors[content]
    pairs = isinstance(content, list) and all(
        isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], (int, str)) for pair in content
    )
    if kind == "dict" and pairs:
        return {key: unpack(item, tensors, depth + 1) for key, item in content}
    if kind == "list" and isinstance(content, list):
        return [unpack(item, tensors, depth + 1) for item in content]
    if kind == "value" and (content is None or isinstance(content, (bool, int, float, str))):
        return content
    raise ValueError(f"a packed state entry of kind {kind!r} is malformed")
