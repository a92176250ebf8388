//! "Frequently bought together" from real orders: per item, the items bought in the same
//! orders, with how many orders, shipped in the weight file (`basket.*`, spec in
//! `docs/weight-format.md`) and read by `recommend({ basket })`.
//!
//! The native trainer counts the orders (`crate::train::basket`, not compiled to wasm);
//! this module holds what is served: the neighbour lists with their counts, the pair score,
//! the evidence of a basket and its blend with the model's logit, and the section's
//! checks (the file is untrusted input: every defect is a [`BasketError`], never a panic).
//!
//! # Counts
//! An order is a set of distinct items (in Online Retail, an invoice). Over the training
//! orders:
//!
//! ```text
//! c_i  = #{orders containing i}
//! c_bi = #{orders containing both b and i}          (b ≠ i; c_bi = c_ib ≤ min(c_b, c_i))
//! ```
//!
//! # Pair score
//! With the exponent `β ∈ [0, 1]` and the shrinkage `λ ≥ 0` tuned on validation orders:
//!
//! ```text
//! s(b → i) = c_bi / (c_b^β · c_i^(1−β) + λ)
//! ```
//!
//! `β = 1` is the share of `b`'s orders that hold `i` (`P(i | b)`), `β = ½` the cosine of
//! the two items' order sets, `β = 0` orders `b`'s neighbours by lift (`N·c_bi / (c_b·c_i)`
//! for a fixed `b`, `N` the number of orders); `λ` damps pairs seen in few orders. Row `b`
//! keeps its `M` neighbours of highest `s(b → i)` (ties: the lower index), stored in
//! increasing index order; the scores are recomputed from the counts on load, so the
//! file holds counts only.
//!
//! # Evidence of a basket
//! For a basket `B = (b_0, …, b_{m−1})` (distinct items in the order they were added,
//! oldest first; a repeated item keeps its first place), the item added `k` places
//! before the last one weighs `w_k = δ^k` (`δ ∈ (0, 1]` tuned; `δ = 1` weighs all alike):
//!
//! ```text
//! E_i = Σ_j w_{m−1−j} · s(b_j → i)      (aggregation "sum")
//! E_i = max_j w_{m−1−j} · s(b_j → i)    (aggregation "max")
//! ```
//!
//! with `s(b → i) = 0` when `i` is not in `b`'s list. `E_i > 0` exactly when some basket
//! item was bought with `i` in at least one training order (and kept it among its `M`).
//!
//! # Blend
//! A basket request adds the evidence to the model's final logit (the deep part with the
//! basket read as cart events, plus the transition memory; see `crate::recommend`):
//!
//! ```text
//! z_i += α · E_i
//! ```
//!
//! `α ≥ 0` is tuned on validation orders. Items without evidence keep the model's logit
//! and order; the evidence lifts the items it supports. "Evidence first, the model's
//! ranking below" is the limit `α → ∞` (the tuning grid holds `α = 10⁴` for it; on Online
//! Retail validation preferred `α = 32`). `α = 0` keeps the model's ranking (the section
//! then only supplies the reasons' evidence).
use std::collections::BTreeMap;

use crate::format::{Tensor, TensorData, WeightFile};

/// CSR offsets of the neighbour lists (`I32`, `[n_items + 1]`).
pub const OFFSETS_TENSOR: &str = "basket.offsets";
/// Neighbour item of every entry (`I32`, `[nnz]`, increasing within a row).
pub const ITEMS_TENSOR: &str = "basket.items";
/// Orders holding both the row's item and the neighbour, `c_bi` (`I32`, `[nnz]`).
pub const ORDERS_TENSOR: &str = "basket.orders";
/// Orders holding each item, `c_i` (`I32`, `[n_items]`).
pub const ITEM_ORDERS_TENSOR: &str = "basket.item_orders";
/// `[β, λ, α, aggregation, δ]` (`F32`, `[5]`; aggregation 0 = sum, 1 = max).
pub const PARAMS_LEN: usize = 5;
/// See [`PARAMS_LEN`].
pub const PARAMS_TENSOR: &str = "basket.params";
/// Every tensor of the section (all or none must be present).
pub const TENSORS: [&str; 5] = [
    OFFSETS_TENSOR,
    ITEMS_TENSOR,
    ORDERS_TENSOR,
    ITEM_ORDERS_TENSOR,
    PARAMS_TENSOR,
];
/// Largest shrinkage `λ` and blend weight `α` a file may hold.
pub const MAX_PARAM: f32 = 1e6;

