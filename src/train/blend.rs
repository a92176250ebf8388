//! The transition-memory blend search: after the deep part is trained, choose how the
//! model's "wide" part (a [`Memory`], see [`crate::model::memory`]) enters the logit.
//!
//! The model's logit is `deep_i + alpha · m_i(history)` with
//! `m_i = Σ_{j < last_l} decay^j · w(h_j → i)` over the most recent history events `h_j`.
//! The memory's neighbour lists (`w`) and `decay` are given ([`BlendGrid`]; `vitrine
//! train` offers two: the tuned item-kNN's lists and plain transition counts, and keeps
//! whichever validates better). For each grid in turn the search tries every `last_l`
//! (in order, consecutive repeats skipped) and, for each, every `alpha` in [`ALPHAS`]
//! (1, 2, 4, …, 4096), and measures each trial's full-ranking NDCG@10 on the validation
//! cases under the protocol given (seen items kept or excluded, as the rest of training
//! validates: [`crate::eval::validation_protocol`]). The chosen blend is the first trial
//! whose NDCG@10 is strictly above both the deep part alone and every earlier trial; when
//! none beats the deep part alone, no memory is used.
//!
//! Only the memory term changes between trials, so the deep logits `deep_i` of every
//! validation case are computed once and each trial adds its memory term to a copy: the
//! same floating-point operations in the same order as scoring the blended model from
//! scratch, hence the same NDCG@10 values and the same choice, without re-running the
//! encoder and the head 8 × `last_l` times. The cache holds `cases × items` floats; above
//! [`MAX_CACHED_LOGITS`] the deep part is recomputed per trial instead (same results).
use rayon::prelude::*;

use crate::eval::{self, EvalCase, EvalOptions, ModelRanker, Protocol, Ranker};
use crate::history::HistoryEvent;
use crate::model::memory::Memory;
use crate::model::Model;

/// The blend weights tried for every `last_l`, in trial order.
///
/// The grid reaches far enough for the memory to dominate: at `alpha` = 4096 a memory
/// weight of 0.01 outweighs a deep-logit spread of 40, so the blend tends to the
/// memory's own ranking (the tuned item-kNN's, whose lists the memory holds) with the
/// deep part ordering what the memory ties or does not reach. With a grid ending at 128,
/// Amazon Toys' blend stayed below its own tuned item-kNN (full-ranking NDCG@10 0.0599
/// against 0.0639); with this one it chose 1024 and reached 0.0680 (README).
pub const ALPHAS: [f32; 13] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// Most deep logits (validation cases × catalog items) the search keeps in memory
/// (2²⁸ floats = 1 GiB); beyond it, the deep part is recomputed for every trial.
pub const MAX_CACHED_LOGITS: usize = 1 << 28;

/// What the search varies: the memory's neighbour lists and decay are fixed.
#[derive(Debug, Clone, PartialEq)]
pub struct BlendGrid {
    /// The neighbour lists (its own `alpha`, `last_l` and `decay` are ignored).
    pub base: Memory,
    /// The `last_l` values to try, in order (consecutive repeats are tried once).
    pub last_ls: Vec<usize>,
    /// Per-event decay of every trial.
    pub decay: f32,
}

/// One trial of the search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlendTrial {
    /// Index of the grid (the neighbour lists) in the slice searched.
    pub grid: usize,
    /// Blend weight.
    pub alpha: f32,
    /// History events that read the memory.
    pub last_l: usize,
    /// Validation NDCG@10 of the blended model.
    pub val_ndcg10: f64,
}

/// The outcome of [`search_blend`].
#[derive(Debug, Clone, PartialEq)]
pub struct BlendChoice {
    /// The chosen memory (blend parameters set), or `None` when no trial beats the deep
    /// part alone.
    pub memory: Option<Memory>,
    /// The chosen trial, if any.
    pub best: Option<BlendTrial>,
    /// Validation NDCG@10 of the deep part alone.
    pub deep_val_ndcg10: f64,
    /// Every trial, in the order tried (the validation trace).
    pub trials: Vec<BlendTrial>,
}

