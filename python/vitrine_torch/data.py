"""The prepared data of ``vitrine prepare`` (the Rust CLI reads the raw log — Online
Retail CSV, events CSV, Parquet directories —, cleans it, builds the catalog, the item
features and the split exactly as ``vitrine train`` does, and writes them here):

- ``train.parquet``: one row per training event (``user``, ``item``, ``kind``, ``at``),
  whole users per row group. Rank ``r`` of ``w`` reads only row groups ``r, r+w, ...``
  (pyarrow reads those row groups and the four columns, nothing else).
- ``valid.json``: the validation cases early stopping is measured on.
- ``plan.json``: model and training configuration, parameter table, blend grid.
- ``init.vitrine``: the initialised model with catalog and features.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np
import pyarrow.parquet as pq

COLUMNS = ["user", "item", "kind", "at"]


@dataclass
class Sequence:
    """One user's training events, oldest first."""

    user: int
    items: np.ndarray  # int64
    kinds: np.ndarray  # int64
    ats: np.ndarray  # float64


def row_groups_of(path: str, rank: int, world: int) -> List[int]:
    """The row groups rank ``rank`` of ``world`` reads (round robin)."""
    n = pq.ParquetFile(path).num_row_groups
    return list(range(rank, n, world))


def read_sequences(path: str, rank: int = 0, world: int = 1) -> Tuple[List[Sequence], int]:
    """This rank's users (whole sequences) from ``train.parquet``; returns them and the
    number of rows read."""
    f = pq.ParquetFile(path)
    missing = [c for c in COLUMNS if c not in f.schema_arrow.names]
    if missing:
        raise ValueError(f"{path}: missing columns {missing} (written by `vitrine prepare`?)")
    groups = row_groups_of(path, rank, world)
    if not groups:
        return [], 0
    t = f.read_row_groups(groups, columns=COLUMNS)
    user = t.column("user").to_numpy().astype(np.int64)
    item = t.column("item").to_numpy().astype(np.int64)
    kind = t.column("kind").to_numpy().astype(np.int64)
    at = t.column("at").to_numpy().astype(np.float64)
    if len(user) and np.any(np.diff(user) < 0):
        raise ValueError(f"{path}: users are not in order within the row groups")
    cuts = np.flatnonzero(np.diff(user)) + 1
    seqs = []
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(user)]):
        if b > a:
            seqs.append(Sequence(int(user[a]), item[a:b], kind[a:b], at[a:b]))
    return seqs, len(user)


def read_valid(path: str):
    """Validation cases: ``(history as [(item, kind, at)], target)``."""
    kinds = {"view": 0, "cart": 1, "purchase": 2}
    with open(path) as f:
        raw = json.load(f)
    return [([(int(e["item"]), kinds[e["kind"]], float(e["at"])) for e in c["history"]], int(c["target"])) for c in raw]


def read_plan(prepared: str) -> dict:
    with open(os.path.join(prepared, "plan.json")) as f:
        plan = json.load(f)
    if plan.get("format") != 1:
        raise ValueError(f"{prepared}/plan.json: unknown format {plan.get('format')!r}")
    return plan
