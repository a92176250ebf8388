"""The distributed path: a 2-process gloo torchrun run of the tiny model (each rank
reads only its own row groups) writes a file the Rust CLI loads and evaluates; a
checkpointed run resumed after its first epoch ends with the same weights as an
uninterrupted one."""

import json
import re
import subprocess
import sys

import pyarrow.parquet as pq

from vitrine_torch import read

from conftest import run


def train(args, tmp_path, name):
    p = subprocess.run([sys.executable, "-m", "vitrine_torch.train", *args], capture_output=True, text=True)
    assert p.returncode == 0, f"{name}: {p.stderr[-4000:]}"
    return p


def test_two_process_gloo_run_writes_a_file_rust_loads(tiny, vitrine_bin, tmp_path):
    out = tmp_path / "ddp.vitrine"
    report = tmp_path / "ddp.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc-per-node", "2",
           "-m", "vitrine_torch.train", "--prepared", str(tiny["prepared"]), "--out", str(out),
           "--backend", "gloo", "--threads", "1", "--epochs", "2", "--max-steps", "3", "--report", str(report)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-4000:]
    rep = json.loads(report.read_text())
    assert rep["world_size"] == 2 and rep["backend"] == "gloo"
    # Each rank read its own row groups: disjoint, together all of them.
    groups = {int(r): json.loads(g) for r, g in re.findall(r"rank (\d) of 2 reads row groups (\[[0-9, ]*\])", p.stderr)}
    assert sorted(groups) == [0, 1], p.stderr[-2000:]
    n = pq.ParquetFile(str(tiny["prepared"] / "train.parquet")).num_row_groups
    assert n >= 2
    assert not set(groups[0]) & set(groups[1])
    assert sorted(groups[0] + groups[1]) == list(range(n))
    # The Rust CLI loads and evaluates the file on the same data.
    ev = run([vitrine_bin, "eval", *tiny["data"], "--model", str(out), "--protocol", "full"]).stdout
    assert re.search(r"model \(deep \+ memory\) \|", ev), ev


def test_resume_after_an_epoch_gives_the_same_weights(tiny, tmp_path):
    common = ["--prepared", str(tiny["prepared"]), "--threads", "1", "--max-steps", "2"]
    straight = tmp_path / "straight.vitrine"
    train([*common, "--epochs", "2", "--out", str(straight), "--patience", "5"], tmp_path, "straight")
    ck = tmp_path / "ck"
    first = tmp_path / "first.vitrine"
    train([*common, "--epochs", "1", "--out", str(first), "--checkpoint-dir", str(ck), "--patience", "5"], tmp_path, "first")
    assert (ck / "checkpoint.pt").exists()
    resumed = tmp_path / "resumed.vitrine"
    p = train([*common, "--epochs", "2", "--out", str(resumed), "--checkpoint-dir", str(ck), "--resume",
               "--patience", "5"], tmp_path, "resumed")
    assert "resumed after epoch 1" in p.stderr
    a, b = read(straight), read(resumed)
    assert [e["epoch"] for e in b.metadata["training"]["epochs"]] == [1, 2]
    assert a.metadata["content_hash"] == b.metadata["content_hash"]
    assert read(first).metadata["content_hash"] != a.metadata["content_hash"], "epoch 2 changed nothing"
