//! Logs with several event kinds (views, carts, purchases): the evaluation protocol and
//! the choice of the per-kind target weights ([`super::TrainConfig::kind_weights`]).
//!
//! **Target kind.** The kind the store cares about: `purchase` when the log has
//! purchases, else the kind furthest down the funnel (view → cart → purchase) that it
//! has ([`target_kind`]). Validation and test targets are events of that kind only.
//!
//! **Split** ([`split`]). A log of one kind is split exactly as before
//! ([`eval::leave_last_out`], [`eval::time_split`]). A log of several kinds:
//! - leave-last-out: per user, with `p₁ < … < p_m` the positions of the target-kind
//!   events, the test case is event `p_m` given every event before it (all kinds), the
//!   validation case event `p_{m−1}` given every event before it, and training reads
//!   the events before `p_{m−1}`. Users with fewer than two target events, or none
//!   before `p_{m−1}`, train on their whole sequence and have no case. Events after
//!   `p_m` are used nowhere.
//! - time: with the same cutoffs as the one-kind split (`valid_cutoff = cutoff −
//!   (t_max − cutoff)`), training reads the events before `valid_cutoff`; the validation
//!   target is a user's first target-kind event in `[valid_cutoff, cutoff)` given the
//!   events before `valid_cutoff`; the test target the first target-kind event at or
//!   after `cutoff` given every event before `cutoff`.
//!
//! **Weights** ([`search_kind_weights`]). Every kind is an encoder input; targets are
//! weighted by kind: the target kind's weight is 1 and every other kind's is one shared
//! auxiliary weight `w ≤ 1`, taken from a small grid (`vitrine train --kind-weight-grid`,
//! default `0, 0.25, 1`). Each `w` trains a fresh model under the same seed with early
//! stopping; the `w` with the best validation NDCG@10 of the deep part (target-kind
//! targets, full ranking, the same sample as early stopping) is kept, the first in grid
//! order on a tie. The run is only made when the training sequences hold more than one
//! kind; a one-kind log trains once with every weight 1, exactly as before.
use serde::Serialize;

use super::TrainReport;
use crate::eval::{self, EvalCase, Split};
use crate::history::{EventKind, HistoryEvent};

/// The kinds present in `sequences`, in funnel order.
pub fn kinds_in(sequences: &[Vec<HistoryEvent>]) -> Vec<EventKind> {
    let mut seen = [false; 3];
    for e in sequences.iter().flatten() {
        seen[e.kind.index()] = true;
    }
    EventKind::ALL
        .into_iter()
        .filter(|k| seen[k.index()])
        .collect()
}

/// The kind validation and test targets are drawn from: purchase when `kinds` has it,
/// else the last of `kinds` in funnel order (purchase for an empty list).
pub fn target_kind(kinds: &[EventKind]) -> EventKind {
    kinds.iter().copied().max().unwrap_or(EventKind::Purchase)
}

/// How to split a log (the CLI's `--split`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SplitRule {
    /// Per-user leave-last-out.
    LeaveLastOut,
    /// One global time split: test targets at or after `cutoff`, validation targets in
    /// the window of the same length before it.
    Time {
        /// The test cutoff (Unix seconds).
        cutoff: f64,
    },
}

/// The split of `sequences` under `rule` with validation and test targets of kind
/// `target` (see the module doc). When every event is of one kind, this is exactly
/// [`eval::leave_last_out`] or [`eval::time_split`].
pub fn split(sequences: &[Vec<HistoryEvent>], rule: SplitRule, target: EventKind) -> Split {
    let one_kind = kinds_in(sequences).len() <= 1;
    match rule {
        SplitRule::LeaveLastOut if one_kind => eval::leave_last_out(sequences),
        SplitRule::Time { cutoff } if one_kind => eval::time_split(sequences, cutoff),
        SplitRule::LeaveLastOut => leave_last_target_out(sequences, target),
        SplitRule::Time { cutoff } => time_split_targets(sequences, cutoff, target),
    }
}