/// How the pair scores of several basket items combine into one item's evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// `E_i = Σ_b s(b → i)`: items bought with several basket items rank higher.
    Sum,
    /// `E_i = max_b s(b → i)`: the strongest single pair decides.
    Max,
}

impl Aggregate {
    /// Its code in `basket.params`.
    pub fn code(self) -> f32 {
        match self {
            Aggregate::Sum => 0.0,
            Aggregate::Max => 1.0,
        }
    }
}

/// The section's tuned parameters (module docs: pair score and blend).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BasketParams {
    /// Exponent `β ∈ [0, 1]` of the pair score's denominator.
    pub beta: f32,
    /// Shrinkage `λ ≥ 0` added to the denominator.
    pub shrink: f32,
    /// Blend weight `α ≥ 0` of the evidence in the logit.
    pub alpha: f32,
    /// Sum or max over the basket.
    pub aggregate: Aggregate,
    /// Per-place decay `δ ∈ (0, 1]` of older basket items' weight.
    pub decay: f32,
}

impl Default for BasketParams {
    fn default() -> Self {
        BasketParams {
            beta: 0.5,
            shrink: 10.0,
            alpha: 1.0,
            aggregate: Aggregate::Sum,
            decay: 1.0,
        }
    }
}

impl BasketParams {
    /// Checks the ranges (`β ∈ [0, 1]`, `λ` and `α` in `[0, MAX_PARAM]`, `δ ∈ (0, 1]`).
    pub fn validate(&self) -> Result<(), BasketError> {
        if !(self.decay > 0.0 && self.decay <= 1.0) {
            return Err(BasketError::BadParam {
                name: "decay",
                value: self.decay,
            });
        }
        let ranges = [
            ("beta", self.beta, 1.0),
            ("shrink", self.shrink, MAX_PARAM),
            ("alpha", self.alpha, MAX_PARAM),
        ];
        for (name, value, max) in ranges {
            if !(value.is_finite() && (0.0..=max).contains(&value)) {
                return Err(BasketError::BadParam { name, value });
            }
        }
        Ok(())
    }

    fn to_vec(self) -> Vec<f32> {
        vec![
            self.beta,
            self.shrink,
            self.alpha,
            self.aggregate.code(),
            self.decay,
        ]
    }

    /// From `basket.params` (`v.len() == PARAMS_LEN`).
    fn from_slice(v: &[f32]) -> Result<BasketParams, BasketError> {
        let aggregate = if v[3] == Aggregate::Sum.code() {
            Aggregate::Sum
        } else if v[3] == Aggregate::Max.code() {
            Aggregate::Max
        } else {
            return Err(BasketError::BadParam {
                name: "aggregation",
                value: v[3],
            });
        };
        let p = BasketParams {
            beta: v[0],
            shrink: v[1],
            alpha: v[2],
            aggregate,
            decay: v[4],
        };
        p.validate()?;
        Ok(p)
    }
}

