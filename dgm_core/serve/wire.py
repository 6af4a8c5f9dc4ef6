"""Messages between the server and its training processes, without pickle: JSON for the structure, safetensors for
the tensors.

    data = encode(SliceReport(...))                  # bytes
    report = decode(data, {"SliceReport": SliceReport})

A message is nested dicts (string keys), lists, tuples, numbers, strings, None, tensors, and dataclasses of the kinds
the reader names; anything else is refused (``TypeError``) on either side. Layout: the JSON header's length (8 bytes,
little-endian), the header, then one safetensors blob holding every tensor (each a copy: safetensors refuses tensors
that share memory, as a state dict's and its snapshot's may).
"""

from __future__ import annotations

import dataclasses
import json
import struct

from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import Tensor

HEADER = struct.Struct("<Q")


def encode(message: object) -> bytes:
    tensors: dict[str, Tensor] = {}

    def tree(value: object) -> object:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, Tensor):
            name = str(len(tensors))
            tensors[name] = value.detach().cpu().clone().contiguous()
            return {"$tensor": name}
        if isinstance(value, tuple):
            return {"$tuple": [tree(item) for item in value]}
        if isinstance(value, list):
            return [tree(item) for item in value]
        if isinstance(value, dict) and all(isinstance(key, str) for key in value):
            return {"$dict": {key: tree(item) for key, item in value.items()}}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: tree(getattr(value, f.name)) for f in dataclasses.fields(value)}
            return {"$kind": type(value).__name__, "fields": fields}
        raise TypeError(f"a message cannot carry a {type(value).__name__}")

    header = json.dumps(tree(message)).encode()
    return HEADER.pack(len(header)) + header + save_tensors(tensors)


def decode(data: bytes, kinds: dict[str, type]) -> object:
    (length,) = HEADER.unpack_from(data)
    header = json.loads(data[HEADER.size : HEADER.size + length])
    tensors = load_tensors(data[HEADER.size + length :])

    def tree(value: object) -> object:
        if isinstance(value, list):
            return [tree(item) for item in value]
        if not isinstance(value, dict):
            return value
        if "$tensor" in value:
            return tensors[value["$tensor"]]
        if "$tuple" in value:
            return tuple(tree(item) for item in value["$tuple"])
        if "$dict" in value:
            return {key: tree(item) for key, item in value["$dict"].items()}
        kind = kinds.get(value.get("$kind"))
        if kind is None:
            raise TypeError(f"a message of an unknown kind: {str(value.get('$kind'))[:40]}")
        return kind(**{name: tree(item) for name, item in value["fields"].items()})

    return tree(header)
