"""Shared fixtures: the `vitrine` binary (VITRINE_BIN, set by scripts/test-python.sh) and a
tiny synthetic log prepared by `vitrine prepare`. Nothing is skipped: a missing binary
fails with the reason."""

import json
import os
import subprocess

import numpy as np
import pytest


def run(args, **kw):
    """Runs a command; fails the test with its stderr when it fails."""
    p = subprocess.run(args, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} exited {p.returncode}:\n{p.stderr[-4000:]}")
    return p


@pytest.fixture(scope="session")
def vitrine_bin():
    b = os.environ.get("VITRINE_BIN")
    if not b or not os.path.exists(b):
        pytest.fail(f"VITRINE_BIN={b!r} is not the vitrine binary: run scripts/test-python.sh (it builds it)")
    return b


def write_tiny_log(d, users=80, items=40, seed=7):
    """An events CSV with views, carts and purchases (each user browses a 'taste'
    neighbourhood of items) and an items CSV with titles, categories and prices."""
    rng = np.random.default_rng(seed)
    ev = ["user_id,item_id,timestamp,event_type"]
    for u in range(users):
        base = int(rng.integers(items))
        t = 1_300_000_000 + int(rng.integers(86400 * 30))
        for _ in range(int(rng.integers(4, 70))):
            it = (base + int(rng.integers(0, 6))) % items
            kind = ["view", "cart", "purchase"][int(rng.choice(3, p=[0.5, 0.2, 0.3]))]
            t += int(rng.integers(30, 86400 * 3))
            ev.append(f"u{u},i{it},{t},{kind}")
    with open(os.path.join(d, "events.csv"), "w") as f:
        f.write("\n".join(ev) + "\n")
    cats = ["mugs", "lamps", "bags", "cards"]
    it = ["item_id,title,category,price"]
    for i in range(items):
        price = "" if i % 7 == 0 else f"{1.5 + i * 0.75:.2f}"
        it.append(f"i{i},{['red', 'blue', 'green'][i % 3]} {cats[i % 4][:-1]} number {i},{cats[i % 4]},{price}")
    with open(os.path.join(d, "items.csv"), "w") as f:
        f.write("\n".join(it) + "\n")
    return ["--events", os.path.join(d, "events.csv"), "--items", os.path.join(d, "items.csv")]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, vitrine_bin):
    """The tiny log and its `vitrine prepare --quick` directory (two row groups at least)."""
    d = tmp_path_factory.mktemp("tiny")
    data = write_tiny_log(str(d))
    prep = d / "prepared"
    run([vitrine_bin, "prepare", *data, "--dir", str(prep), "--quick", "--force", "--users-per-row-group", "16"])
    return {"dir": d, "data": data, "prepared": prep}


def histories(n_items, seed=3):
    """Fixed histories: empty, one event, mixed kinds, longer than max_len (60 > 50 for
    the quick model), and gaps from seconds to months."""
    rng = np.random.default_rng(seed)
    out = [[], [{"item": 3, "kind": "purchase", "at": 1.3e9}]]
    for length in (5, 17, 60):
        t = 1.3e9
        h = []
        for _ in range(length):
            t += float(rng.choice([20.0, 4000.0, 90000.0, 5e6]))
            h.append({"item": int(rng.integers(n_items)), "kind": ["view", "cart", "purchase"][int(rng.integers(3))], "at": t})
        out.append(h)
    return out


def as_tuples(h):
    k = {"view": 0, "cart": 1, "purchase": 2}
    return [(e["item"], k[e["kind"]], e["at"]) for e in h]


def rust_scores(vitrine_bin, model, hs, tmp):
    path = os.path.join(tmp, "histories.json")
    with open(path, "w") as f:
        json.dump(hs, f)
    p = run([vitrine_bin, "score", "--model", str(model), "--histories", path])
    return json.loads(p.stdout)


def param_table(vitrine_bin, model):
    return json.loads(run([vitrine_bin, "param-table", "--model", str(model)]).stdout)
