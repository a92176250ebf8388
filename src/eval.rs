//! Offline evaluation of rankers (the model and the baselines) on held-out histories.
//!
//! For the trainer (early stopping on validation NDCG@10), for `vitrine eval`, and for the
//! README's comparison table. Native only.
//!
//! - [`Ranker`]: anything that scores the whole catalog for a history; [`ModelRanker`]
//!   wraps the deep model, [`crate::baselines`] holds popularity, item-kNN and BPR.
//! - Splits: [`leave_last_out`] (per user, the SASRec/BERT4Rec protocol) and
//!   [`time_split`] (one global time cutoff), both returning a [`Split`].
//! - Protocols ([`Protocol`]): full ranking over the catalog (optionally excluding items
//!   already in the history), the sampled protocol (target vs 100 uniformly sampled
//!   items the user has not interacted with) and basket requests (full ranking without
//!   the basket's items; [`basket_cases`] builds them from held-out order lines).
//! - [`evaluate`] computes a [`MetricReport`] in parallel (rayon; the result does not
//!   depend on the number of threads), [`table`] prints reports as a markdown table and
//!   [`dump_rankings`] writes per-case rankings as JSON lines so the metrics can be
//!   recomputed with other tools.
//!
//! # Metric definitions
//! Each case has exactly one relevant item (the target). Let `r` be its 1-based rank among
//! the case's candidates and `n` the number of candidates (the target included).
//!
//! - **Tie rule (pessimistic)**: `r = 1 + #{candidates c ≠ target : score(c) ≥ score(target)}`.
//!   Every item tied with the target counts as ranked above it, so a ranker cannot gain
//!   from ties (a popularity ranker whose target has a zero count gets the worst rank
//!   shared by all zero-count items). NaN scores count as −∞.
//! - HR@K = Recall@K = `1[r ≤ K]`; NDCG@K = `1/log2(r + 1)` if `r ≤ K`, else 0 (the ideal
//!   DCG is 1); Precision@K = HR@K / K; F1@K = harmonic mean of Precision@K and Recall@K
//!   per case (`2/(K + 1)` on a hit, 0 otherwise); MRR = `1/r` (no cutoff).
//! - AUC = fraction of the other candidates ranked strictly below the target,
//!   `(n − r)/(n − 1)` (ties count against the ranker, as above); 1 when `n = 1`.
//! - Accuracy = fraction of cases whose target ranks first (HR@1): the seed's "accuracy"
//!   of a next-item classifier that predicts its top item.
//! - Coverage@K = number of distinct items appearing in any case's top-K list, divided
//!   by the catalog size. Top-K lists order by score, then by item index (ascending).
//!
//! All per-case values are averaged over the evaluated cases.
use std::collections::HashSet;
use std::io::{self, Write};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::history::{EventKind, HistoryEvent};
use crate::kernels::{topk, CpuKernel, HeadPlan, ItemVectors};
use crate::model::Model;
use crate::recommend::score;

/// Anything that scores every catalog item for a history. Higher scores rank first.
pub trait Ranker: Sync {
    /// Short name for tables and logs.
    fn name(&self) -> String;

    /// Scores every catalog item for `history` (oldest first) at time `now` (Unix
    /// seconds). `out.len()` is the number of catalog items; every entry must be written.
    fn score_all(&self, history: &[HistoryEvent], now: f64, out: &mut [f32]);

    /// Scores every item for an evaluation case. The default ignores the user index and
    /// calls [`Ranker::score_all`]; rankers that learned per-user parameters on the
    /// training sequences (BPR) may use `case.user`.
    fn score_case(&self, case: &EvalCase, out: &mut [f32]) {
        self.score_all(&case.history, case.now, out)
    }
}

/// The deep model as a [`Ranker`]: item vectors and the head plan are computed once, each
/// call runs [`score::logits`] (encode the history, score the catalog with the fastest CPU
/// kernel, add the memory term), the path the recommendation engine shares.
pub struct ModelRanker<'a> {
    model: &'a Model,
    plan: HeadPlan,
    kernel: CpuKernel,
    name: String,
    /// Whether the model's transition memory (if any) is added to the logits.
    use_memory: bool,
}

impl<'a> ModelRanker<'a> {
    /// Precomputes the item vectors and the scoring head's item-side plan.
    pub fn new(model: &'a Model) -> ModelRanker<'a> {
        ModelRanker::with_plan(model, model.runtime_plan())
    }

    /// A ranker over an already built plan: a loaded [`crate::recommend::Recommender`]'s
    /// model has freed its `item.id` rows once its plan was built
    /// ([`Model::drop_id_rows`]), so its plan is passed in (`rec.plan.clone()`) instead of
    /// rebuilt.
    pub fn with_plan(model: &'a Model, plan: HeadPlan) -> ModelRanker<'a> {
        ModelRanker {
            model,
            plan,
            kernel: CpuKernel::best(),
            name: "model".to_string(),
            use_memory: true,
        }
    }

    /// Ranks with the deep part alone: the model's transition memory is not added.
    pub fn without_memory(mut self) -> ModelRanker<'a> {
        self.use_memory = false;
        self
    }

    /// Renames the ranker (e.g. to tell model variants apart in a table).
    pub fn with_name(mut self, name: impl Into<String>) -> ModelRanker<'a> {
        self.name = name.into();
        self
    }

    /// Number of catalog items the model scores.
    pub fn n_items(&self) -> usize {
        self.plan.n_items
    }

    /// The item vectors it scores with, `[n × d]` (int8 for an int8 weight file).
    pub fn item_vectors(&self) -> &ItemVectors {
        &self.plan.item_vectors
    }
}

