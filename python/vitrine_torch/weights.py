"""vitrine's weight file (docs/weight-format.md) through ``safetensors``.

Reading: every tensor as a NumPy array (``F16`` and ``I8`` + ``.scale`` dequantised to
``float32``, as the Rust reader does) and the ``__metadata__["vitrine"]`` JSON document.
Writing: ``safetensors.numpy.save`` with the metadata the Rust loader validates; the
``content_hash`` (SHA-256 of the data section) is computed from the bytes safetensors
lays out, which do not depend on the metadata, so a second serialisation with the hash
filled in has the same data section.

Tensor names and shapes of the model's parameters are not written down here: they come
from the parameter table that the Rust CLI generates from ``param_table`` (``vitrine
param-table --model FILE``, or ``plan.json`` of ``vitrine prepare``), the table listed in
docs/weight-format.md.
"""

from __future__ import annotations

import hashlib
import zlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save as st_save

# Versions read. 1 keeps the item catalogue in the metadata's ``items``; 2 in the ``catalog``
# U8 tensor (docs/weight-format.md), which this package passes through unchanged.
FORMAT_VERSIONS = (1, 2)
CATALOG_TENSOR = "catalog"
KINDS = ("view", "cart", "purchase")


class WeightFileError(ValueError):
    """A weight file this package cannot read or write."""


@dataclass
class ParamSpec:
    """One parameter tensor of the table: its weight-file name and shape."""

    name: str
    shape: List[int]


@dataclass
class WeightFile:
    """A weight file in memory: tensors by name and the vitrine metadata object."""

    tensors: Dict[str, np.ndarray]
    metadata: dict
    extra_metadata: Dict[str, str] = field(default_factory=dict)


def param_specs(table) -> List[ParamSpec]:
    """The parameter table from its JSON form (``[{"name", "shape"}, ...]``)."""
    specs = [ParamSpec(str(p["name"]), [int(x) for x in p["shape"]]) for p in table]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise WeightFileError("the parameter table names a tensor twice")
    return specs


def read(path: str | os.PathLike) -> WeightFile:
    """Reads a weight file; dequantises ``F16``/``I8`` tensors to ``float32``."""
    with safe_open(os.fspath(path), framework="numpy") as f:
        meta = f.metadata() or {}
        raw = {k: f.get_tensor(k) for k in f.keys()}
    if "vitrine" not in meta:
        raise WeightFileError(f"{path}: no vitrine metadata")
    md = json.loads(meta["vitrine"])
    if md.get("format_version") not in FORMAT_VERSIONS:
        raise WeightFileError(f"{path}: format_version {md.get('format_version')!r}, expected one of {FORMAT_VERSIONS}")
    if md["format_version"] >= 2 and CATALOG_TENSOR not in raw:
        raise WeightFileError(f"{path}: a version 2 file without its `{CATALOG_TENSOR}` tensor")
    tensors: Dict[str, np.ndarray] = {}
    for name, arr in raw.items():
        if arr.dtype == np.int8:
            scale = raw.get(name + ".scale")
            if scale is None:
                raise WeightFileError(f"{path}: int8 tensor {name} has no .scale")
            tensors[name] = arr.astype(np.float32) * scale.astype(np.float32)[..., None]
        elif name.endswith(".scale") and raw.get(name[: -len(".scale")]) is not None and raw[name[: -len(".scale")]].dtype == np.int8:
            continue
        elif arr.dtype == np.float16:
            tensors[name] = arr.astype(np.float32)
        else:
            tensors[name] = arr
    extra = {k: v for k, v in meta.items() if k != "vitrine"}
    return WeightFile(tensors=tensors, metadata=md, extra_metadata=extra)


def _data_section(blob: bytes) -> bytes:
    (n,) = struct.unpack("<Q", blob[:8])
    return blob[8 + n :]


def to_bytes(wf: WeightFile) -> bytes:
    """Serialises ``wf`` as an ``f32`` vitrine weight file with its ``content_hash`` and
    ``data_crc32``."""
    tensors = {}
    for name, arr in wf.tensors.items():
        a = np.ascontiguousarray(arr)
        if a.dtype not in (np.float32, np.int32, np.uint8):
            raise WeightFileError(f"tensor {name}: dtype {a.dtype} (f32, i32 or u8 expected)")
        if a.dtype == np.float32 and not np.isfinite(a).all():
            raise WeightFileError(f"tensor {name} holds a non-finite value")
        tensors[name] = a
    md = dict(wf.metadata)
    # The version the catalogue's place says: its section (2), else the metadata (1).
    md["format_version"] = 2 if CATALOG_TENSOR in tensors else 1
    md["quantization"] = "f32"
    md["content_hash"] = ""
    first = st_save(tensors, metadata={**wf.extra_metadata, "vitrine": json.dumps(md)})
    data = _data_section(first)
    md["content_hash"] = hashlib.sha256(data).hexdigest()
    # What readers check on load (docs/weight-format.md): CRC-32 of the hash's digits,
    # then of the data section.
    md["data_crc32"] = f"{zlib.crc32(data, zlib.crc32(md['content_hash'].encode('ascii'))):08x}"
    blob = st_save(tensors, metadata={**wf.extra_metadata, "vitrine": json.dumps(md)})
    if _data_section(blob) != _data_section(first):
        raise WeightFileError("safetensors laid the data out differently twice")
    return blob


def catalog_ids(wf: WeightFile) -> List[str]:
    """The store's item ids, in catalogue order: the metadata's ``items.ids`` (version 1)
    or the first column of the ``catalog`` section (version 2: ``n_items`` strings, each a
    LEB128 length and that many bytes of UTF-8)."""
    if CATALOG_TENSOR not in wf.tensors:
        return list(wf.metadata["items"]["ids"])
    data = bytes(np.asarray(wf.tensors[CATALOG_TENSOR], dtype=np.uint8))
    n = int(wf.metadata["model"]["n_items"])
    ids, at = [], 0
    for i in range(n):
        length, shift = 0, 0
        while True:
            if at >= len(data) or shift > 28:
                raise WeightFileError(f"catalog section: item {i}'s id length is cut short")
            b = data[at]
            at += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        if at + length > len(data):
            raise WeightFileError(f"catalog section: item {i}'s id is cut short")
        ids.append(data[at : at + length].decode("utf-8"))
        at += length
    return ids


def write(path: str | os.PathLike, wf: WeightFile) -> str:
    """Writes ``wf`` to ``path`` (atomically: a temporary file, then a rename); returns
    the content hash."""
    blob = to_bytes(wf)
    tmp = os.fspath(path) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(json.loads(blob[8 : 8 + n])["__metadata__"]["vitrine"])["content_hash"]


def closest_trained(kind: int, trained: List[int]) -> int:
    """The trained kind whose ``user.kind`` row ``kind`` reads: the nearest in the funnel
    view → cart → purchase, a tie going toward purchase (``src/model/kinds.rs``)."""
    return min(trained, key=lambda t: (abs(kind - t), -t))


def kind_rows_map(trained: List[int]) -> List[int]:
    """For every kind index, the row it reads under ``trained`` (sorted kind indices)."""
    return [closest_trained(k, trained) if trained else k for k in range(len(KINDS))]
