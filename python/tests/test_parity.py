"""One model, two implementations: a Rust-trained file scored by PyTorch, and a
PyTorch-trained file served by the Rust runtime, agree within 1e-4."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from vitrine_torch import VitrineModel, read, write
from vitrine_torch.model import gap_bucket
from vitrine_torch.train import ndcg10_of_logits

from conftest import as_tuples, histories, param_table, run, rust_scores

TOL = 1e-4


def load(vitrine_bin, path):
    wf = read(path)
    table = param_table(vitrine_bin, path)
    assert table["config"] == wf.metadata["model"]
    return wf, VitrineModel.from_weight_file(wf, table["params"]).eval()


def top_k_unseen(logits, history, k=10):
    """PyTorch's top-k with recommend()'s default options: items in the history
    excluded, ties by catalog index."""
    seen = {e["item"] for e in history}
    order = sorted((i for i in range(len(logits)) if i not in seen), key=lambda i: (-logits[i], i))
    return order[:k]


def check_parity(vitrine_bin, model, path, tmp):
    hs = histories(model.n_items)
    rust = rust_scores(vitrine_bin, path, hs, tmp)
    u = model.user_vectors([as_tuples(h) for h in hs]).numpy()
    lg = model.logits([as_tuples(h) for h in hs])
    for b, h in enumerate(hs):
        du = np.abs(u[b] - np.array(rust[b]["u"], dtype=np.float32)).max()
        dl = np.abs(lg[b] - np.array(rust[b]["logits"], dtype=np.float32)).max()
        assert du < TOL, f"history {b}: user vectors differ by {du}"
        assert dl < TOL, f"history {b}: logits differ by {dl}"
        if not h:
            continue  # recommend() answers an empty history with popularity, not the model
        top = top_k_unseen(lg[b], h)
        got = [r["index"] for r in rust[b]["recommend"]]
        assert got == top, f"history {b}: recommend() {got} vs PyTorch {top}"
        scores = 1.0 / (1.0 + np.exp(-lg[b][top].astype(np.float64)))
        ds = np.abs(scores - np.array([r["score"] for r in rust[b]["recommend"]])).max()
        assert ds < TOL, f"history {b}: scores differ by {ds}"
    return rust


def test_gap_buckets_follow_the_rust_definition():
    assert gap_bucket(None, 5.0, 16) == 0
    assert gap_bucket(0.0, 60.0, 16) == 1
    assert gap_bucket(0.0, 3600.0 * 24, 16) > gap_bucket(0.0, 3600.0, 16)
    assert gap_bucket(0.0, 1e12, 16) == 15
    assert gap_bucket(10.0, 0.0, 16) == 1


def test_ndcg_leaves_the_history_out_when_asked():
    """Hand-counted ranks, as `Protocol::Full { exclude_seen }` in src/eval.rs."""
    lg = np.array([[3.0, 2.0, 1.0, 0.0], [np.nan, -np.inf, 5.0, 5.0]], dtype=np.float32)
    targets = np.array([2, 1])
    # Kept: ranks 3 (items 0 and 1 above) and 4 (the tied 5s and −∞ itself; NaN is −∞).
    kept = 1 / np.log2(4) + 1 / np.log2(5)
    assert ndcg10_of_logits(lg, targets) == pytest.approx(kept)
    # Excluded: row 0's history [0, 2] leaves item 0 out (2 is its target): rank 2; row
    # 1's [2, 3, 1] leaves both 5s out: rank 2 (the NaN item, −∞, ties it).
    seen = [[(0, 2, 0.0), (2, 2, 1.0)], [(2, 2, 0.0), (3, 2, 1.0), (1, 2, 2.0)]]
    assert ndcg10_of_logits(lg, targets, seen) == pytest.approx(2 / np.log2(3))


@pytest.fixture(scope="module")
def rust_file(tiny, vitrine_bin):
    out = tiny["dir"] / "rust.vitrine"
    run([vitrine_bin, "train", *tiny["data"], "--quick", "--epochs", "2", "--force",
         "--out", str(out), "--artifacts", str(tiny["dir"] / "rust-artifacts")])
    return out


def test_rust_trained_file_scores_the_same_in_pytorch(rust_file, vitrine_bin, tmp_path):
    _, model = load(vitrine_bin, rust_file)
    rust = check_parity(vitrine_bin, model, rust_file, str(tmp_path))
    assert any(np.abs(r["u"]).max() > 0 for r in rust), "every user vector is zero"


def test_ligr_blocks_score_the_same_in_pytorch(tiny, vitrine_bin, tmp_path):
    """`vitrine train --blocks ligr` (gated residuals, SwiGLU feed-forward layers): the
    file's extra tensors load by name and PyTorch's encoder matches Rust's."""
    out = tmp_path / "ligr.vitrine"
    run([vitrine_bin, "train", *tiny["data"], "--quick", "--epochs", "2", "--force", "--blocks", "ligr",
         "--out", str(out), "--artifacts", str(tmp_path / "ligr-artifacts")])
    wf, model = load(vitrine_bin, out)
    assert wf.metadata["model"]["gated"] and wf.metadata["model"]["swiglu"]
    assert model.gated and model.swiglu
    assert "block0.gate_attn.w" in wf.tensors and "block0.ffn.w3" in wf.tensors
    check_parity(vitrine_bin, model, out, str(tmp_path))