impl Ranker for ModelRanker<'_> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn score_all(&self, history: &[HistoryEvent], _now: f64, out: &mut [f32]) {
        if out.len() != self.plan.n_items {
            out.fill(f32::NEG_INFINITY);
            return;
        }
        let scored = score::logits(
            self.model,
            &self.plan,
            self.kernel,
            history,
            self.use_memory,
            out,
        );
        if scored.is_err() {
            // Unreachable: the plan comes from the model and `out` has its length.
            out.fill(f32::NEG_INFINITY);
        }
    }
}

/// One held-out prediction: given `history` at time `now`, rank `target`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalCase {
    /// Index of the user's sequence in the input (and in [`Split::train`]).
    pub user: usize,
    /// What the ranker sees, oldest first.
    pub history: Vec<HistoryEvent>,
    /// The item to be ranked (catalog index).
    pub target: u32,
    /// Time of the prediction (the target event's timestamp).
    pub now: f64,
}

/// Training sequences plus validation and test cases.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    /// Training sequence per user, indexed like the input sequences (possibly empty).
    pub train: Vec<Vec<HistoryEvent>>,
    /// Validation cases (for tuning and early stopping); targets are not in `train`.
    pub valid: Vec<EvalCase>,
    /// Test cases; targets are in neither `train` nor `valid`.
    pub test: Vec<EvalCase>,
}

/// The least data `vitrine train` accepts: below these, training and evaluation would
/// "succeed" with every metric 0 (or meaningless), so it refuses unless forced.
pub const MIN_TRAIN_USERS: usize = 10;
/// Distinct items seen in training (see [`MIN_TRAIN_USERS`]).
pub const MIN_TRAIN_ITEMS: usize = 10;
/// Validation cases, and test cases (see [`MIN_TRAIN_USERS`]).
pub const MIN_EVAL_CASES: usize = 10;

/// Too little data to train and evaluate (see [`Split::check_minimums`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too little data to train and evaluate: {what} is {found}, at least {min} needed")]
pub struct TooLittleData {
    /// What is short: users with training events, distinct training items, validation
    /// cases or test cases.
    pub what: &'static str,
    /// How many there are.
    pub found: usize,
    /// The minimum.
    pub min: usize,
}

impl Split {
    /// Every user's events but the test target and what follows it: the test case's
    /// history where the user has a test case, else the validation case's history with
    /// its target appended (an event of kind `target`, at the case's time), else the
    /// training sequence; indexed like [`Split::train`]. What a refit trains on
    /// ([`crate::train::TrainConfig::refit_epochs`]) and the memory and the baselines are
    /// fitted on for the test, once validation has made every choice: no test target is
    /// in it, every validation target is.
    pub fn refit_sequences(&self, target: EventKind) -> Vec<Vec<HistoryEvent>> {
        let mut out = self.train.clone();
        for c in &self.valid {
            if let Some(s) = out.get_mut(c.user) {
                if c.history.len() + 1 > s.len() {
                    let mut h = c.history.clone();
                    h.push(HistoryEvent {
                        item: c.target,
                        kind: target,
                        at: c.now,
                    });
                    *s = h;
                }
            }
        }
        for c in &self.test {
            if let Some(s) = out.get_mut(c.user) {
                // At equal length the test history wins: its events are as logged
                // (leave-last-out: the validation target is its last event).
                if c.history.len() >= s.len() {
                    s.clone_from(&c.history);
                }
            }
        }
        out
    }

    /// Checks the split against [`MIN_TRAIN_USERS`], [`MIN_TRAIN_ITEMS`] and
    /// [`MIN_EVAL_CASES`] (validation and test each); the first shortfall is the error.
    pub fn check_minimums(&self) -> Result<(), TooLittleData> {
        let users = self.train.iter().filter(|s| !s.is_empty()).count();
        let items: std::collections::HashSet<u32> =
            self.train.iter().flatten().map(|e| e.item).collect();
        let checks = [
            (
                "the number of users with training events",
                users,
                MIN_TRAIN_USERS,
            ),
            (
                "the number of distinct items in training",
                items.len(),
                MIN_TRAIN_ITEMS,
            ),
            (
                "the number of validation cases",
                self.valid.len(),
                MIN_EVAL_CASES,
            ),
            ("the number of test cases", self.test.len(), MIN_EVAL_CASES),
        ];
        for (what, found, min) in checks {
            if found < min {
                return Err(TooLittleData { what, found, min });
            }
        }
        Ok(())
    }
}

/// Below this share of repeat events in training ([`repeat_rate`]), validation excludes
/// the history's items ([`validation_protocol`]): 1%.
pub const REPEAT_RATE_KEEP_SEEN: f64 = 0.01;

/// The share of training events whose item already occurs earlier in the same user's
/// training sequence: `#{(u, t) : t > 0, item(u, t) ∈ {item(u, 0..t)}} / #{(u, t) : t > 0}`
/// (0 when no sequence has two events). Online Retail's shoppers rebuy (31.6% of
/// its events); review datasets such as the Amazon benchmarks never repeat (0).
pub fn repeat_rate(train: &[Vec<HistoryEvent>]) -> f64 {
    let (mut repeats, mut events) = (0usize, 0usize);
    let mut seen = HashSet::new();
    for seq in train {
        seen.clear();
        for (t, e) in seq.iter().enumerate() {
            if t > 0 {
                events += 1;
                repeats += usize::from(seen.contains(&e.item));
            }
            seen.insert(e.item);
        }
    }
    if events == 0 {
        0.0
    } else {
        repeats as f64 / events as f64
    }
}

