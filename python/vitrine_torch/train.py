"""The PyTorch trainer: DistributedDataParallel over ``torchrun`` ranks (gloo on CPU,
NCCL on GPUs), the objective, optimiser and schedule of the Rust trainer
(``src/train/mod.rs``), early stopping on the same validation NDCG@10, checkpoint/resume,
the transition-memory blend search (``src/train/blend.rs``) and the weight file.

Objective per training window (a user's last ``max_len + 1`` events, or half of the time
for long sequences a random earlier window): at every position the next item is the
target of a softmax cross-entropy of ``u_t · v_j`` over the target and ``negatives`` items
sampled per step (all ranks draw the same sample), and at the last ``head_positions``
positions a softmax cross-entropy of the full head's logits over the target and
``head_negatives`` items; each term is a mean over the global batch weighted by the
target's kind. Adam (β = 0.9, 0.98), learning rate decaying linearly to 10% over the
planned epochs, global gradient norm clipped.

Launch: ``torchrun --nproc-per-node 2 -m vitrine_torch.train --prepared DIR --out F``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from typing import List, Optional

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from . import weights
from .data import read_plan, read_sequences, read_valid, row_groups_of
from .model import Memory, VitrineModel, gap_buckets


# -- distributed setup -----------------------------------------------------------------
class Dist:
    """Rank, world size, device; collectives that are no-ops in a single process."""

    def __init__(self, backend: str):
        # A process group set up by the launcher (Ray Train's TorchTrainer does) is used as
        # it is; otherwise torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) says.
        self.preset = dist.is_available() and dist.is_initialized()
        self.world = dist.get_world_size() if self.preset else int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = dist.get_rank() if self.preset else int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.preset:
            backend = dist.get_backend()
        elif backend == "auto":
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        self.backend = backend
        self.device = torch.device(f"cuda:{self.local_rank}" if backend == "nccl" else "cpu")
        if backend == "nccl":
            torch.cuda.set_device(self.device)
        self.on = self.world > 1
        if self.on and not self.preset:
            dist.init_process_group(backend=backend)

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        if self.on:
            x = x.to(self.device)
            dist.all_reduce(x, op=dist.ReduceOp.SUM)
        return x.cpu()

    def max(self, x: torch.Tensor) -> torch.Tensor:
        if self.on:
            x = x.to(self.device)
            dist.all_reduce(x, op=dist.ReduceOp.MAX)
        return x.cpu()

    def barrier(self):
        if self.on:
            dist.barrier()

    def close(self):
        if self.on and not self.preset:
            dist.destroy_process_group()


# -- batches ---------------------------------------------------------------------------
class Shard:
    """This rank's training sequences with their gap buckets."""

    def __init__(self, seqs, n_items: int, n_recency: int):
        self.all = seqs
        self.train = [s for s in seqs if len(s.items) >= 2 and int(s.items.max()) < n_items and int(s.items.min()) >= 0]
        self.gaps = [gap_buckets(s.ats, n_recency) for s in self.train]


def epoch_windows(shard: Shard, span: int, seed: int, epoch: int, rank: int) -> List[tuple]:
    """Windows ``(sequence, end)``: the whole sequence's last ``span`` events, or half of
    the time for longer ones a random earlier window; shuffled."""
    rng = np.random.default_rng([seed, epoch, rank])
    out = []
    for i, s in enumerate(shard.train):
        n = len(s.items)
        end = span + int(rng.integers(n - span + 1)) if n > span and rng.integers(2) == 0 else n
        out.append((i, end))
    rng.shuffle(out)
    return out


def make_batch(shard: Shard, windows, max_len: int, kind_weights, device):
    """Left-padded input and target tensors of a list of windows."""
    lens = [min(end - 1, max_len) for _, end in windows]
    L = max(lens + [1])
    B = len(windows)
    z = lambda dt=torch.long: torch.zeros(B, L, dtype=dt)
    items, kinds, gaps, tgt, tkind = z(), z(), z(), z(), z()
    lengths = torch.tensor(lens, dtype=torch.long)
    for b, ((i, end), n) in enumerate(zip(windows, lens)):
        s = shard.train[i]
        a = end - 1 - n
        items[b, L - n :] = torch.from_numpy(s.items[a : end - 1])
        kinds[b, L - n :] = torch.from_numpy(s.kinds[a : end - 1])
        gaps[b, L - n :] = torch.from_numpy(shard.gaps[i][a : end - 1])
        tgt[b, L - n :] = torch.from_numpy(s.items[a + 1 : end])
        tkind[b, L - n :] = torch.from_numpy(s.kinds[a + 1 : end])
    real = torch.arange(L)[None, :] >= (L - lengths)[:, None]
    w = torch.tensor(kind_weights, dtype=torch.float32)[tkind] * real
    return [t.to(device) for t in (items, kinds, gaps, lengths, tgt, w, real)]


