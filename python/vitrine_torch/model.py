"""vitrine's model in PyTorch: the same definition as ``src/model/`` (see its module doc).

- Item encoder: ``v_i = id_i + cat[c_i] + mean(tok[t] for t in title_i) + price_i·P₀ +
  missing_i·P₁``.
- User encoder (SASRec-style, pre-layer-norm, causal): input ``x_t = v_{item_t} +
  pos[L-1-t] + kind[k_t] + gap[g_t]``; ``n_blocks`` blocks of multi-head causal
  self-attention and a ReLU feed-forward layer with residuals (dropout on the input, the
  attention output and the feed-forward output at training time only); a final layer
  norm; the user vector is the output at the last position.
- Head: ``logit_i = u·v_i + MLP([u, v_i, u⊙v_i])`` (Dense→ReLU per hidden width, then
  Dense→1), ``head.w1`` stacked ``W₁ᵤ; W₁ᵥ; W₁ₚ``.
- Transition memory (the "wide" part): ``alpha · Σ_{j<last_l} decay^j · w(h_j → i)`` over
  the most recent history events, added to the logit.

Parameter names and shapes come from the parameter table (``param_table`` in Rust, passed
in as JSON), never from this file; the forward pass refers to the tensors by their role.
Histories are batched left-padded: a history of ``len`` events sits at positions
``L-len .. L-1``, so position ``t`` reads ``pos[L-1-t]``, the row Rust reads.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .weights import ParamSpec, WeightFile, kind_rows_map, KINDS

LN_EPS = 1e-5


def gap_bucket(prev: Optional[float], at: float, n_buckets: int) -> int:
    """Recency bucket (``src/model/mod.rs::gap_bucket``): 0 for the first event, else
    ``1 + floor(log2(1 + hours))`` capped at ``n_buckets - 1`` (1 for a negative or
    non-finite gap)."""
    if prev is None:
        return 0
    hours = (at - prev) / 3600.0
    if not math.isfinite(hours) or hours < 0.0:
        return 1
    return min(1 + int(math.floor(math.log2(1.0 + hours))), n_buckets - 1)


def gap_buckets(ats: np.ndarray, n_buckets: int) -> np.ndarray:
    """``gap_bucket`` of every event of one time-ordered sequence (vectorised)."""
    out = np.zeros(len(ats), dtype=np.int64)
    if len(ats) > 1:
        hours = (ats[1:] - ats[:-1]) / 3600.0
        with np.errstate(invalid="ignore", divide="ignore"):
            b = 1 + np.floor(np.log2(1.0 + np.where(np.isfinite(hours) & (hours >= 0), hours, 0.0)))
        b = np.minimum(b, n_buckets - 1).astype(np.int64)
        b[~(np.isfinite(hours) & (hours >= 0))] = 1
        out[1:] = b
    return out


class Memory:
    """The transition memory: CSR neighbour lists and the blend parameters."""

    def __init__(self, offsets, items, weights, alpha: float, last_l: int, decay: float):
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.items = np.asarray(items, dtype=np.int64)
        self.weights = np.asarray(weights, dtype=np.float32)
        self.alpha = float(alpha)
        self.last_l = int(last_l)
        self.decay = float(decay)

    def row(self, item: int) -> Tuple[np.ndarray, np.ndarray]:
        """Neighbours and weights of ``item`` (empty outside the catalog)."""
        if item < 0 or item + 1 >= len(self.offsets):
            return self.items[:0], self.weights[:0]
        a, b = self.offsets[item], self.offsets[item + 1]
        return self.items[a:b], self.weights[a:b]

    def lists(self, history_items: Sequence[int], n_items: int, depth: int) -> np.ndarray:
        """``[depth × n_items]``: row ``j`` holds ``w(h_j → ·)`` for the ``j``-th most
        recent history event (zeros past the history)."""
        out = np.zeros((depth, n_items), dtype=np.float32)
        for j, it in enumerate(list(history_items)[::-1][:depth]):
            nb, w = self.row(int(it))
            np.add.at(out[j], nb, w)
        return out

    def term(self, history_items: Sequence[int], n_items: int) -> np.ndarray:
        """``alpha · Σ_{j<last_l} decay^j · w(h_j → i)`` for every item (f32, in the order
        Rust adds the terms)."""
        out = np.zeros(n_items, dtype=np.float32)
        if self.alpha == 0.0:
            return out
        w = np.float32(self.alpha)
        for it in list(history_items)[::-1][: self.last_l]:
            nb, x = self.row(int(it))
            for j, xv in zip(nb, x):
                out[j] += w * xv
            w = np.float32(w * np.float32(self.decay))
        return out


class VitrineModel(nn.Module):
    """The model over one catalog: parameters (named by the table) and item features."""

    def __init__(self, config: dict, specs: List[ParamSpec], features: Dict[str, np.ndarray]):
        super().__init__()
        self.config = dict(config)
        self.specs = list(specs)
        self.d = int(config["dim"])
        self.n_items = int(config["n_items"])
        self.n_heads = int(config["n_heads"])
        self.n_blocks = int(config["n_blocks"])
        self.max_len = int(config["max_len"])
        self.mlp_hidden = [int(h) for h in config["mlp_hidden"]]
        self.n_recency = int(config["n_recency_buckets"])
        # Gated residuals and SwiGLU feed-forward layers (LiGR blocks); absent: off.
        self.gated = bool(config.get("gated", False))
        self.swiglu = bool(config.get("swiglu", False))
        self.params = nn.ParameterDict(
            {self._key(s.name): nn.Parameter(torch.zeros(s.shape, dtype=torch.float32)) for s in self.specs}
        )
        self.register_buffer("f_category", torch.as_tensor(features["features.category"].astype(np.int64)))
        self.register_buffer("f_price", torch.as_tensor(features["features.price"].astype(np.float32)))
        self.register_buffer(
            "f_missing", torch.as_tensor(features["features.price_missing"].astype(np.float32))
        )
        self.register_buffer(
            "f_tok_offsets", torch.as_tensor(features["features.token_offsets"].astype(np.int64))
        )
        self.register_buffer("f_tokens", torch.as_tensor(features["features.tokens"].astype(np.int64)))
        self.memory: Optional[Memory] = None
        self.trained_kinds: Optional[List[int]] = None

    # -- parameters -------------------------------------------------------------------
    @staticmethod
    def _key(name: str) -> str:
        return name.replace(".", "__")

    def p(self, name: str) -> torch.Tensor:
        """The parameter tensor named ``name`` in the weight file."""
        return self.params[self._key(name)]

    @classmethod
    def from_weight_file(cls, wf: WeightFile, table) -> "VitrineModel":
        """The model of a weight file, given its parameter table (``vitrine param-table``):
        every tensor of the table must be in the file with the table's shape."""
        from .weights import catalog_ids, param_specs, WeightFileError

        specs = param_specs(table)
        feats = {k: v for k, v in wf.tensors.items() if k.startswith("features.")}
        m = cls(wf.metadata["model"], specs, feats)
        m.load_tensors(wf.tensors)
        if "memory.offsets" in wf.tensors:
            blend = wf.tensors["memory.blend"]
            last_l = int(min(blend[1], 1000.0)) if np.isfinite(blend[1]) and blend[1] >= 0 else 0
            m.memory = Memory(
                wf.tensors["memory.offsets"], wf.tensors["memory.items"], wf.tensors["memory.weights"],
                float(blend[0]), last_l, float(blend[2]),
            )
        tk = wf.metadata.get("trained_kinds")
        if tk:
            m.set_trained_kinds(sorted(KINDS.index(k) for k in tk))
        if m.n_items != len(catalog_ids(wf)):
            raise WeightFileError("catalog length differs from model.n_items")
        return m

    def load_tensors(self, tensors: Dict[str, np.ndarray]) -> None:
        """Copies the table's tensors from ``tensors`` (shapes checked)."""
        from .weights import WeightFileError

        with torch.no_grad():
            for s in self.specs:
                if s.name not in tensors:
                    raise WeightFileError(f"weight file has no tensor named {s.name!r}")
                a = tensors[s.name]
                if list(a.shape) != s.shape:
                    raise WeightFileError(f"tensor {s.name!r} has shape {list(a.shape)}, the table says {s.shape}")
                self.p(s.name).copy_(torch.as_tensor(np.asarray(a, dtype=np.float32)))

    def param_arrays(self) -> Dict[str, np.ndarray]:
        """The parameters as ``float32`` arrays named as in the weight file."""
        return {s.name: self.p(s.name).detach().cpu().numpy().astype(np.float32).copy() for s in self.specs}

    def set_trained_kinds(self, trained: List[int]) -> None:
        """Records the trained kinds and copies, into each untrained kind's ``user.kind``
        row, the closest trained kind's row (``Model::set_trained_kinds``)."""
        if not trained:
            return
        reads = kind_rows_map(sorted(trained))
        with torch.no_grad():
            rows = self.p("user.kind")
            for k, r in enumerate(reads):
                if k != r:
                    rows[k].copy_(rows[r])
        self.trained_kinds = sorted(trained)

    # -- item encoder -----------------------------------------------------------------
    def item_vectors(self) -> torch.Tensor:
        """``[n_items × d]`` item vectors."""
        tok = F.embedding_bag(
            self.f_tokens, self.p("item.tok"), self.f_tok_offsets, mode="mean", include_last_offset=True
        )
        price = self.p("item.price")
        return (
            self.p("item.id")
            + self.p("item.cat")[self.f_category]
            + tok
            + self.f_price[:, None] * price[0]
            + self.f_missing[:, None] * price[1]
        )

    # -- user encoder -----------------------------------------------------------------
    def encode(
        self,
        v: torch.Tensor,
        items: torch.Tensor,
        kinds: torch.Tensor,
        gaps: torch.Tensor,
        lengths: torch.Tensor,
        dropout: float = 0.0,
    ) -> torch.Tensor:
        """Final hidden states ``[B × L × d]`` of left-padded inputs (``items``, ``kinds``,
        ``gaps``: ``[B × L]``; ``lengths``: real positions per row). Padded positions
        hold garbage that no real position reads."""
        B, L = items.shape
        d, H = self.d, self.n_heads
        dh = d // H
        train = dropout > 0.0 and self.training
        x = (
            v[items]
            + self.p("user.pos")[torch.arange(L - 1, -1, -1, device=items.device)][None]
            + self.p("user.kind")[kinds]
            + self.p("user.gap")[gaps]
        )
        if train:
            x = F.dropout(x, dropout, True)
        pos = torch.arange(L, device=items.device)
        start = (L - lengths)[:, None]  # first real position per row
        real = pos[None, :] >= start  # [B, L]
        causal = pos[None, :] <= pos[:, None]  # [t, s]: s ≤ t
        allowed = causal[None] & (real[:, None, :] | torch.eye(L, dtype=torch.bool, device=items.device)[None])
        bias = torch.zeros(B, 1, L, L, device=items.device).masked_fill(~allowed[:, None], float("-inf"))
        h = x
        for b in range(self.n_blocks):
            pre = f"block{b}."
            a = F.layer_norm(h, (d,), self.p(pre + "ln1.g"), self.p(pre + "ln1.b"), LN_EPS)
            q = (a @ self.p(pre + "attn.wq") + self.p(pre + "attn.bq")).view(B, L, H, dh).transpose(1, 2)
            k = (a @ self.p(pre + "attn.wk") + self.p(pre + "attn.bk")).view(B, L, H, dh).transpose(1, 2)
            vv = (a @ self.p(pre + "attn.wv") + self.p(pre + "attn.bv")).view(B, L, H, dh).transpose(1, 2)
            z = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(dh)) + bias
            att = (torch.softmax(z, dim=-1) @ vv).transpose(1, 2).reshape(B, L, d)
            o = att @ self.p(pre + "attn.wo") + self.p(pre + "attn.bo")
            if train:
                o = F.dropout(o, dropout, True)
            if self.gated:
                o = torch.sigmoid(h @ self.p(pre + "gate_attn.w") + self.p(pre + "gate_attn.b")) * o
            h = h + o
            bn = F.layer_norm(h, (d,), self.p(pre + "ln2.g"), self.p(pre + "ln2.b"), LN_EPS)
            f = bn @ self.p(pre + "ffn.w1") + self.p(pre + "ffn.b1")
            if self.swiglu:
                f = F.silu(f) * (bn @ self.p(pre + "ffn.w3") + self.p(pre + "ffn.b3"))
            else:
                f = torch.relu(f)
            g = f @ self.p(pre + "ffn.w2") + self.p(pre + "ffn.b2")
            if train:
                g = F.dropout(g, dropout, True)
            if self.gated:
                g = torch.sigmoid(h @ self.p(pre + "gate_ffn.w") + self.p(pre + "gate_ffn.b")) * g
            h = h + g
        return F.layer_norm(h, (d,), self.p("user.lnf.g"), self.p("user.lnf.b"), LN_EPS)

    # -- head -------------------------------------------------------------------------
    def _w1(self):
        w1 = self.p("head.w1")
        d = self.d
        return w1[:d], w1[d : 2 * d], w1[2 * d :]

    def _mlp_rest(self, h: torch.Tensor) -> torch.Tensor:
        for j in range(1, len(self.mlp_hidden)):
            h = torch.relu(h @ self.p(f"head.l{j}.w") + self.p(f"head.l{j}.b"))
        return h @ self.p("head.out.w") + self.p("head.out.b")[0]

    def pair_logits(self, u: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        """Head logits of ``P`` users against their own candidates: ``u`` ``[P × d]``,
        ``cand`` ``[P × C × d]`` → ``[P × C]``."""
        w1u, w1v, w1p = self._w1()
        b1 = self.p("head.b1")
        h1 = torch.relu((u @ w1u + b1)[:, None, :] + cand @ w1v + (u[:, None, :] * cand) @ w1p)
        return self._mlp_rest(h1) + (u[:, None, :] * cand).sum(-1)

    def all_logits(self, u: torch.Tensor, v: torch.Tensor, chunk: int = 64) -> torch.Tensor:
        """Head logits of ``B`` users against the whole catalog ``v``: ``[B × n]``.
        ``[u, v, u⊙v]·W₁ = u·W₁ᵤ + v·(diag(u)·W₁ₚ + W₁ᵥ)``: one ``[n × d]·[d × h]``
        product per user."""
        w1u, w1v, w1p = self._w1()
        b1 = self.p("head.b1")
        outs = []
        for s in range(0, u.shape[0], chunk):
            uc = u[s : s + chunk]
            m = uc[:, :, None] * w1p[None] + w1v[None]  # [b, d, h]
            h1 = torch.relu(torch.matmul(v[None], m) + (uc @ w1u + b1)[:, None, :])
            outs.append(self._mlp_rest(h1) + uc @ v.T)
        return torch.cat(outs) if outs else torch.zeros(0, v.shape[0])

    # -- inference on histories -------------------------------------------------------
    def seq_input(self, history: Sequence[Tuple[int, int, float]]):
        """The encoder input of a history (``(item, kind, at)`` oldest first): its last
        ``max_len`` in-catalog events with their gap buckets (``Model::seq_input``)."""
        valid = [e for e in history if 0 <= int(e[0]) < self.n_items]
        start = max(0, len(valid) - self.max_len)
        prev = valid[start - 1][2] if start > 0 else None
        items, kinds, gaps = [], [], []
        for e in valid[start:]:
            items.append(int(e[0]))
            kinds.append(int(e[1]))
            gaps.append(gap_bucket(prev, float(e[2]), self.n_recency))
            prev = float(e[2])
        return items, kinds, gaps

    def batch_inputs(self, histories):
        """Left-padded ``items, kinds, gaps, lengths`` tensors of several histories."""
        seqs = [self.seq_input(h) for h in histories]
        L = max([len(s[0]) for s in seqs] + [1])
        B = len(seqs)
        items = torch.zeros(B, L, dtype=torch.long)
        kinds = torch.zeros(B, L, dtype=torch.long)
        gaps = torch.zeros(B, L, dtype=torch.long)
        lengths = torch.zeros(B, dtype=torch.long)
        for b, (it, ki, ga) in enumerate(seqs):
            n = len(it)
            lengths[b] = n
            if n:
                items[b, L - n :] = torch.tensor(it)
                kinds[b, L - n :] = torch.tensor(ki)
                gaps[b, L - n :] = torch.tensor(ga)
        return items, kinds, gaps, lengths

    @torch.no_grad()
    def user_vectors(self, histories, v: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``[B × d]`` user vectors (zeros for an empty history), inference mode."""
        if v is None:
            v = self.item_vectors()
        items, kinds, gaps, lengths = self.batch_inputs(histories)
        y = self.encode(v, items, kinds, gaps, lengths)[:, -1, :]
        return torch.where((lengths > 0)[:, None], y, torch.zeros_like(y))

    @torch.no_grad()
    def logits(self, histories, memory: bool = True) -> np.ndarray:
        """``[B × n]`` final logits (deep head plus, when ``memory``, the memory term)."""
        v = self.item_vectors()
        u = self.user_vectors(histories, v)
        out = self.all_logits(u, v).numpy().astype(np.float32)
        if memory and self.memory is not None:
            for b, h in enumerate(histories):
                out[b] += self.memory.term([e[0] for e in h], self.n_items)
        return out