/// The full-ranking protocol validation reads, chosen from the training data alone (its
/// [`repeat_rate`]): where users almost never return to an item (below
/// [`REPEAT_RATE_KEEP_SEEN`]), ranking the history's items can only push the target down,
/// a storefront would filter them (`excludeSeen`) and the benchmarks report that way, so
/// they are excluded; otherwise (rebuys) they stay candidates.
pub fn validation_protocol(repeat_rate: f64) -> Protocol {
    Protocol::Full {
        exclude_seen: repeat_rate < REPEAT_RATE_KEEP_SEEN,
    }
}

/// Leave-last-out per user (SASRec, BERT4Rec): for a sequence of `n ≥ 3` events, train on
/// the first `n − 2`, validate on event `n − 2` given the first `n − 2`, test on the last
/// event given the first `n − 1`. Users with fewer than 3 events are used for training
/// only. Sequences are assumed to be in time order.
pub fn leave_last_out(sequences: &[Vec<HistoryEvent>]) -> Split {
    let mut split = Split::default();
    for (user, seq) in sequences.iter().enumerate() {
        let n = seq.len();
        if n < 3 {
            split.train.push(seq.clone());
            continue;
        }
        split.train.push(seq[..n - 2].to_vec());
        split.valid.push(EvalCase {
            user,
            history: seq[..n - 2].to_vec(),
            target: seq[n - 2].item,
            now: seq[n - 2].at,
        });
        split.test.push(EvalCase {
            user,
            history: seq[..n - 1].to_vec(),
            target: seq[n - 1].item,
            now: seq[n - 1].at,
        });
    }
    split
}

/// The basket of a case (its `history` and time `now`): the history's trailing events at
/// `now`, the target's time (empty when the last event is earlier). In Online Retail
/// every line of an invoice carries the invoice's time, so these are the other lines of
/// the target's order that come before it in the file.
pub fn basket_of(history: &[HistoryEvent], now: f64) -> &[HistoryEvent] {
    let start = history.len() - history.iter().rev().take_while(|e| e.at == now).count();
    &history[start..]
}

/// Basket requests from next-item cases ("frequently bought together"): the cases of
/// `cases` whose target was bought in an order with other items (a non-empty
/// [`basket_of`]), with those basket events read as cart events (as
/// `recommend({ basket })` reads a basket); the history before the order is kept as it
/// is. Rank them under [`Protocol::Basket`].
///
/// From [`leave_last_out`]'s test cases this is, per test user whose last line shares its
/// invoice with other lines, the last line hidden and the rest of its invoice as the
/// basket; from its validation cases, the second-to-last line hidden and the lines of its
/// invoice before it. Neither hidden line is in [`Split::train`]; the two cases of a user
/// often share an invoice, so tuning on validation sees the test invoice's other lines
/// (as a basket and in training, like every model here) but never its hidden line.
pub fn basket_cases(cases: &[EvalCase]) -> Vec<EvalCase> {
    cases
        .iter()
        .filter_map(|c| {
            let k = basket_of(&c.history, c.now).len();
            if k == 0 {
                return None;
            }
            let mut c = c.clone();
            let n = c.history.len();
            for e in &mut c.history[n - k..] {
                e.kind = EventKind::Cart;
            }
            Some(c)
        })
        .collect()
}