/// A defect of the `basket.*` section of a weight file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BasketError {
    /// Some `basket.*` tensors are present but this one is not (the section is all or
    /// nothing; a file with none of them has no basket section).
    #[error("{0} is missing (a basket section needs all of basket.offsets, basket.items, basket.orders, basket.item_orders and basket.params)")]
    MissingTensor(&'static str),
    /// A tensor has the wrong element type (`basket.params` is `F32`, the others `I32`).
    #[error("{tensor} is not {expected}")]
    WrongDtype {
        /// The tensor.
        tensor: &'static str,
        /// The dtype it must have.
        expected: &'static str,
    },
    /// A tensor's shape does not match the catalogue or the other tensors.
    #[error("{tensor} has shape {found:?}, expected [{expected}]")]
    WrongShape {
        /// The tensor.
        tensor: &'static str,
        /// The length it must have.
        expected: usize,
        /// The shape it has.
        found: Vec<usize>,
    },
    /// An integer tensor holds a negative value.
    #[error("{tensor}[{index}] = {value} is negative")]
    Negative {
        /// The tensor.
        tensor: &'static str,
        /// The position.
        index: usize,
        /// The value.
        value: i32,
    },
    /// The offsets are not a CSR index over the catalogue: they do not start at 0,
    /// decrease, or do not end at the number of entries.
    #[error("basket.offsets is not a CSR index: {0}")]
    BadOffsets(String),
    /// A neighbour is outside the catalogue, is its row's own item, or a row's
    /// neighbours are not in strictly increasing index order.
    #[error("basket row {row}: neighbour {item} {reason}")]
    BadNeighbour {
        /// The row (the item whose list it is).
        row: usize,
        /// The neighbour.
        item: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// A pair count is inconsistent: 0, above either item's order count, or different
    /// from the same pair's count in the other item's list.
    #[error("basket row {row}: neighbour {item} has {orders} orders, {reason}")]
    BadCount {
        /// The row.
        row: usize,
        /// The neighbour.
        item: u32,
        /// The pair's count.
        orders: u32,
        /// What it contradicts.
        reason: String,
    },
    /// A parameter is out of range: `β ∈ [0, 1]`, `λ` and `α` finite in
    /// `[0, MAX_PARAM]`, the aggregation 0 (sum) or 1 (max), `δ ∈ (0, 1]`.
    #[error("basket.params: {name} = {value} is out of range")]
    BadParam {
        /// The parameter.
        name: &'static str,
        /// Its value.
        value: f32,
    },
    /// A pair's score is not finite (not possible with valid counts and parameters;
    /// checked all the same).
    #[error("basket row {row}: the score of neighbour {item} is not finite")]
    NonFiniteScore {
        /// The row.
        row: usize,
        /// The neighbour.
        item: u32,
    },
}

/// The served co-occurrence model: top-`M` neighbour lists with their order counts (CSR),
/// every item's order count, the parameters and the pair scores computed from them.
/// Built only through [`Basket::new`], which checks everything.
#[derive(Debug, Clone, PartialEq)]
pub struct Basket {
    offsets: Vec<u32>,
    items: Vec<u32>,
    orders: Vec<u32>,
    item_orders: Vec<u32>,
    params: BasketParams,
    /// `s(b → i)` per entry, from the counts and `params`.
    scores: Vec<f32>,
}

/// `s = c_bi / (c_b^β · c_i^(1−β) + λ)` in f64, rounded to f32.
pub fn pair_score(c_bi: u32, c_b: u32, c_i: u32, beta: f32, shrink: f32) -> f32 {
    let beta = beta as f64;
    let denom = (c_b as f64).powf(beta) * (c_i as f64).powf(1.0 - beta) + shrink as f64;
    (c_bi as f64 / denom) as f32
}

impl Basket {
    /// Heap bytes of the section's tables (for the load's memory breakdown).
    pub fn heap_bytes(&self) -> usize {
        (self.offsets.capacity()
            + self.items.capacity()
            + self.orders.capacity()
            + self.item_orders.capacity()
            + self.scores.capacity())
            * 4
    }

    /// Checks the section against a catalogue of `n_items` items and computes the pair
    /// scores: `offsets` a CSR index (`n_items + 1` entries from 0 to `items.len()`),
    /// neighbours in the catalogue, never the row's own item, strictly increasing in a
    /// row; `orders` and `items` of one length; `item_orders` one per item; every pair
    /// count `1 ≤ c_bi ≤ min(c_b, c_i)` and equal to `c_ib` when both lists hold the
    /// pair; parameters in range; every score finite.
    pub fn new(
        n_items: usize,
        offsets: Vec<u32>,
        items: Vec<u32>,
        orders: Vec<u32>,
        item_orders: Vec<u32>,
        params: BasketParams,
    ) -> Result<Basket, BasketError> {
        params.validate()?;
        let shape = |tensor, expected: usize, len: usize| {
            if len == expected {
                Ok(())
            } else {
                Err(BasketError::WrongShape {
                    tensor,
                    expected,
                    found: vec![len],
                })
            }
        };
        shape(OFFSETS_TENSOR, n_items + 1, offsets.len())?;
        shape(ITEM_ORDERS_TENSOR, n_items, item_orders.len())?;
        shape(ORDERS_TENSOR, items.len(), orders.len())?;
        if offsets[0] != 0 {
            return Err(BasketError::BadOffsets(format!("starts at {}", offsets[0])));
        }
        if let Some(w) = offsets.windows(2).position(|w| w[0] > w[1]) {
            return Err(BasketError::BadOffsets(format!(
                "decreases after row {w} ({} > {})",
                offsets[w],
                offsets[w + 1]
            )));
        }
        if offsets[n_items] as usize != items.len() {
            return Err(BasketError::BadOffsets(format!(
                "ends at {}, the section has {} entries",
                offsets[n_items],
                items.len()
            )));
        }
        let mut b = Basket {
            offsets,
            items,
            orders,
            item_orders,
            params,
            scores: Vec::new(),
        };
        b.check_rows(n_items)?;
        b.scores = b.compute_scores()?;
        Ok(b)
    }

    /// Neighbour and count checks of [`Basket::new`] (offsets already valid).
    fn check_rows(&self, n_items: usize) -> Result<(), BasketError> {
        for row in 0..n_items {
            let (lo, hi) = self.range(row);
            let mut prev: Option<u32> = None;
            for e in lo..hi {
                let item = self.items[e];
                let bad = |reason| Err(BasketError::BadNeighbour { row, item, reason });
                if item as usize >= n_items {
                    return bad("is outside the catalogue");
                }
                if item as usize == row {
                    return bad("is the row's own item");
                }
                if prev.is_some_and(|p| p >= item) {
                    return bad("is not above the previous neighbour");
                }
                prev = Some(item);
                let c = self.orders[e];
                let count = |reason: String| {
                    Err(BasketError::BadCount {
                        row,
                        item,
                        orders: c,
                        reason,
                    })
                };
                let (c_b, c_i) = (self.item_orders[row], self.item_orders[item as usize]);
                if c == 0 {
                    return count("must be at least 1".into());
                }
                if c > c_b.min(c_i) {
                    return count(format!(
                        "more than the items' own order counts ({c_b} and {c_i})"
                    ));
                }
                if let Some(back) = self.orders_of(item as usize, row as u32) {
                    if back != c {
                        return count(format!("but row {item} lists the pair with {back}"));
                    }
                }
            }
        }
        Ok(())
    }

    /// `s(b → i)` of every entry (errors on a non-finite one).
    fn compute_scores(&self) -> Result<Vec<f32>, BasketError> {
        let p = &self.params;
        let mut scores = Vec::with_capacity(self.items.len());
        for row in 0..self.n_items() {
            let (lo, hi) = self.range(row);
            for e in lo..hi {
                let i = self.items[e];
                let s = pair_score(
                    self.orders[e],
                    self.item_orders[row],
                    self.item_orders[i as usize],
                    p.beta,
                    p.shrink,
                );
                if !s.is_finite() {
                    return Err(BasketError::NonFiniteScore { row, item: i });
                }
                scores.push(s);
            }
        }
        Ok(scores)
    }

    /// Reads the section of `file` for a catalogue of `n_items` items: `None` when the
    /// file has none of the `basket.*` tensors (written before the section existed).
    pub fn from_weight_file(
        file: &WeightFile,
        n_items: usize,
    ) -> Result<Option<Basket>, BasketError> {
        Basket::from_tensors(&file.tensors, n_items)
    }

    /// [`Basket::from_weight_file`] over a tensor map.
    pub fn from_tensors(
        tensors: &BTreeMap<String, Tensor>,
        n_items: usize,
    ) -> Result<Option<Basket>, BasketError> {
        if !TENSORS.iter().any(|t| tensors.contains_key(*t)) {
            return Ok(None);
        }
        let get = |name: &'static str| tensors.get(name).ok_or(BasketError::MissingTensor(name));
        let ints = |name: &'static str, len: Option<usize>| -> Result<Vec<u32>, BasketError> {
            let t = get(name)?;
            let TensorData::I32(v) = &t.data else {
                return Err(BasketError::WrongDtype {
                    tensor: name,
                    expected: "I32",
                });
            };
            let expected = len.unwrap_or(v.len());
            if t.shape != [expected] || v.len() != expected {
                return Err(BasketError::WrongShape {
                    tensor: name,
                    expected,
                    found: t.shape.clone(),
                });
            }
            (v.iter().enumerate())
                .map(|(index, &value)| {
                    u32::try_from(value).map_err(|_| BasketError::Negative {
                        tensor: name,
                        index,
                        value,
                    })
                })
                .collect()
        };
        let t = get(PARAMS_TENSOR)?;
        let TensorData::F32(p) = &t.data else {
            return Err(BasketError::WrongDtype {
                tensor: PARAMS_TENSOR,
                expected: "F32",
            });
        };
        if t.shape != [PARAMS_LEN] || p.len() != PARAMS_LEN {
            return Err(BasketError::WrongShape {
                tensor: PARAMS_TENSOR,
                expected: PARAMS_LEN,
                found: t.shape.clone(),
            });
        }
        let params = BasketParams::from_slice(p)?;
        let offsets = ints(OFFSETS_TENSOR, Some(n_items + 1))?;
        let items = ints(ITEMS_TENSOR, None)?;
        let orders = ints(ORDERS_TENSOR, Some(items.len()))?;
        let item_orders = ints(ITEM_ORDERS_TENSOR, Some(n_items))?;
        Basket::new(n_items, offsets, items, orders, item_orders, params).map(Some)
    }

    /// The section's tensors, named as in the weight file.
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        let ints = |v: &[u32]| Tensor {
            shape: vec![v.len()],
            data: TensorData::I32(v.iter().map(|&x| x.min(i32::MAX as u32) as i32).collect()),
        };
        let mut m = BTreeMap::new();
        m.insert(OFFSETS_TENSOR.to_string(), ints(&self.offsets));
        m.insert(ITEMS_TENSOR.to_string(), ints(&self.items));
        m.insert(ORDERS_TENSOR.to_string(), ints(&self.orders));
        m.insert(ITEM_ORDERS_TENSOR.to_string(), ints(&self.item_orders));
        m.insert(
            PARAMS_TENSOR.to_string(),
            Tensor {
                shape: vec![PARAMS_LEN],
                data: TensorData::F32(self.params.to_vec()),
            },
        );
        m
    }

    /// Adds (or replaces) the section in `file`.
    pub fn write_into(&self, file: &mut WeightFile) {
        file.tensors.extend(self.tensors());
    }

    /// The section's size in the weight file's data section, bytes (every tensor is
    /// 4 bytes an element).
    pub fn size_bytes(&self) -> usize {
        4 * (self.offsets.len() + 2 * self.items.len() + self.item_orders.len() + PARAMS_LEN)
    }

    /// Number of catalogue items covered.
    pub fn n_items(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Number of stored pairs.
    pub fn n_pairs(&self) -> usize {
        self.items.len()
    }

    /// The parameters.
    pub fn params(&self) -> BasketParams {
        self.params
    }

    /// Replaces the blend weight `α` (must be in range; the rest is unchanged).
    pub fn set_alpha(&mut self, alpha: f32) -> Result<(), BasketError> {
        let p = BasketParams {
            alpha,
            ..self.params
        };
        p.validate()?;
        self.params = p;
        Ok(())
    }

    /// `c_i`: the training orders holding item `i` (0 outside the catalogue).
    pub fn item_orders(&self, i: usize) -> u32 {
        self.item_orders.get(i).copied().unwrap_or(0)
    }

    /// Entry range of row `b` (empty outside the catalogue).
    fn range(&self, b: usize) -> (usize, usize) {
        match (self.offsets.get(b), self.offsets.get(b + 1)) {
            (Some(&lo), Some(&hi)) => (lo as usize, hi as usize),
            _ => (0, 0),
        }
    }

    /// Row `b`: `(i, c_bi, s(b → i))` in increasing `i`.
    pub fn neighbours(&self, b: usize) -> impl Iterator<Item = (u32, u32, f32)> + '_ {
        let (lo, hi) = self.range(b);
        (lo..hi).map(|e| (self.items[e], self.orders[e], self.scores[e]))
    }

    /// Entry of the pair `(b, i)` in row `b`, if stored.
    fn entry(&self, b: usize, i: u32) -> Option<usize> {
        let (lo, hi) = self.range(b);
        self.items[lo..hi].binary_search(&i).ok().map(|k| lo + k)
    }

    /// `c_bi` when row `b` lists `i`.
    pub fn orders_of(&self, b: usize, i: u32) -> Option<u32> {
        self.entry(b, i).map(|e| self.orders[e])
    }

    /// `s(b → i)` when row `b` lists `i`.
    pub fn score_of(&self, b: usize, i: u32) -> Option<f32> {
        self.entry(b, i).map(|e| self.scores[e])
    }

    /// The basket's distinct items inside the catalogue, in first-seen order, each with
    /// its weight `δ^k` (`k` places before the last).
    fn weighted(&self, basket: &[u32]) -> Vec<(u32, f32)> {
        let mut items: Vec<u32> = Vec::with_capacity(basket.len());
        for &b in basket {
            if (b as usize) < self.n_items() && !items.contains(&b) {
                items.push(b);
            }
        }
        let mut w = 1.0f32;
        let mut out = vec![(0, 0.0); items.len()];
        for (slot, &b) in out.iter_mut().rev().zip(items.iter().rev()) {
            *slot = (b, w);
            w *= self.params.decay;
        }
        out
    }

    /// `E_i` for every item into `out` (`out.len()` items; overwritten; module docs).
    /// Basket items outside the catalogue, and repeats, are skipped.
    pub fn evidence(&self, basket: &[u32], out: &mut [f32]) {
        out.fill(0.0);
        for (b, w) in self.weighted(basket) {
            for (i, _, s) in self.neighbours(b as usize) {
                if let Some(e) = out.get_mut(i as usize) {
                    *e = self.aggregate(*e, w * s);
                }
            }
        }
    }

    /// One step of `E_i`'s aggregate over the terms `w_b · s(b → i)`.
    fn aggregate(&self, e: f32, term: f32) -> f32 {
        match self.params.aggregate {
            Aggregate::Sum => e + term,
            Aggregate::Max => e.max(term),
        }
    }

    /// The items [`Basket::add_to`] may change: every neighbour of a basket item (none
    /// for an empty basket or `α = 0`), sorted, without repeats.
    pub fn evidence_items(&self, basket: &[u32]) -> Vec<u32> {
        if self.params.alpha == 0.0 || basket.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<u32> = (self.weighted(basket).into_iter())
            .flat_map(|(b, _)| self.neighbours(b as usize).map(|(i, _, _)| i))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// [`Basket::add_to`] for the listed items only: `out[r]` gets item `items[r]`'s
    /// term, the same value `add_to` adds to it (its terms aggregated in the same order).
    pub fn add_to_for(&self, basket: &[u32], items: &[u32], out: &mut [f32]) {
        let alpha = self.params.alpha;
        if alpha == 0.0 || basket.is_empty() {
            return;
        }
        // (item, position in `items`), sorted: the positions of a term's item.
        let mut at: Vec<(u32, usize)> = items.iter().enumerate().map(|(p, &i)| (i, p)).collect();
        at.sort_unstable();
        let mut e = vec![0.0f32; items.len()];
        for (b, w) in self.weighted(basket) {
            for (i, _, s) in self.neighbours(b as usize) {
                let from = at.partition_point(|&(j, _)| j < i);
                for &(_, p) in at[from..].iter().take_while(|&&(j, _)| j == i) {
                    e[p] = self.aggregate(e[p], w * s);
                }
            }
        }
        for (z, &x) in out.iter_mut().zip(&e) {
            if x > 0.0 {
                *z += alpha * x;
            }
        }
    }

    /// The blend: `logits[i] += α · E_i` for every item with evidence (module docs; a
    /// no-op for an empty basket or `α = 0`).
    pub fn add_to(&self, basket: &[u32], logits: &mut [f32]) {
        let alpha = self.params.alpha;
        if alpha == 0.0 || basket.is_empty() {
            return;
        }
        let mut e = vec![0.0f32; logits.len()];
        self.evidence(basket, &mut e);
        for (z, &x) in logits.iter_mut().zip(&e) {
            if x > 0.0 {
                *z += alpha * x;
            }
        }
    }

    /// The evidence behind item `i`: the basket item `b` with the largest weighted
    /// `w_b · s(b → i)` (the first in basket order on ties) and `c_bi`; `None` when no
    /// basket item was bought with `i` (no co-purchase to claim).
    pub fn support(&self, basket: &[u32], i: usize) -> Option<(u32, u32)> {
        let i = u32::try_from(i).ok()?;
        let mut best: Option<(u32, u32, f32)> = None;
        for (b, w) in self.weighted(basket) {
            if let Some(e) = self.entry(b as usize, i) {
                let s = w * self.scores[e];
                if best.is_none_or(|(_, _, bs)| s > bs) {
                    best = Some((b, self.orders[e], s));
                }
            }
        }
        best.map(|(b, c, _)| (b, c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items 0..4; pairs (0,1) in 3 orders, (0,2) in 1, (1,2) in 1; c = [4, 3, 2, 1].
    fn small() -> Basket {
        Basket::new(
            4,
            vec![0, 2, 4, 6, 6],
            vec![1, 2, 0, 2, 0, 1],
            vec![3, 1, 3, 1, 1, 1],
            vec![4, 3, 2, 1],
            BasketParams {
                beta: 1.0,
                shrink: 0.0,
                alpha: 2.0,
                aggregate: Aggregate::Sum,
                decay: 1.0,
            },
        )
        .unwrap()
    }

    #[test]
    fn scores_follow_the_formula() {
        let b = small();
        // β = 1, λ = 0: s(b → i) = c_bi / c_b.
        assert_eq!(b.score_of(0, 1), Some(0.75));
        assert_eq!(b.score_of(0, 2), Some(0.25));
        assert_eq!(b.score_of(1, 0), Some(1.0));
        assert_eq!(b.score_of(2, 1), Some(0.5));
        assert_eq!(b.score_of(3, 0), None);
        // β = ½, λ = 1: 3 / (√(4·3) + 1).
        let s = pair_score(3, 4, 3, 0.5, 1.0);
        assert!((s - 3.0 / (12f32.sqrt() + 1.0)).abs() < 1e-6, "{s}");
    }

    #[test]
    fn evidence_sums_or_maxes_and_blends() {
        let mut b = small();
        let mut e = vec![9.0; 4];
        b.evidence(&[0, 1, 0, 7], &mut e);
        // Item 2: s(0→2) + s(1→2) = 0.25 + 1/3; items 0 and 1 from each other.
        assert_eq!(e, vec![1.0, 0.75, 0.25 + 1.0 / 3.0, 0.0]);
        let mut z = vec![1.0; 4];
        b.add_to(&[0, 1], &mut z);
        assert_eq!(z, vec![3.0, 2.5, 1.0 + 2.0 * (0.25 + 1.0 / 3.0), 1.0]);
        b.params.aggregate = Aggregate::Max;
        b.evidence(&[0, 1], &mut e);
        assert_eq!(e, vec![1.0, 0.75, 1.0 / 3.0, 0.0]);
        // δ = ½: the first of two items weighs ½ (item 2: ½·0.25 + 1/3).
        b.params.aggregate = Aggregate::Sum;
        b.params.decay = 0.5;
        b.evidence(&[0, 1], &mut e);
        assert_eq!(e, vec![1.0, 0.375, 0.125 + 1.0 / 3.0, 0.0]);
        b.evidence(&[1, 0], &mut e);
        assert_eq!(e, vec![0.5, 0.75, 0.25 + 0.5 / 3.0, 0.0]);
        b.set_alpha(0.0).unwrap();
        let mut z = vec![1.0; 4];
        b.add_to(&[0, 1], &mut z);
        assert_eq!(z, vec![1.0; 4]);
    }

    #[test]
    fn support_names_the_strongest_pair() {
        let b = small();
        // s(0→2) = 0.25, s(1→2) = 1/3: item 1 wins with its 1 order.
        assert_eq!(b.support(&[0, 1], 2), Some((1, 1)));
        assert_eq!(b.support(&[0], 1), Some((0, 3)));
        assert_eq!(b.support(&[0, 1], 3), None);
        assert_eq!(b.support(&[], 1), None);
    }

    #[test]
    fn tensors_round_trip() {
        let b = small();
        let back = Basket::from_tensors(&b.tensors(), 4).unwrap().unwrap();
        assert_eq!(back, b);
        assert_eq!(b.size_bytes(), 4 * (5 + 12 + 4 + 5));
        assert_eq!(Basket::from_tensors(&BTreeMap::new(), 4), Ok(None));
    }
}