class TrainStep(nn.Module):
    """The loss of one rank's share of a batch (wrapped by DDP so that its backward
    all-reduces the gradients)."""

    def __init__(self, model: VitrineModel, cfg: dict):
        super().__init__()
        self.model = model
        self.cfg = cfg

    def forward(self, items, kinds, gaps, lengths, tgt, w, real, cands, head_negs, scale_dot, scale_head):
        m, cfg = self.model, self.cfg
        v = m.item_vectors()
        y = m.encode(v, items, kinds, gaps, lengths, dropout=cfg["dropout"])
        L = items.shape[1]
        # Dot-product term over every real position.
        Y, T, W = y[real], tgt[real], w[real]
        if len(cands) == 0:
            logits = Y @ v.T
            ce = F.cross_entropy(logits, T, reduction="none")
        else:
            pos = (Y * v[T]).sum(-1, keepdim=True)
            neg = (Y @ v[cands].T).masked_fill(cands[None, :] == T[:, None], float("-inf"))
            ce = F.cross_entropy(torch.cat([pos, neg], 1), torch.zeros_like(T), reduction="none")
        dot_loss = (ce * W).sum() * scale_dot
        # Head term over the last head_positions positions of each window.
        hp = int(cfg["head_positions"])
        hmask = real & (torch.arange(L, device=items.device)[None, :] >= L - hp)
        Yh, Th, Wh = y[hmask], tgt[hmask], w[hmask]
        cand = torch.cat([v[Th][:, None, :], v[head_negs][None].expand(len(Th), -1, -1)], 1)
        lg = m.pair_logits(Yh, cand)
        lg = torch.cat([lg[:, :1], lg[:, 1:].masked_fill(head_negs[None, :] == Th[:, None], float("-inf"))], 1)
        ce_h = F.cross_entropy(lg, torch.zeros_like(Th), reduction="none")
        head_loss = (ce_h * Wh).sum() * scale_head
        return dot_loss + head_loss


# -- validation ------------------------------------------------------------------------
@torch.no_grad()
def ndcg10_sum(
    model: VitrineModel,
    cases,
    memory: Optional[Memory] = None,
    batch: int = 128,
    device=None,
    exclude_seen: bool = False,
):
    """Sum over ``cases`` of full-ranking NDCG@10 (pessimistic ties:
    ``r = 1 + #{c ≠ target : s_c ≥ s_target}``, NaN as −∞; with ``exclude_seen`` the
    history's items other than the target are not candidates), as ``vitrine eval``."""
    model.eval()
    v = model.item_vectors()
    total = 0.0
    for s in range(0, len(cases), batch):
        chunk = cases[s : s + batch]
        u = model.user_vectors([h for h, _ in chunk], v)
        lg = model.all_logits(u, v).cpu().numpy()
        if memory is not None:
            for b, (h, _) in enumerate(chunk):
                lg[b] += memory.term([e[0] for e in h], model.n_items)
        seen = [h for h, _ in chunk] if exclude_seen else None
        total += ndcg10_of_logits(lg, np.array([t for _, t in chunk]), seen)
    return total


def ndcg10_of_logits(lg: np.ndarray, targets: np.ndarray, seen=None) -> float:
    """Summed NDCG@10 of rows of logits against their targets (pessimistic ties); with
    ``seen`` (each row's history, ``[(item, kind, at)]``), the history's items other than
    the row's target are left out of the ranking (``Protocol::Full { exclude_seen }``)."""
    lg = np.where(np.isnan(lg), -np.inf, lg)
    st = lg[np.arange(len(targets)), targets]
    others = lg >= st[:, None]
    if seen is not None:
        for b, h in enumerate(seen):
            items = np.array([e[0] for e in h if e[0] != targets[b]], dtype=np.int64)
            others[b, items] = False
    r = others.sum(1)  # counts the target itself: r = 1 + others ≥
    return float(np.where(r <= 10, 1.0 / np.log2(r + 1.0), 0.0).sum())