/// The timestamp below which a fraction `q` (clamped to [0, 1]) of all events lie: the
/// `q`-quantile of all event times. `None` when there are no events or `q` is NaN.
pub fn cutoff_quantile(sequences: &[Vec<HistoryEvent>], q: f64) -> Option<f64> {
    if q.is_nan() {
        return None;
    }
    let mut times: Vec<f64> = sequences
        .iter()
        .flatten()
        .map(|e| e.at)
        .filter(|t| t.is_finite())
        .collect();
    if times.is_empty() {
        return None;
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let q = q.clamp(0.0, 1.0);
    let idx = ((times.len() as f64 * q).floor() as usize).min(times.len() - 1);
    Some(times[idx])
}

/// Global time split at `cutoff`, with the validation cutoff placed one test window
/// earlier: `valid_cutoff = cutoff − (t_max − cutoff)` where `t_max` is the last event
/// time (so the validation window is as long as the test window). See
/// [`time_split_with`] for the construction.
pub fn time_split(sequences: &[Vec<HistoryEvent>], cutoff: f64) -> Split {
    time_split_with(sequences, valid_cutoff(sequences, cutoff), cutoff)
}

/// The validation cutoff of [`time_split`]: one test window before `cutoff`,
/// `cutoff − (t_max − cutoff)` with `t_max` the last finite event time (`cutoff` itself
/// when no event is later).
pub fn valid_cutoff(sequences: &[Vec<HistoryEvent>], cutoff: f64) -> f64 {
    let t_max = sequences
        .iter()
        .flatten()
        .map(|e| e.at)
        .filter(|t| t.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    if t_max > cutoff {
        cutoff - (t_max - cutoff)
    } else {
        cutoff
    }
}

/// Global time split with explicit cutoffs (`valid_cutoff ≤ test_cutoff`).
///
/// - `train`: per user, the events before `valid_cutoff` (so that no validation or test
///   target is ever trained on, as in [`leave_last_out`]).
/// - `valid`: per user with at least one event before `valid_cutoff`, the first event in
///   `[valid_cutoff, test_cutoff)` as target, the events before `valid_cutoff` as history.
/// - `test`: per user with at least one event before `test_cutoff`, the first event at or
///   after `test_cutoff` as target, all events before `test_cutoff` as history.
///
/// Sequences are assumed to be in time order. If `valid_cutoff > test_cutoff` the two are
/// swapped.
pub fn time_split_with(
    sequences: &[Vec<HistoryEvent>],
    valid_cutoff: f64,
    test_cutoff: f64,
) -> Split {
    let (vc, tc) = if valid_cutoff <= test_cutoff {
        (valid_cutoff, test_cutoff)
    } else {
        (test_cutoff, valid_cutoff)
    };
    let mut split = Split::default();
    for (user, seq) in sequences.iter().enumerate() {
        let n_before_valid = seq.iter().take_while(|e| e.at < vc).count();
        let n_before_test = seq.iter().take_while(|e| e.at < tc).count();
        split.train.push(seq[..n_before_valid].to_vec());
        if n_before_valid > 0 {
            if let Some(e) = seq.get(n_before_valid).filter(|e| e.at < tc) {
                split.valid.push(EvalCase {
                    user,
                    history: seq[..n_before_valid].to_vec(),
                    target: e.item,
                    now: e.at,
                });
            }
        }
        if n_before_test > 0 {
            if let Some(e) = seq.get(n_before_test) {
                split.test.push(EvalCase {
                    user,
                    history: seq[..n_before_test].to_vec(),
                    target: e.item,
                    now: e.at,
                });
            }
        }
    }
    split
}

/// How the target is ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Protocol {
    /// Rank the target among all catalog items. With `exclude_seen`, items in the
    /// history other than the target are removed from the candidates.
    Full {
        /// Remove already-seen items (except the target) from the candidates.
        exclude_seen: bool,
    },
    /// The SASRec protocol: the target against `negatives` items drawn uniformly without
    /// replacement from the items not in the user's history (nor the target), the draw
    /// being deterministic given `seed`, the user index and the target.
    Sampled {
        /// Number of sampled negatives (100 in the SASRec protocol).
        negatives: usize,
        /// Seed of the draw.
        seed: u64,
    },
    /// Basket requests ("frequently bought together", [`basket_cases`]): rank the target
    /// among all catalog items except the case's basket ([`basket_of`]: the history's
    /// trailing events at the target's time, the rest of its order); earlier history
    /// items stay candidates (repeat purchases are common).
    Basket,
}

impl Protocol {
    /// The SASRec protocol: 100 sampled negatives.
    pub fn sampled(seed: u64) -> Protocol {
        Protocol::Sampled {
            negatives: 100,
            seed,
        }
    }

    /// Short human-readable description (used in reports).
    pub fn describe(&self) -> String {
        match self {
            Protocol::Full {
                exclude_seen: false,
            } => "full ranking".to_string(),
            Protocol::Full { exclude_seen: true } => {
                "full ranking, seen items excluded".to_string()
            }
            Protocol::Sampled { negatives, seed } => {
                format!("sampled: target vs {negatives} negatives (seed {seed})")
            }
            Protocol::Basket => "full ranking, basket items excluded".to_string(),
        }
    }
}

/// Options of [`evaluate`].
#[derive(Clone)]
pub struct EvalOptions<'a> {
    /// Cutoffs K for HR, NDCG, Recall, Precision and F1 (default 5, 10, 20).
    pub ks: Vec<usize>,
    /// K of the catalog coverage (default 10).
    pub coverage_k: usize,
    /// Called with `1` each time a case is finished (from worker threads), so a caller
    /// can advance a progress bar.
    pub progress: Option<&'a (dyn Fn(usize) + Sync)>,
    /// A partition of the cases into segments, each also summarised on its own
    /// ([`MetricReport::segments`]); `None` for none.
    pub segments: Option<&'a Segments>,
}

/// A partition of the evaluated cases into named segments ([`MetricReport::segments`]):
/// `of_case[c]` is the index in `names` of case `c`'s segment, aligned with the cases
/// handed to [`evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Segments {
    /// Segment names, in report order.
    pub names: Vec<String>,
    /// Each case's segment.
    pub of_case: Vec<usize>,
}

/// Bucket edges of [`Segments::by_target_frequency`]: targets with 0, 1–4, 5–19, 20–99
/// and at least 100 events in training.
pub const FREQUENCY_EDGES: [usize; 4] = [1, 5, 20, 100];

impl Segments {
    /// The cases by how often their target occurs in `train` (events of any kind): the
    /// buckets `[0, e₀)`, `[e₀, e₁)`, …, `[e_last, ∞)` of the increasing `edges`, named
    /// `"0"`, `"1-4"`, …, `"100+"` (a bucket of one value is named by it). A target
    /// outside the catalog (`>= n_items`) counts as never seen.
    pub fn by_target_frequency(
        train: &[Vec<HistoryEvent>],
        cases: &[EvalCase],
        n_items: usize,
        edges: &[usize],
    ) -> Segments {
        let mut count = vec![0usize; n_items];
        for e in train.iter().flatten() {
            if let Some(c) = count.get_mut(e.item as usize) {
                *c += 1;
            }
        }
        let mut names = Vec::with_capacity(edges.len() + 1);
        let mut lo = 0usize;
        for &hi in edges {
            names.push(if hi == lo + 1 {
                lo.to_string()
            } else {
                format!("{lo}-{}", hi.saturating_sub(1))
            });
            lo = hi;
        }
        names.push(format!("{lo}+"));
        let of_case = cases
            .iter()
            .map(|c| {
                let n = count.get(c.target as usize).copied().unwrap_or(0);
                edges.iter().take_while(|&&e| n >= e).count()
            })
            .collect();
        Segments { names, of_case }
    }
}

impl Default for EvalOptions<'_> {
    fn default() -> Self {
        EvalOptions {
            ks: vec![5, 10, 20],
            coverage_k: 10,
            progress: None,
            segments: None,
        }
    }
}