/// Leave-last-out on target-kind events (module doc).
fn leave_last_target_out(sequences: &[Vec<HistoryEvent>], target: EventKind) -> Split {
    let mut split = Split::default();
    for (user, seq) in sequences.iter().enumerate() {
        let pos: Vec<usize> = (0..seq.len()).filter(|&i| seq[i].kind == target).collect();
        let (valid, test) = match pos[..] {
            [.., v, t] if v > 0 => (v, t),
            _ => {
                split.train.push(seq.clone());
                continue;
            }
        };
        split.train.push(seq[..valid].to_vec());
        split.valid.push(case(user, seq, valid, valid));
        split.test.push(case(user, seq, test, test));
    }
    split
}

/// The case "event `at` given the first `history` events of `seq`".
fn case(user: usize, seq: &[HistoryEvent], history: usize, at: usize) -> EvalCase {
    EvalCase {
        user,
        history: seq[..history].to_vec(),
        target: seq[at].item,
        now: seq[at].at,
    }
}

/// The time split on target-kind events (module doc).
fn time_split_targets(sequences: &[Vec<HistoryEvent>], cutoff: f64, target: EventKind) -> Split {
    let vc = eval::valid_cutoff(sequences, cutoff);
    let mut split = Split::default();
    for (user, seq) in sequences.iter().enumerate() {
        let before_valid = seq.iter().take_while(|e| e.at < vc).count();
        let before_test = seq.iter().take_while(|e| e.at < cutoff).count();
        split.train.push(seq[..before_valid].to_vec());
        let first_target = |from: usize, until: f64| {
            (from..seq.len())
                .take_while(|&i| seq[i].at < until)
                .find(|&i| seq[i].kind == target)
        };
        if before_valid > 0 {
            if let Some(i) = first_target(before_valid, cutoff) {
                split.valid.push(case(user, seq, before_valid, i));
            }
        }
        if before_test > 0 {
            if let Some(i) = first_target(before_test, f64::INFINITY) {
                split.test.push(case(user, seq, before_test, i));
            }
        }
    }
    split
}

/// The kind weights for auxiliary weight `aux`: 1 for `target`, `aux` for every other
/// kind.
pub fn weights_for(target: EventKind, aux: f32) -> [f32; 3] {
    EventKind::ALL.map(|k| if k == target { 1.0 } else { aux })
}

/// The default grid of auxiliary weights.
pub const DEFAULT_GRID: [f32; 3] = [0.0, 0.25, 1.0];

/// One grid point's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindTrial {
    /// The auxiliary weight (every non-target kind's).
    pub aux_weight: f32,
    /// Best validation NDCG@10 of the run (deep part).
    pub val_ndcg10: f64,
    /// Its epoch.
    pub best_epoch: usize,
}

/// The weights chosen on validation, and every trial.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindChoice {
    /// The kind of validation and test targets.
    pub target: EventKind,
    /// The kind weights kept, indexed by [`EventKind::index`].
    pub weights: [f32; 3],
    /// Every grid point, in grid order (empty when no grid ran).
    pub trials: Vec<KindTrial>,
}