def search_blend(model: VitrineModel, base: Memory, grid: dict, cases, exclude_seen: bool = False):
    """The blend search of ``src/train/blend.rs``: every ``last_l`` of the grid (repeats in
    a row tried once), every alpha; the chosen trial is the first strictly above both the
    deep part alone and every earlier trial. Returns ``(memory or None, trials, deep)``."""
    v = model.item_vectors()
    n = model.n_items
    deep = []
    with torch.no_grad():
        for s in range(0, len(cases), 128):
            chunk = cases[s : s + 128]
            deep.append(model.all_logits(model.user_vectors([h for h, _ in chunk], v), v).numpy())
    deep = np.concatenate(deep) if deep else np.zeros((0, n), np.float32)
    targets = np.array([t for _, t in cases])
    N = max(len(cases), 1)
    seen = [h for h, _ in cases] if exclude_seen else None
    deep_val = ndcg10_of_logits(deep, targets, seen) / N
    last_ls = []
    for l in grid["last_ls"]:
        if not last_ls or last_ls[-1] != l:
            last_ls.append(int(l))
    depth = max(last_ls + [1])
    lists = np.stack([base.lists([e[0] for e in h], n, depth) for h, _ in cases]) if cases else None
    decay = np.float32(grid["decay"])
    best, cur, trials = None, deep_val, []
    for last_l in last_ls:
        coef = np.array([decay**j for j in range(last_l)], dtype=np.float32)
        term = np.einsum("j,cjn->cn", coef, lists[:, :last_l]) if cases else 0
        for alpha in grid["alphas"]:
            val = ndcg10_of_logits(deep + np.float32(alpha) * term, targets, seen) / N
            trials.append({"alpha": float(alpha), "last_l": last_l, "val_ndcg10": val})
            if val > cur:
                cur, best = val, (float(alpha), last_l)
    if best is None:
        return None, trials, deep_val
    mem = Memory(base.offsets, base.items, base.weights, best[0], best[1], float(grid["decay"]))
    return mem, trials, deep_val


# -- the run ---------------------------------------------------------------------------
def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="vitrine-torch-train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--prepared", required=True, help="directory written by `vitrine prepare`")
    ap.add_argument("--out", required=True, help="weight file to write")
    ap.add_argument("--checkpoint-dir", help="save a checkpoint here after every epoch")
    ap.add_argument("--resume", action="store_true", help="continue from --checkpoint-dir's checkpoint")
    ap.add_argument("--backend", choices=["auto", "gloo", "nccl"], default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch threads per rank (0: cores / local ranks)")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--batch-size", type=int, help="global batch (windows per step, over all ranks)")
    ap.add_argument("--lr", type=float)
    ap.add_argument("--negatives", type=int)
    ap.add_argument("--patience", type=int)
    ap.add_argument("--max-steps", type=int, help="at most this many steps per epoch (smoke tests)")
    ap.add_argument("--report", help="write the training report as JSON here")
    return ap.parse_args(argv)


def log(d: Dist, *a):
    if d.rank == 0:
        print(*a, file=sys.stderr, flush=True)


def main(argv=None):
    args = parse_args(argv)
    d = Dist(args.backend)
    threads = args.threads or max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    torch.set_num_threads(threads)
    try:
        run(args, d)
    finally:
        d.close()