impl std::fmt::Debug for EvalOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalOptions")
            .field("ks", &self.ks)
            .field("coverage_k", &self.coverage_k)
            .field("progress", &self.progress.is_some())
            .field("segments", &self.segments)
            .finish()
    }
}

/// Cutoff metrics at one K (see the module docs for definitions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AtK {
    /// The cutoff.
    pub k: usize,
    /// Hit rate.
    pub hr: f64,
    /// Normalised discounted cumulative gain.
    pub ndcg: f64,
    /// Recall (equal to HR with one target per case).
    pub recall: f64,
    /// Precision.
    pub precision: f64,
    /// F1 of precision and recall, averaged per case.
    pub f1: f64,
}

/// Averaged metrics of one ranker on one set of cases under one protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricReport {
    /// The protocol, as [`Protocol::describe`] says it.
    pub protocol: String,
    /// Number of cases evaluated.
    pub n_cases: usize,
    /// Cases skipped because their target is outside the catalog.
    pub n_skipped: usize,
    /// Mean number of candidates per case (target included).
    pub mean_candidates: f64,
    /// Metrics at each cutoff.
    pub at_k: Vec<AtK>,
    /// Mean reciprocal rank.
    pub mrr: f64,
    /// Mean AUC.
    pub auc: f64,
    /// Fraction of cases with the target ranked first (HR@1).
    pub accuracy: f64,
    /// K of the coverage.
    pub coverage_k: usize,
    /// Distinct items in any top-`coverage_k` list, over the catalog size.
    pub coverage: f64,
    /// With [`EvalOptions::segments`], each segment's name and its own report (that
    /// segment's cases alone), in the segments' order; empty otherwise. Not serialised.
    #[serde(skip)]
    pub segments: Vec<(String, MetricReport)>,
}

impl MetricReport {
    /// Looks a metric up by name: `HR@K`, `NDCG@K`, `Recall@K`, `Precision@K`, `F1@K`
    /// (for an evaluated K), `MRR`, `AUC`, `Accuracy`, `Coverage@K` (the evaluated
    /// coverage K). Case-insensitive.
    pub fn get(&self, name: &str) -> Option<f64> {
        let lower = name.trim().to_ascii_lowercase();
        match lower.as_str() {
            "mrr" => return Some(self.mrr),
            "auc" => return Some(self.auc),
            "accuracy" | "acc" | "hr@1" => return Some(self.accuracy),
            _ => {}
        }
        let (metric, k) = lower.split_once('@')?;
        let k: usize = k.parse().ok()?;
        if metric == "coverage" || metric == "cov" {
            return (k == self.coverage_k).then_some(self.coverage);
        }
        let at = self.at_k.iter().find(|a| a.k == k)?;
        match metric {
            "hr" => Some(at.hr),
            "ndcg" => Some(at.ndcg),
            "recall" => Some(at.recall),
            "precision" => Some(at.precision),
            "f1" => Some(at.f1),
            _ => None,
        }
    }
}

/// Default columns of [`table`].
pub const TABLE_COLUMNS: [&str; 10] = [
    "HR@5",
    "NDCG@5",
    "HR@10",
    "NDCG@10",
    "HR@20",
    "NDCG@20",
    "MRR",
    "AUC",
    "Accuracy",
    "Coverage@10",
];

/// A markdown table, one row per named report, with the [`TABLE_COLUMNS`].
pub fn table(reports: &[(&str, &MetricReport)]) -> String {
    table_with(reports, &TABLE_COLUMNS)
}

/// A markdown table, one row per named report, with the given metric columns (names as
/// [`MetricReport::get`] takes them; unknown ones print `–`). Values have 4 decimals.
pub fn table_with(reports: &[(&str, &MetricReport)], columns: &[&str]) -> String {
    let mut s = String::from("| ranker |");
    for c in columns {
        s.push_str(&format!(" {c} |"));
    }
    s.push_str("\n|---|");
    for _ in columns {
        s.push_str("---:|");
    }
    s.push('\n');
    for (name, r) in reports {
        s.push_str(&format!("| {name} |"));
        for c in columns {
            match r.get(c) {
                Some(v) => s.push_str(&format!(" {v:.4} |")),
                None => s.push_str(" – |"),
            }
        }
        s.push('\n');
    }
    s
}

pub use crate::rng::SplitMix64;

/// The negatives of the sampled protocol for one case: `negatives` distinct items drawn
/// uniformly from `0..n_items` minus the history items and the target (all of them, in
/// index order, when fewer are available). Deterministic in `(seed, case.user,
/// case.target)`.
pub fn sample_negatives(case: &EvalCase, n_items: usize, negatives: usize, seed: u64) -> Vec<u32> {
    let mut excluded: HashSet<u32> = case.history.iter().map(|e| e.item).collect();
    excluded.insert(case.target);
    let n_excluded_in_range = excluded.iter().filter(|&&i| (i as usize) < n_items).count();
    let available = n_items - n_excluded_in_range;
    if available <= negatives {
        return (0..n_items as u32)
            .filter(|i| !excluded.contains(i))
            .collect();
    }
    let mut rng = SplitMix64::new(
        seed ^ (case.user as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (case.target as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F),
    );
    let mut out = Vec::with_capacity(negatives);
    while out.len() < negatives {
        let i = rng.below(n_items as u64) as u32;
        if excluded.insert(i) {
            out.push(i);
        }
    }
    out
}

/// The items of `excluded` that lie in `0..n_items`, sorted and distinct, without
/// `target` (the target always stays a candidate).
fn excluded_items<'a>(
    excluded: impl Iterator<Item = &'a HistoryEvent>,
    target: u32,
    n_items: usize,
) -> Vec<u32> {
    let mut out: Vec<u32> = excluded
        .map(|e| e.item)
        .filter(|&i| i != target && (i as usize) < n_items)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn key(s: f32) -> f32 {
    if s.is_nan() {
        f32::NEG_INFINITY
    } else {
        s
    }
}

/// The candidates of one case under a protocol.
enum Candidates {
    /// Every item of the catalog but these (sorted, distinct, in range, never the
    /// target): the full and basket protocols. Nothing is copied per item; ranks and
    /// top lists are read off the score buffer.
    AllBut(Vec<u32>),
    /// These items with their scores, target first then the negatives (sampled).
    Listed(Vec<(u32, f32)>),
}

/// The ranking of one case under a protocol, over the scores it was built from.
struct CaseRanking<'s> {
    scores: &'s [f32],
    candidates: Candidates,
    target_score: f32,
}