/// Trains one model per auxiliary weight of `grid` (`train_one` gets the kind weights
/// and returns the trained model, or whatever the caller keeps of a run, and its report, or an error that stops the search)
/// and keeps the one with the best validation NDCG@10, the first in grid order on a
/// tie. `Ok(None)` for an empty grid.
#[allow(clippy::type_complexity)]
pub fn search_kind_weights<M, E>(
    grid: &[f32],
    target: EventKind,
    train_one: &mut dyn FnMut([f32; 3]) -> Result<(M, TrainReport), E>,
) -> Result<Option<(M, TrainReport, KindChoice)>, E> {
    let mut best: Option<(M, TrainReport, [f32; 3])> = None;
    let mut trials = Vec::with_capacity(grid.len());
    for &aux in grid {
        let weights = weights_for(target, aux);
        let (model, report) = train_one(weights)?;
        trials.push(KindTrial {
            aux_weight: aux,
            val_ndcg10: report.best_val_ndcg10,
            best_epoch: report.best_epoch,
        });
        let better = best
            .as_ref()
            .is_none_or(|(_, b, _)| report.best_val_ndcg10 > b.best_val_ndcg10);
        if better {
            best = Some((model, report, weights));
        }
    }
    Ok(best.map(|(model, report, weights)| {
        let choice = KindChoice {
            target,
            weights,
            trials,
        };
        (model, report, choice)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventKind::{Cart, Purchase, View};

    fn ev(item: u32, kind: EventKind, at: f64) -> HistoryEvent {
        HistoryEvent { item, kind, at }
    }

    #[test]
    fn the_target_is_purchase_when_present_else_the_furthest_kind() {
        assert_eq!(target_kind(&[View, Cart, Purchase]), Purchase);
        assert_eq!(target_kind(&[View, Purchase]), Purchase);
        assert_eq!(target_kind(&[View, Cart]), Cart);
        assert_eq!(target_kind(&[View]), View);
        assert_eq!(weights_for(Purchase, 0.25), [0.25, 0.25, 1.0]);
        assert_eq!(weights_for(Cart, 0.0), [0.0, 1.0, 0.0]);
    }

    /// Validation and test targets are the user's last two purchases; views after the
    /// last purchase are used nowhere; a user with one purchase only trains.
    #[test]
    fn leave_last_out_holds_out_the_last_two_purchases() {
        let u0 = vec![
            ev(1, View, 1.0),
            ev(2, Purchase, 2.0),
            ev(3, View, 3.0),
            ev(4, Purchase, 4.0),
            ev(5, View, 5.0),
            ev(6, Purchase, 6.0),
            ev(7, View, 7.0),
        ];
        let u1 = vec![ev(1, View, 1.0), ev(2, Purchase, 2.0), ev(3, View, 3.0)];
        // Two purchases but none before the first: no validation history.
        let u2 = vec![ev(1, Purchase, 1.0), ev(2, Purchase, 2.0)];
        let s = split(
            &[u0.clone(), u1.clone(), u2.clone()],
            SplitRule::LeaveLastOut,
            Purchase,
        );
        assert_eq!(s.train, vec![u0[..3].to_vec(), u1, u2]);
        assert_eq!(s.valid, vec![case(0, &u0, 3, 3)]);
        assert_eq!((s.valid[0].target, s.valid[0].history.len()), (4, 3));
        assert_eq!((s.test[0].target, s.test[0].history.len()), (6, 5));
        assert_eq!(s.test.len(), 1);
    }

    /// A purchase-only log splits exactly as `eval`'s splits, under both rules.
    #[test]
    fn a_one_kind_log_splits_as_before() {
        let seqs: Vec<Vec<HistoryEvent>> = (0..6u32)
            .map(|u| {
                (0..3 + u)
                    .map(|t| ev(t * 3 % 7, Purchase, (u * 10 + t) as f64))
                    .collect()
            })
            .collect();
        assert_eq!(
            split(&seqs, SplitRule::LeaveLastOut, Purchase),
            eval::leave_last_out(&seqs)
        );
        let cutoff = 40.0;
        assert_eq!(
            split(&seqs, SplitRule::Time { cutoff }, Purchase),
            eval::time_split(&seqs, cutoff)
        );
    }

    /// The time split takes the first purchase of each window, skipping views.
    #[test]
    fn the_time_split_targets_the_first_purchase_of_each_window() {
        // t_max 30, cutoff 20: validation window [10, 20), test from 20.
        let u0 = vec![
            ev(1, View, 1.0),
            ev(2, View, 11.0),
            ev(3, Purchase, 12.0),
            ev(4, Purchase, 13.0),
            ev(5, View, 21.0),
            ev(6, Purchase, 30.0),
        ];
        let s = split(
            std::slice::from_ref(&u0),
            SplitRule::Time { cutoff: 20.0 },
            Purchase,
        );
        assert_eq!(s.train, vec![u0[..1].to_vec()]);
        assert_eq!(s.valid, vec![case(0, &u0, 1, 2)]);
        assert_eq!(s.test, vec![case(0, &u0, 4, 5)]);
    }
}