/// Searches the blends of `grids` (in order; the deep logits computed once for all) for
/// `model` (whose own memory is ignored) on the validation cases `valid` over a catalog
/// of `n_items` items, NDCG@10 read under the full-ranking protocol `proto`; see the
/// module doc. A later grid's trial is chosen only when strictly better, as within a grid.
pub fn search_blend(
    model: &Model,
    grids: &[BlendGrid],
    valid: &[EvalCase],
    n_items: usize,
    proto: Protocol,
) -> BlendChoice {
    let ranker = BlendRanker::new(model, valid, n_items);
    // Cases keyed by their position, the row of their cached deep logits.
    let cases: Vec<EvalCase> = valid
        .iter()
        .enumerate()
        .map(|(i, c)| EvalCase {
            user: i,
            ..c.clone()
        })
        .collect();
    let deep_val_ndcg10 = ranker.ndcg10(None, &cases, n_items, proto);
    let mut trials = Vec::new();
    let mut best: Option<BlendTrial> = None;
    for (g, grid) in grids.iter().enumerate() {
        let mut last_ls = grid.last_ls.clone();
        last_ls.dedup();
        for &last_l in &last_ls {
            for alpha in ALPHAS {
                let memory = blended(&grid.base, alpha, last_l, grid.decay);
                let val_ndcg10 = ranker.ndcg10(Some(&memory), &cases, n_items, proto);
                let trial = BlendTrial {
                    grid: g,
                    alpha,
                    last_l,
                    val_ndcg10,
                };
                if val_ndcg10 > best.map_or(deep_val_ndcg10, |b| b.val_ndcg10) {
                    best = Some(trial);
                }
                trials.push(trial);
            }
        }
    }
    BlendChoice {
        memory: best.map(|b| {
            let grid = &grids[b.grid];
            blended(&grid.base, b.alpha, b.last_l, grid.decay)
        }),
        best,
        deep_val_ndcg10,
        trials,
    }
}

/// `base`'s neighbour lists with the given blend parameters.
fn blended(base: &Memory, alpha: f32, last_l: usize, decay: f32) -> Memory {
    Memory {
        alpha,
        last_l,
        decay,
        ..base.clone()
    }
}

/// The deep part's logits (cached per case when they fit) plus a trial's memory term.
struct BlendRanker<'a> {
    deep: ModelRanker<'a>,
    /// Row `i` holds the deep logits of validation case `i` (`[cases × n_items]`).
    cache: Option<Vec<f32>>,
    n_items: usize,
}

impl<'a> BlendRanker<'a> {
    fn new(model: &'a Model, valid: &[EvalCase], n_items: usize) -> BlendRanker<'a> {
        let deep = ModelRanker::new(model).without_memory();
        let fits = valid
            .len()
            .checked_mul(n_items)
            .is_some_and(|n| n <= MAX_CACHED_LOGITS);
        let cache = (fits && n_items > 0).then(|| {
            let mut logits = vec![f32::NEG_INFINITY; valid.len() * n_items];
            logits
                .par_chunks_mut(n_items)
                .zip(valid.par_iter())
                .for_each(|(row, c)| deep.score_all(&c.history, c.now, row));
            logits
        });
        BlendRanker {
            deep,
            cache,
            n_items,
        }
    }

    /// Full-ranking NDCG@10 on `cases` (keyed by position) with `memory` added.
    fn ndcg10(
        &self,
        memory: Option<&Memory>,
        cases: &[EvalCase],
        n_items: usize,
        proto: Protocol,
    ) -> f64 {
        let trial = Trial {
            ranker: self,
            memory,
        };
        let r = eval::evaluate(&trial, cases, n_items, proto, &EvalOptions::default());
        r.get("NDCG@10").unwrap_or(0.0)
    }
}

/// One trial's ranker: the deep logits plus `memory`'s term.
struct Trial<'r, 'a> {
    ranker: &'r BlendRanker<'a>,
    memory: Option<&'r Memory>,
}

impl Ranker for Trial<'_, '_> {
    fn name(&self) -> String {
        "blend trial".into()
    }

    fn score_all(&self, history: &[HistoryEvent], now: f64, out: &mut [f32]) {
        self.ranker.deep.score_all(history, now, out);
        if let Some(m) = self.memory {
            m.add_to(history, out);
        }
    }