impl CaseRanking<'_> {
    /// Number of candidates (target included).
    fn n_candidates(&self) -> usize {
        match &self.candidates {
            Candidates::AllBut(excluded) => self.scores.len() - excluded.len(),
            Candidates::Listed(c) => c.len(),
        }
    }

    /// 1 + the number of other candidates scoring at least the target's score (ties
    /// counted against the target; NaN as −∞).
    fn rank(&self, target: u32) -> usize {
        let t = key(self.target_score);
        match &self.candidates {
            Candidates::AllBut(excluded) => {
                // Every item at or above the target, the target itself included, less
                // the excluded ones (the target is never among them).
                let all = self.scores.iter().filter(|&&s| key(s) >= t).count();
                let gone = excluded
                    .iter()
                    .filter(|&&i| key(self.scores[i as usize]) >= t)
                    .count();
                all - gone
            }
            Candidates::Listed(c) => {
                1 + c
                    .iter()
                    .filter(|(i, s)| *i != target && key(*s) >= t)
                    .count()
            }
        }
    }

    /// Top `k` candidates by score, ties by item index, NaN as −∞ (the order of
    /// [`crate::kernels::topk`] on NaN-free scores).
    fn top(&self, k: usize) -> Vec<(u32, f32)> {
        match &self.candidates {
            Candidates::AllBut(excluded) => top_k_but(self.scores, excluded, k),
            Candidates::Listed(c) => {
                topk::top_k_of(c.iter().map(|&(i, s)| (i, key(s))).collect(), k)
            }
        }
    }
}

/// The `k` best of `scores` (NaN as −∞) leaving out the sorted indices `excluded`, best
/// first, in the order of [`topk::rank_cmp`]: the same list as [`topk::top_k_of`] over
/// the remaining `(index, key(score))` entries, found in one pass that keeps the `k`
/// best so far. Scanning in index order, a later entry displaces the worst kept one only
/// on a strictly better key, so the exclusion list is searched only for those.
fn top_k_but(scores: &[f32], excluded: &[u32], k: usize) -> Vec<(u32, f32)> {
    let mut kept: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    if k == 0 {
        return kept;
    }
    let mut worst = 0u32;
    for (i, &s) in scores.iter().enumerate() {
        let s = key(s);
        let sk = topk::sort_key(s);
        if kept.len() == k && sk <= worst {
            continue;
        }
        let i = i as u32;
        if excluded.binary_search(&i).is_ok() {
            continue;
        }
        let at = kept.partition_point(|e| topk::rank_cmp(e, &(i, s)).is_lt());
        kept.insert(at, (i, s));
        kept.truncate(k);
        if kept.len() == k {
            worst = topk::sort_key(kept[k - 1].1);
        }
    }
    kept
}

/// Scores a case into `buf` (`n_items` entries); `false` if the target is out of range
/// (nothing scored).
fn score_case_into(
    ranker: &dyn Ranker,
    case: &EvalCase,
    n_items: usize,
    buf: &mut Vec<f32>,
) -> bool {
    if case.target as usize >= n_items {
        return false;
    }
    buf.clear();
    buf.resize(n_items, f32::NEG_INFINITY);
    ranker.score_case(case, buf);
    true
}

/// The ranking of a case scored into `scores` ([`score_case_into`]) under `protocol`.
fn ranking<'s>(case: &EvalCase, protocol: &Protocol, scores: &'s [f32]) -> CaseRanking<'s> {
    let n_items = scores.len();
    let candidates = match *protocol {
        Protocol::Full { exclude_seen } => Candidates::AllBut(if exclude_seen {
            excluded_items(case.history.iter(), case.target, n_items)
        } else {
            Vec::new()
        }),
        Protocol::Basket => Candidates::AllBut(excluded_items(
            basket_of(&case.history, case.now).iter(),
            case.target,
            n_items,
        )),
        Protocol::Sampled { negatives, seed } => {
            let negs = sample_negatives(case, n_items, negatives, seed);
            Candidates::Listed(
                std::iter::once(case.target)
                    .chain(negs)
                    .map(|i| (i, scores[i as usize]))
                    .collect(),
            )
        }
    };
    CaseRanking {
        scores,
        candidates,
        target_score: scores[case.target as usize],
    }
}

/// Scores a case and builds its candidate list; `None` if the target is out of range.
fn rank_case<'s>(
    ranker: &dyn Ranker,
    case: &EvalCase,
    n_items: usize,
    protocol: &Protocol,
    buf: &'s mut Vec<f32>,
) -> Option<CaseRanking<'s>> {
    score_case_into(ranker, case, n_items, buf).then(|| ranking(case, protocol, buf))
}

#[derive(Clone)]
struct CaseResult {
    rank: usize,
    n_candidates: usize,
    top: Vec<u32>,
}