def test_memory_blend_and_python_writer(rust_file, tiny, vitrine_bin, tmp_path):
    """The transition memory term: the Rust file with init.vitrine's neighbour lists and a
    blend set, written by the Python writer, loads in Rust and scores the same."""
    wf = read(rust_file)
    wf_crc = wf.metadata["data_crc32"]
    init = read(tiny["prepared"] / "init.vitrine")
    assert "memory.offsets" in init.tensors, "vitrine prepare wrote no memory lists"
    assert len(init.tensors["memory.items"]) > 0
    for k in ("memory.offsets", "memory.items", "memory.weights"):
        wf.tensors[k] = init.tensors[k]
    wf.tensors["memory.blend"] = np.array([4.0, 2.0, 0.5], dtype=np.float32)
    path = tmp_path / "blend.vitrine"
    write(path, wf)
    _, model = load(vitrine_bin, path)
    assert model.memory is not None and model.memory.alpha == 4.0 and model.memory.last_l == 2
    base = VitrineModel.from_weight_file(read(rust_file), param_table(vitrine_bin, rust_file)["params"])
    base.memory = None
    hs = [as_tuples(h) for h in histories(model.n_items)]
    moved = np.abs(model.logits(hs) - base.logits(hs)).max()
    assert moved > 1e-3, "the memory term changed nothing: the test would not see it"
    check_parity(vitrine_bin, model, path, str(tmp_path))
    # The writer's checksum (docs/weight-format.md: CRC-32 of the content hash's digits,
    # then the data section) is what the Rust loader checks: the file above loaded; one
    # byte changed in its data section is refused as a checksum mismatch.
    md = read(path).metadata
    assert len(md["data_crc32"]) == 8 and md["data_crc32"] != wf_crc, "the writer re-sealed nothing"
    bad = bytearray(path.read_bytes())
    bad[-3] ^= 0x40
    flipped = tmp_path / "flipped.vitrine"
    flipped.write_bytes(bytes(bad))
    hs = histories(model.n_items)[:1]
    with open(tmp_path / "one.json", "w") as f:
        json.dump(hs, f)
    p = subprocess.run(
        [vitrine_bin, "score", "--model", str(flipped), "--histories", str(tmp_path / "one.json")],
        capture_output=True,
        text=True,
    )
    assert p.returncode != 0 and "checksum mismatch" in p.stderr, p.stderr[-2000:]


def test_pytorch_trained_file_serves_the_same_top10_in_rust(tiny, vitrine_bin, tmp_path):
    out = tmp_path / "torch.vitrine"
    report = tmp_path / "report.json"
    p = subprocess.run([sys.executable, "-m", "vitrine_torch.train", "--prepared", str(tiny["prepared"]),
                        "--out", str(out), "--epochs", "2", "--threads", "1", "--report", str(report)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-4000:]
    rep = json.loads(report.read_text())
    assert [e["epoch"] for e in rep["epochs"]] == [1, 2]
    assert rep["epochs"][0]["examples"] > 0
    inspect = run([vitrine_bin, "inspect", str(out)]).stdout
    assert "vitrine_torch" in inspect or "user.kind" in inspect
    wf, model = load(vitrine_bin, out)
    assert wf.metadata["training"]["trainer"].startswith("vitrine_torch")
    assert wf.metadata["trained_kinds"] == ["view", "cart", "purchase"]
    init = read(tiny["prepared"] / "init.vitrine")
    moved = max(np.abs(wf.tensors[s.name] - init.tensors[s.name]).max() for s in model.specs)
    assert moved > 1e-3, "training did not move the parameters"
    check_parity(vitrine_bin, model, out, str(tmp_path))


def test_reader_rejects_a_file_without_vitrine_metadata(tmp_path):
    from safetensors.numpy import save_file
    from vitrine_torch import WeightFileError

    path = tmp_path / "plain.safetensors"
    save_file({"x": np.zeros(3, dtype=np.float32)}, str(path))
    with pytest.raises(WeightFileError, match="no vitrine metadata"):
        read(path)