    fn score_case(&self, case: &EvalCase, out: &mut [f32]) {
        let n = self.ranker.n_items;
        let row = self
            .ranker
            .cache
            .as_ref()
            .and_then(|c| c.get(case.user * n..(case.user + 1) * n));
        match row {
            Some(row) if out.len() == n => {
                out.copy_from_slice(row);
                if let Some(m) = self.memory {
                    m.add_to(&case.history, out);
                }
            }
            _ => self.score_all(&case.history, case.now, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::ItemFeatureTable;
    use crate::history::EventKind;
    use crate::model::ModelConfig;

    fn ev(item: u32, at: f64) -> HistoryEvent {
        HistoryEvent {
            item,
            kind: EventKind::Purchase,
            at,
        }
    }

    /// A small untrained model over `n` items.
    fn toy_model(n: usize) -> Model {
        let mut config = ModelConfig::default_for(n, 2, 16);
        config.dim = 8;
        config.ffn_dim = 16;
        config.mlp_hidden = vec![8];
        let table = ItemFeatureTable {
            category: (0..n).map(|i| (i % 2) as u32).collect(),
            price: vec![0.5; n],
            price_missing: vec![0.0; n],
            token_offsets: (0..=n as u32).collect(),
            tokens: (0..n).map(|i| (i % 16) as u32).collect(),
        };
        Model::new(config, table, 3).expect("toy model")
    }

    /// Validation cases where item `i` is always followed by item `(i + 7) % n`.
    fn toy_cases(n: usize) -> Vec<EvalCase> {
        (0..40)
            .map(|u| {
                let a = (u * 3 % n) as u32;
                EvalCase {
                    user: 100 + u,
                    history: vec![ev((a + 5) % n as u32, 1.0), ev(a, 2.0)],
                    target: (a + 7) % n as u32,
                    now: 3.0,
                }
            })
            .collect()
    }

    const KEEP: Protocol = Protocol::Full {
        exclude_seen: false,
    };
    const EXCLUDE: Protocol = Protocol::Full { exclude_seen: true };

    fn lists(n: usize, step: u32) -> Memory {
        Memory::from_lists((0..n as u32).map(|i| vec![((i + step) % n as u32, 1.0)]))
    }

    /// The NDCG@10 of the model with `memory`, scored from scratch under `proto`.
    fn from_scratch(
        model: &Model,
        memory: Option<Memory>,
        cases: &[EvalCase],
        proto: Protocol,
    ) -> f64 {
        let mut m = model.clone();
        m.memory = memory;
        let r = eval::evaluate(
            &ModelRanker::new(&m),
            cases,
            m.config.n_items,
            proto,
            &EvalOptions::default(),
        );
        r.get("NDCG@10").unwrap()
    }

    #[test]
    fn picks_the_memory_that_predicts_the_targets() {
        let n = 50;
        let model = toy_model(n);
        let cases = toy_cases(n);
        let good = BlendGrid {
            base: lists(n, 7),
            last_ls: vec![1, 1, 2],
            decay: 0.5,
        };
        let choice = search_blend(&model, std::slice::from_ref(&good), &cases, n, KEEP);
        assert_eq!(choice.trials.len(), 2 * ALPHAS.len(), "repeats tried once");
        let best = choice.best.expect("the right lists beat the deep part");
        assert_eq!(best.last_l, 1, "the older event's lists only add noise");
        assert!(best.val_ndcg10 > choice.deep_val_ndcg10);
        assert_eq!(choice.memory.as_ref().map(|m| m.alpha), Some(best.alpha));
        // Lists pointing to the wrong items never beat the deep part alone.
        let bad = BlendGrid {
            base: lists(n, 11),
            ..good.clone()
        };
        let choice = search_blend(&model, std::slice::from_ref(&bad), &cases, n, KEEP);
        assert!(choice.memory.is_none() && choice.best.is_none());
        // Two grids: the one whose lists predict wins wherever it stands, with the same
        // trial as alone.
        for (grids, g) in [([bad.clone(), good.clone()], 1), ([good.clone(), bad], 0)] {
            let both = search_blend(&model, &grids, &cases, n, KEEP);
            let b = both.best.expect("the right lists win");
            assert_eq!((b.grid, b.alpha, b.last_l), (g, best.alpha, best.last_l));
            assert_eq!(b.val_ndcg10, best.val_ndcg10);
            assert_eq!(both.memory.map(|m| m.items), Some(good.base.items.clone()));
            assert_eq!(both.trials.len(), 4 * ALPHAS.len());
        }
    }

    #[test]
    fn cached_trials_match_scoring_from_scratch() {
        let n = 50;
        let model = toy_model(n);
        let cases = toy_cases(n);
        let grid = BlendGrid {
            base: lists(n, 7),
            last_ls: vec![2],
            decay: 0.5,
        };
        for proto in [KEEP, EXCLUDE] {
            let choice = search_blend(&model, std::slice::from_ref(&grid), &cases, n, proto);
            assert_eq!(
                choice.deep_val_ndcg10,
                from_scratch(&model, None, &cases, proto)
            );
            for t in &choice.trials {
                let m = blended(&grid.base, t.alpha, t.last_l, grid.decay);
                assert_eq!(t.val_ndcg10, from_scratch(&model, Some(m), &cases, proto));
            }
        }
    }

    /// Lists that point first to the history's other item (`a + 5`), then to the target
    /// (`a + 7`): with seen items kept the seen item ranks first at a large alpha (target
    /// second: NDCG@10 = 1/log2(3)); excluded, the target ranks first (1).
    #[test]
    fn reads_ndcg_under_the_protocol_given() {
        let n = 50;
        let model = toy_model(n);
        let cases = toy_cases(n);
        let grid = BlendGrid {
            base: Memory::from_lists(
                (0..n as u32).map(|i| vec![((i + 5) % n as u32, 1.0), ((i + 7) % n as u32, 0.5)]),
            ),
            last_ls: vec![1],
            decay: 0.5,
        };
        let best = |proto| {
            let c = search_blend(&model, std::slice::from_ref(&grid), &cases, n, proto);
            c.trials.iter().map(|t| t.val_ndcg10).fold(0.0, f64::max)
        };
        assert!(
            (best(KEEP) - 1.0 / 3f64.log2()).abs() < 1e-9,
            "{}",
            best(KEEP)
        );
        assert_eq!(best(EXCLUDE), 1.0);
    }
}