/// Evaluates `ranker` on `cases` over a catalog of `n_items` items. Runs in parallel;
/// the result is the same for any number of threads. Cases whose target is outside the
/// catalog are counted in [`MetricReport::n_skipped`] and not evaluated.
pub fn evaluate(
    ranker: &dyn Ranker,
    cases: &[EvalCase],
    n_items: usize,
    protocol: Protocol,
    opts: &EvalOptions<'_>,
) -> MetricReport {
    let mut reports = evaluate_protocols(ranker, cases, n_items, &[protocol], opts);
    reports.remove(0)
}

/// [`evaluate`] under several protocols at once, one report per protocol in order: each
/// case is scored once and ranked under every protocol (the same reports as one
/// [`evaluate`] per protocol, for a single scoring pass). `opts.progress` is called once
/// per case.
pub fn evaluate_protocols(
    ranker: &dyn Ranker,
    cases: &[EvalCase],
    n_items: usize,
    protocols: &[Protocol],
    opts: &EvalOptions<'_>,
) -> Vec<MetricReport> {
    let cov_k = opts.coverage_k;
    let results: Vec<Vec<Option<CaseResult>>> = cases
        .par_iter()
        .map_init(Vec::new, |buf, case| {
            let scored = score_case_into(ranker, case, n_items, buf);
            let r = protocols
                .iter()
                .map(|protocol| {
                    scored.then(|| {
                        let cr = ranking(case, protocol, buf);
                        CaseResult {
                            rank: cr.rank(case.target),
                            n_candidates: cr.n_candidates(),
                            top: cr.top(cov_k).into_iter().map(|(i, _)| i).collect(),
                        }
                    })
                })
                .collect();
            if let Some(p) = opts.progress {
                p(1);
            }
            r
        })
        .collect();
    let mut per_protocol: Vec<Vec<Option<CaseResult>>> = protocols
        .iter()
        .map(|_| Vec::with_capacity(cases.len()))
        .collect();
    for case_results in results {
        for (list, r) in per_protocol.iter_mut().zip(case_results) {
            list.push(r);
        }
    }
    protocols
        .iter()
        .zip(&per_protocol)
        .map(|(protocol, list)| {
            let mut report = summarise(list, n_items, protocol, opts);
            if let Some(seg) = opts.segments {
                assert_eq!(
                    seg.of_case.len(),
                    cases.len(),
                    "EvalOptions::segments must give one segment per case"
                );
                report.segments = (0..seg.names.len())
                    .map(|s| {
                        let part: Vec<Option<CaseResult>> = list
                            .iter()
                            .zip(&seg.of_case)
                            .filter(|(_, &c)| c == s)
                            .map(|(r, _)| r.clone())
                            .collect();
                        (
                            seg.names[s].clone(),
                            summarise(&part, n_items, protocol, opts),
                        )
                    })
                    .collect();
            }
            report
        })
        .collect()
}

fn summarise(
    results: &[Option<CaseResult>],
    n_items: usize,
    protocol: &Protocol,
    opts: &EvalOptions<'_>,
) -> MetricReport {
    let n_skipped = results.iter().filter(|r| r.is_none()).count();
    let done: Vec<&CaseResult> = results.iter().flatten().collect();
    let n = done.len();
    let denom = n.max(1) as f64;
    let mut at_k = Vec::with_capacity(opts.ks.len());
    for &k in &opts.ks {
        let (mut hr, mut ndcg, mut prec, mut f1) = (0.0, 0.0, 0.0, 0.0);
        for r in &done {
            if r.rank <= k {
                hr += 1.0;
                ndcg += 1.0 / ((r.rank + 1) as f64).log2();
                prec += 1.0 / k as f64;
                f1 += 2.0 / (k as f64 + 1.0);
            }
        }
        at_k.push(AtK {
            k,
            hr: hr / denom,
            ndcg: ndcg / denom,
            recall: hr / denom,
            precision: prec / denom,
            f1: f1 / denom,
        });
    }
    let mut mrr = 0.0;
    let mut auc = 0.0;
    let mut acc = 0.0;
    let mut cand = 0.0;
    let mut covered = vec![false; n_items];
    for r in &done {
        mrr += 1.0 / r.rank as f64;
        auc += if r.n_candidates > 1 {
            (r.n_candidates - r.rank) as f64 / (r.n_candidates - 1) as f64
        } else {
            1.0
        };
        if r.rank == 1 {
            acc += 1.0;
        }
        cand += r.n_candidates as f64;
        for &i in &r.top {
            covered[i as usize] = true;
        }
    }
    let n_covered = covered.iter().filter(|&&c| c).count();
    MetricReport {
        protocol: protocol.describe(),
        n_cases: n,
        n_skipped,
        mean_candidates: cand / denom,
        at_k,
        mrr: mrr / denom,
        auc: auc / denom,
        accuracy: acc / denom,
        coverage_k: opts.coverage_k,
        coverage: if n_items == 0 {
            0.0
        } else {
            n_covered as f64 / n_items as f64
        },
        segments: Vec::new(),
    }
}

/// One line of [`dump_rankings`]' output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DumpLine {
    /// Index of the user's sequence.
    pub user: usize,
    /// The target item.
    pub target: u32,
    /// Time of the prediction.
    pub now: f64,
    /// `full`, `sampled` or `basket`.
    pub protocol: String,
    /// The target's rank under the pessimistic tie rule (see the module docs).
    pub rank: usize,
    /// Number of candidates (target included).
    pub n_candidates: usize,
    /// The target's score (`null` if not finite; read `null` as −∞).
    pub target_score: Option<f32>,
    /// Full protocol: the top-100 candidates by score (ties by index). Sampled protocol:
    /// all candidates, the target first, then the negatives in draw order.
    pub items: Vec<u32>,
    /// Scores of `items`, aligned (`null` where not finite; read as −∞).
    pub scores: Vec<Option<f32>>,
}