def run(args, d: Dist):
    plan = read_plan(args.prepared)
    cfg = dict(plan["train"])
    for k in ("epochs", "batch_size", "lr", "negatives", "patience"):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    init = weights.read(os.path.join(args.prepared, "init.vitrine"))
    model = VitrineModel.from_weight_file(init, plan["params"]).to(d.device)
    base_memory, model.memory = model.memory, None
    n, max_len, seed = model.n_items, model.max_len, int(cfg["seed"])

    seqs, rows = read_sequences(os.path.join(args.prepared, "train.parquet"), d.rank, d.world)
    shard = Shard(seqs, n, model.n_recency)
    groups = row_groups_of(os.path.join(args.prepared, "train.parquet"), d.rank, d.world)
    print(f"rank {d.rank} of {d.world} reads row groups {groups}: {len(shard.all)} users, {rows} rows "
          f"({d.backend}, {d.device})", file=sys.stderr, flush=True)
    valid = read_valid(os.path.join(args.prepared, "valid.json"))
    my_valid = valid[d.rank :: d.world]
    exclude_seen = bool(plan.get("valid_exclude_seen", False))  # plans before it: kept

    # Global facts: items seen in training (cold items) and the kinds that were inputs.
    seen = torch.zeros(n, dtype=torch.int32)
    for s in shard.all:
        it = s.items[(s.items >= 0) & (s.items < n)]
        seen[torch.from_numpy(it)] = 1
    seen = d.max(seen)
    kinds_in = torch.zeros(3, dtype=torch.int32)
    for s in shard.train:
        kinds_in[torch.from_numpy(np.unique(s.kinds[:-1]))] = 1
    kinds_in = d.max(kinds_in)
    trained_kinds = [k for k in range(3) if kinds_in[k]]

    step_mod = TrainStep(model, cfg)
    ddp = DDP(step_mod, broadcast_buffers=False) if d.on else step_mod
    decay_params, plain = [], []
    for s in model.specs:
        p = model.p(s.name)
        dense = len(s.shape) == 2 and not s.name.startswith(("item.", "user."))
        (decay_params if dense else plain).append(p)
    opt = torch.optim.Adam(
        [{"params": decay_params, "weight_decay": float(cfg["weight_decay"])}, {"params": plain, "weight_decay": 0.0}],
        lr=float(cfg["lr"]), betas=(0.9, 0.98), eps=1e-8,
    )
    per_rank = max(1, math.ceil(int(cfg["batch_size"]) / d.world))
    epochs = int(cfg["epochs"])
    kind_weights = [float(x) for x in cfg["kind_weights"]]

    report = {"epochs": [], "best_epoch": 0, "best_val_ndcg10": -math.inf}
    best_state, since_best, start_epoch = None, 0, 1
    ckpt_path = os.path.join(args.checkpoint_dir, "checkpoint.pt") if args.checkpoint_dir else None
    if args.resume:
        if not ckpt_path or not os.path.exists(ckpt_path):
            raise SystemExit(f"--resume: no checkpoint at {ckpt_path}")
        ck = torch.load(ckpt_path, map_location=d.device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optim"])
        best_state, since_best, report = ck["best"], ck["since_best"], ck["report"]
        start_epoch = ck["epoch"] + 1
        log(d, f"resumed after epoch {ck['epoch']} (best epoch {report['best_epoch']})")
    if since_best >= int(cfg["patience"]) and report["epochs"]:
        start_epoch = epochs + 1  # the checkpointed run had already stopped early

    total_pos, total_secs = 0, 0.0
    for epoch in range(start_epoch, epochs + 1):
        model.train()
        torch.manual_seed(seed * 1_000_003 + epoch * 101 + d.rank)
        lr = float(cfg["lr"]) * (1.0 - 0.9 * (epoch - 1) / max(epochs, 1))
        for g in opt.param_groups:
            g["lr"] = lr
        wins = epoch_windows(shard, max_len + 1, seed, epoch, d.rank)
        steps = int(d.max(torch.tensor([math.ceil(len(wins) / per_rank)])).item())
        if args.max_steps:
            steps = min(steps, args.max_steps)
        gen = torch.Generator().manual_seed(seed * 7919 + epoch)
        t0 = time.time()
        loss_sum, pos = 0.0, 0
        for st in range(steps):
            chunk = [wins[(st * per_rank + j) % len(wins)] for j in range(per_rank)] if wins else []
            cands = torch.randperm(n, generator=gen)[: int(cfg["negatives"])] if cfg["negatives"] else torch.zeros(0, dtype=torch.long)
            hn = torch.randperm(n, generator=gen)[: min(int(cfg["head_negatives"]), n)]
            if chunk:
                b = make_batch(shard, chunk, max_len, kind_weights, d.device)
            else:  # a rank without users still takes part in every collective
                b = make_batch(shard, [], max_len, kind_weights, d.device)
            real, w = b[6], b[5]
            hp = int(cfg["head_positions"])
            L = real.shape[1]
            hmask = real & (torch.arange(L, device=real.device)[None, :] >= L - hp)
            sums = d.sum(torch.tensor([float(w.sum()), float(w[hmask].sum()), float(real.sum())], dtype=torch.float64))
            inv = lambda x: d.world / x if x > 0 else 0.0  # DDP averages over ranks
            loss = ddp(*b, cands.to(d.device), hn.to(d.device), inv(float(sums[0])), inv(float(sums[1])))
            opt.zero_grad(set_to_none=False)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float(cfg["clip"]))
            if torch.isfinite(norm):
                opt.step()
            loss_sum += float(d.sum(loss.detach().double().cpu()[None])[0]) / d.world
            pos += int(sums[2])
        secs = time.time() - t0
        total_pos, total_secs = total_pos + pos, total_secs + secs
        val = float(d.sum(torch.tensor([ndcg10_sum(model, my_valid, exclude_seen=exclude_seen)], dtype=torch.float64))[0]) / max(len(valid), 1)
        report["epochs"].append(
            {"epoch": epoch, "loss": loss_sum / max(steps, 1), "val_ndcg10": val, "seconds": secs, "examples": pos}
        )
        log(d, f"epoch {epoch:>2}: loss {loss_sum / max(steps, 1):.4f}  val NDCG@10 {val:.4f}  {secs:.1f}s  {pos / max(secs, 1e-9):.0f} examples/s")
        if val > report["best_val_ndcg10"]:
            report["best_val_ndcg10"], report["best_epoch"] = val, epoch
            best_state = copy.deepcopy(model.state_dict())
            since_best = 0
        else:
            since_best += 1
        if ckpt_path and d.rank == 0:
            os.makedirs(args.checkpoint_dir, exist_ok=True)
            ck = {"epoch": epoch, "model": model.state_dict(), "optim": opt.state_dict(), "best": best_state,
                  "since_best": since_best, "report": report}
            torch.save(ck, ckpt_path + ".tmp")
            os.replace(ckpt_path + ".tmp", ckpt_path)
        d.barrier()
        if since_best >= int(cfg["patience"]):
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    report["examples_per_sec"] = total_pos / total_secs if total_secs > 0 else 0.0
    report["world_size"], report["backend"] = d.world, d.backend
    if d.rank == 0:
        finish(args, plan, cfg, init, model, base_memory, seen, trained_kinds, valid, report)
    d.barrier()


def finish(args, plan, cfg, init, model, base_memory, seen, trained_kinds, valid, report):
    """Cold items, trained kinds, the blend search, and the weight file (rank 0)."""
    model = model.cpu().eval()
    cold = (seen == 0).nonzero().flatten()
    with torch.no_grad():
        model.p("item.id")[cold] = 0.0
    report["cold_items"] = int(len(cold))
    model.set_trained_kinds(trained_kinds)
    mem, trials, deep_val = (None, [], None)
    if base_memory is not None:
        mem, trials, deep_val = search_blend(model, base_memory, plan["blend"], valid, bool(plan.get("valid_exclude_seen", False)))
        if mem:
            print(f"transition memory: alpha {mem.alpha} over the last {mem.last_l} event(s) "
                  f"(deep part alone {deep_val:.4f})", file=sys.stderr)
        else:
            print(f"transition memory: no blend beats the deep part alone ({deep_val:.4f}); not used", file=sys.stderr)
    tensors = dict(init.tensors)
    tensors.update(model.param_arrays())
    for k in [k for k in tensors if k.startswith("memory.")]:
        del tensors[k]
    if mem is not None:
        tensors["memory.offsets"] = mem.offsets.astype(np.int32)
        tensors["memory.items"] = mem.items.astype(np.int32)
        tensors["memory.weights"] = mem.weights.astype(np.float32)
        tensors["memory.blend"] = np.array([mem.alpha, mem.last_l, mem.decay], dtype=np.float32)
    kind_names = [weights.KINDS[k] for k in trained_kinds]
    md = copy.deepcopy(init.metadata)
    md["training"] = dict(md.get("training") or {})
    md["training"].update({
        "trainer": "vitrine_torch (PyTorch DDP)",
        "torch": torch.__version__,
        "world_size": report["world_size"],
        "backend": report["backend"],
        "epochs": report["epochs"],
        "best_epoch": report["best_epoch"],
        "examples_per_sec": report["examples_per_sec"],
        "cold_items": report["cold_items"],
        "kinds": {"trained": kind_names, "target": plan.get("target_kind"),
                  "weights": dict(zip(weights.KINDS, cfg["kind_weights"]))},
        "config": cfg,
        "blend": {"trials": trials, "deep_val_ndcg10": deep_val},
    })
    md["metrics"] = {"validation": {"NDCG@10": report["best_val_ndcg10"], "cases": len(valid)}}
    if kind_names:
        md["trained_kinds"] = kind_names
    h = weights.write(args.out, weights.WeightFile(tensors=tensors, metadata=md, extra_metadata=init.extra_metadata))
    report["content_hash"] = h
    report["memory"] = None if mem is None else {"alpha": mem.alpha, "last_l": mem.last_l, "decay": mem.decay}
    print(f"wrote {args.out} (best epoch {report['best_epoch']}, val NDCG@10 {report['best_val_ndcg10']:.4f}, "
          f"{report['examples_per_sec']:.0f} examples/s over {report['world_size']} rank(s))", file=sys.stderr)
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