/// Number of items per case in a full-protocol dump.
pub const DUMP_TOP: usize = 100;

/// Writes one JSON line ([`DumpLine`]) per case: under the full protocol the top-100
/// candidates with their scores, under the sampled protocol every candidate with its
/// score, so the metrics can be recomputed elsewhere (a target inside the top 100 has
/// every item scoring at least as high listed, so its rank follows from the line).
/// Cases whose target is outside the catalog are skipped. Scoring runs in parallel in
/// chunks; lines are written in case order.
pub fn dump_rankings<W: Write>(
    ranker: &dyn Ranker,
    cases: &[EvalCase],
    n_items: usize,
    protocol: Protocol,
    mut writer: W,
) -> io::Result<()> {
    for chunk in cases.chunks(256) {
        let lines: Vec<Option<DumpLine>> = chunk
            .par_iter()
            .map_init(Vec::new, |buf, case| {
                let cr = rank_case(ranker, case, n_items, &protocol, buf)?;
                let kind = match protocol {
                    Protocol::Full { .. } => "full",
                    Protocol::Basket => "basket",
                    Protocol::Sampled { .. } => "sampled",
                };
                // Every sampled candidate in protocol order; the top 100 of the others.
                let listed = match &cr.candidates {
                    Candidates::Listed(c) => c.clone(),
                    Candidates::AllBut(_) => cr.top(DUMP_TOP),
                };
                let finite = |s: f32| s.is_finite().then_some(s);
                Some(DumpLine {
                    user: case.user,
                    target: case.target,
                    now: case.now,
                    protocol: kind.to_string(),
                    rank: cr.rank(case.target),
                    n_candidates: cr.n_candidates(),
                    target_score: finite(cr.target_score),
                    items: listed.iter().map(|p| p.0).collect(),
                    scores: listed.iter().map(|p| finite(p.1)).collect(),
                })
            })
            .collect();
        for line in lines.into_iter().flatten() {
            serde_json::to_writer(&mut writer, &line)?;
            writer.write_all(b"\n")?;
        }
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purchases(items: &[u32]) -> Vec<HistoryEvent> {
        items
            .iter()
            .enumerate()
            .map(|(t, &item)| HistoryEvent {
                item,
                kind: EventKind::Purchase,
                at: t as f64,
            })
            .collect()
    }

    /// Hand-counted: `[1, 2, 1, 1]` has 3 events after the first, 2 of them repeats;
    /// `[3, 4]` 1 event, no repeat; `[5]` and `[]` none; `[2, 6]` 1 event, not a repeat (2
    /// was another user's). 2 / 5.
    #[test]
    fn repeat_rate_counts_returns_to_an_item_within_a_user() {
        let train = vec![
            purchases(&[1, 2, 1, 1]),
            purchases(&[3, 4]),
            purchases(&[5]),
            purchases(&[]),
            purchases(&[2, 6]),
        ];
        assert_eq!(repeat_rate(&train), 2.0 / 5.0);
        assert_eq!(repeat_rate(&[purchases(&[7]), purchases(&[])]), 0.0);
        // Validation excludes seen items only below the threshold.
        let never = vec![purchases(&(0..200).collect::<Vec<_>>())];
        assert_eq!(
            validation_protocol(repeat_rate(&never)),
            Protocol::Full { exclude_seen: true }
        );
        let mut once = (0..99).collect::<Vec<u32>>();
        once.push(0); // 1 repeat in 99 events: 1.01% ≥ 1%
        assert_eq!(
            validation_protocol(repeat_rate(&[purchases(&once)])),
            Protocol::Full {
                exclude_seen: false
            }
        );
    }

    /// [`top_k_but`] against the reference: [`topk::top_k_of`] over the entries left
    /// after the exclusions, on scores with ties, NaN, ±0 and ±∞.
    #[test]
    fn streaming_top_k_equals_selection_over_the_remaining_entries() {
        let palette = [
            1.0,
            1.0,
            0.5,
            -0.0,
            0.0,
            f32::NAN,
            f32::NEG_INFINITY,
            f32::INFINITY,
            -2.0,
            3.25,
        ];
        let mut rng = SplitMix64::new(7);
        for round in 0..400 {
            let n = 1 + rng.below(60) as usize;
            let scores: Vec<f32> = (0..n)
                .map(|_| {
                    if round % 2 == 0 {
                        palette[rng.below(palette.len() as u64) as usize]
                    } else {
                        rng.below(1000) as f32 / 7.0 - 50.0
                    }
                })
                .collect();
            let mut excluded: Vec<u32> = (0..rng.below(n as u64 + 1))
                .map(|_| rng.below(n as u64) as u32)
                .collect();
            excluded.sort_unstable();
            excluded.dedup();
            let k = rng.below(n as u64 + 3) as usize;
            let reference = topk::top_k_of(
                (0..n as u32)
                    .filter(|i| excluded.binary_search(i).is_err())
                    .map(|i| (i, key(scores[i as usize])))
                    .collect(),
                k,
            );
            let got = top_k_but(&scores, &excluded, k);
            let bits = |v: &[(u32, f32)]| -> Vec<(u32, u32)> {
                v.iter().map(|&(i, s)| (i, s.to_bits())).collect()
            };
            assert_eq!(
                bits(&got),
                bits(&reference),
                "round {round}: {scores:?} but {excluded:?}, k {k}"
            );
        }
    }
}
