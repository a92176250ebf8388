#![cfg(not(target_arch = "wasm32"))]
//! Every metric of `vitrine::eval` against values computed by hand on tiny cases, the
//! pessimistic tie rule, NaN handling, the two protocols and the splits.
use vitrine::eval::{
    dump_rankings, evaluate, evaluate_protocols, leave_last_out, sample_negatives, time_split,
    DumpLine, EvalCase, EvalOptions, MetricReport, ModelRanker, Protocol, Ranker, Segments,
    FREQUENCY_EDGES,
};
use vitrine::history::{EventKind, HistoryEvent};
use vitrine::kernels::CpuKernel;
use vitrine::model::Model;
use vitrine::recommend::score;
mod common;

/// Fixed scores, whatever the history.
struct Fixed(Vec<f32>);

impl Ranker for Fixed {
    fn name(&self) -> String {
        "fixed".into()
    }
    fn score_all(&self, _h: &[HistoryEvent], _now: f64, out: &mut [f32]) {
        out.copy_from_slice(&self.0);
    }
}

fn ev(item: u32, at: f64) -> HistoryEvent {
    HistoryEvent {
        item,
        kind: EventKind::Purchase,
        at,
    }
}

fn case(target: u32, history: &[u32]) -> EvalCase {
    EvalCase {
        user: 0,
        history: history.iter().map(|&i| ev(i, 0.0)).collect(),
        target,
        now: 1.0,
    }
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-6, "{what}: got {a}, expected {b}");
}

/// Scores: item 0 → 0.9, 1 → 0.5, 2 → 0.7, 3 → 0.1, 4 → 0.5 (ties with 1).
/// Ranks (pessimistic): target 2 → 2; target 1 → 1 + |{0, 2, 4}| = 4; target 3 → 5;
/// target 0 → 1.
fn report(protocol: Protocol, cases: &[EvalCase]) -> MetricReport {
    let r = Fixed(vec![0.9, 0.5, 0.7, 0.1, 0.5]);
    let opts = EvalOptions {
        ks: vec![1, 2, 5],
        coverage_k: 2,
        ..EvalOptions::default()
    };
    evaluate(&r, cases, 5, protocol, &opts)
}

/// Training counts: item 0 six times, item 1 once, item 2 twice, items 3 and 4 never.
fn segment_train() -> Vec<Vec<HistoryEvent>> {
    let seq = |items: &[u32]| items.iter().map(|&i| ev(i, 0.0)).collect::<Vec<_>>();
    vec![seq(&[0, 0, 0, 1]), seq(&[0, 2, 0, 0, 2])]
}

#[test]
fn frequency_segments_bucket_targets_by_training_count() {
    // Targets 2 (count 2), 1 (1), 3 (0), 0 (6), and 9, outside the catalog (read as 0).
    let cases = [
        case(2, &[]),
        case(1, &[]),
        case(3, &[]),
        case(0, &[]),
        case(9, &[]),
    ];
    let seg = Segments::by_target_frequency(&segment_train(), &cases, 5, &[1, 2, 5]);
    assert_eq!(seg.names, ["0", "1", "2-4", "5+"]);
    assert_eq!(seg.of_case, [2, 1, 0, 3, 0]);
    let seg = Segments::by_target_frequency(&segment_train(), &cases, 5, &FREQUENCY_EDGES);
    assert_eq!(seg.names, ["0", "1-4", "5-19", "20-99", "100+"]);
    assert_eq!(seg.of_case, [1, 1, 0, 2, 0]);
}

#[test]
fn segment_reports_equal_the_report_of_their_cases_alone() {
    // Ranks as `report` documents: target 2 → 2, 1 → 4, 3 → 5, 0 → 1.
    let cases = [case(2, &[]), case(1, &[]), case(3, &[]), case(0, &[])];
    let seg = Segments::by_target_frequency(&segment_train(), &cases, 5, &[1, 2, 5]);
    let r = Fixed(vec![0.9, 0.5, 0.7, 0.1, 0.5]);
    let opts = |segments| EvalOptions {
        ks: vec![1, 2, 5],
        coverage_k: 2,
        segments,
        ..EvalOptions::default()
    };
    let full = Protocol::Full {
        exclude_seen: false,
    };
    let m = evaluate(&r, &cases, 5, full, &opts(Some(&seg)));
    let names: Vec<&str> = m.segments.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["0", "1", "2-4", "5+"]);
    // The whole report is unchanged by the segments.
    let plain = evaluate(&r, &cases, 5, full, &opts(None));
    assert!(plain.segments.is_empty());
    assert_eq!(m.get("NDCG@5"), plain.get("NDCG@5"));
    assert_eq!(m.mrr, plain.mrr);
    // Segment "0" is target 3 alone (rank 5), "1" target 1 (rank 4), "2-4" target 2
    // (rank 2), "5+" target 0 (rank 1).
    let l2 = |r: f64| 1.0 / (r + 1.0).log2();
    for ((name, s), (target, rank)) in
        m.segments
            .iter()
            .zip([(3, 5.0), (1, 4.0), (2, 2.0), (0, 1.0)])
    {
        assert_eq!(s.n_cases, 1, "segment {name}");
        close(s.mrr, 1.0 / rank, name);
        close(s.get("NDCG@5").unwrap(), l2(rank), name);
        close(
            s.get("HR@2").unwrap(),
            if rank <= 2.0 { 1.0 } else { 0.0 },
            name,
        );
        let alone = evaluate(&r, &[case(target, &[])], 5, full, &opts(None));
        assert_eq!(s.get("NDCG@5"), alone.get("NDCG@5"), "segment {name}");
    }
    // Two cases in one segment average over that segment only.
    let two = Segments {
        names: vec!["a".into(), "b".into()],
        of_case: vec![0, 1, 1, 0],
    };
    let m = evaluate(&r, &cases, 5, full, &opts(Some(&two)));
    close(m.segments[0].1.mrr, (1.0 / 2.0 + 1.0) / 2.0, "a");
    close(m.segments[1].1.mrr, (1.0 / 4.0 + 1.0 / 5.0) / 2.0, "b");
}

#[test]
fn full_ranking_metrics_match_hand_computation() {
    let cases = [case(2, &[]), case(1, &[]), case(3, &[]), case(0, &[])];
    let m = report(
        Protocol::Full {
            exclude_seen: false,
        },
        &cases,
    );
    assert_eq!(m.n_cases, 4);
    let l2 = |r: f64| 1.0 / (r + 1.0).log2();
    close(m.get("HR@1").unwrap(), 0.25, "HR@1");
    close(m.get("Accuracy").unwrap(), 0.25, "accuracy");
    close(m.get("HR@2").unwrap(), 0.5, "HR@2");
    close(m.get("NDCG@2").unwrap(), (l2(2.0) + 1.0) / 4.0, "NDCG@2");
    close(m.get("HR@5").unwrap(), 1.0, "HR@5");
    close(m.get("Recall@5").unwrap(), 1.0, "Recall@5");
    close(
        m.get("NDCG@5").unwrap(),
        (l2(2.0) + l2(4.0) + l2(5.0) + 1.0) / 4.0,
        "NDCG@5",
    );
    close(m.get("Precision@5").unwrap(), 0.2, "Precision@5");
    close(m.get("F1@5").unwrap(), 2.0 / 6.0, "F1@5");
    close(m.get("F1@2").unwrap(), 0.5 * 2.0 / 3.0, "F1@2");
    close(m.get("MRR").unwrap(), (0.5 + 0.25 + 0.2 + 1.0) / 4.0, "MRR");
    close(
        m.get("AUC").unwrap(),
        (0.75 + 0.25 + 0.0 + 1.0) / 4.0,
        "AUC",
    );
    // Every top-2 list is {0, 2}: 2 of 5 items.
    close(m.get("Coverage@2").unwrap(), 0.4, "Coverage@2");
    close(m.mean_candidates, 5.0, "candidates");
}

#[test]
fn ties_count_against_the_ranker_and_nan_is_last() {
    // All equal: the target ranks last among 5.
    let flat = Fixed(vec![1.0; 5]);
    let m = evaluate(
        &flat,
        &[case(3, &[])],
        5,
        Protocol::Full {
            exclude_seen: false,
        },
        &EvalOptions::default(),
    );
    close(m.get("MRR").unwrap(), 0.2, "MRR under ties");
    close(m.get("AUC").unwrap(), 0.0, "AUC under ties");
    // A NaN target score counts as -inf: last.
    let nan = Fixed(vec![0.1, f32::NAN, 0.3, 0.2, f32::NEG_INFINITY]);
    let m = evaluate(
        &nan,
        &[case(1, &[])],
        5,
        Protocol::Full {
            exclude_seen: false,
        },
        &EvalOptions::default(),
    );
    close(m.get("MRR").unwrap(), 0.2, "MRR of a NaN target");
}

#[test]
fn exclude_seen_removes_history_items_but_not_the_target() {
    // Target 1 with 0 and 4 in the history: candidates {1, 2, 3}, rank 2.
    let cases = [case(1, &[0, 4, 1])];
    let m = report(Protocol::Full { exclude_seen: true }, &cases);
    close(m.mean_candidates, 3.0, "candidates");
    close(m.get("MRR").unwrap(), 0.5, "MRR");
    let m = report(
        Protocol::Full {
            exclude_seen: false,
        },
        &cases,
    );
    close(m.get("MRR").unwrap(), 0.25, "MRR without exclusion");
}

#[test]
fn sampled_protocol_draws_unseen_negatives_deterministically() {
    let c = EvalCase {
        user: 3,
        history: (0..50).map(|i| ev(i, 0.0)).collect(),
        target: 60,
        now: 0.0,
    };
    let a = sample_negatives(&c, 200, 100, 7);
    let b = sample_negatives(&c, 200, 100, 7);
    assert_eq!(a, b, "same seed, same draw");
    assert_eq!(a.len(), 100);
    let mut s = a.clone();
    s.sort_unstable();
    s.dedup();
    assert_eq!(s.len(), 100, "negatives are distinct");
    assert!(
        a.iter().all(|&i| i >= 50 && i != 60 && i < 200),
        "seen or target drawn"
    );
    assert_ne!(a, sample_negatives(&c, 200, 100, 8), "seed ignored");
    // Scores rank the target first among target + 100 negatives.
    let mut scores = vec![0.0; 200];
    scores[60] = 1.0;
    let m = evaluate(
        &Fixed(scores),
        &[c],
        200,
        Protocol::sampled(7),
        &EvalOptions::default(),
    );
    close(m.mean_candidates, 101.0, "candidates");
    close(m.get("HR@1").unwrap(), 1.0, "HR@1");
}

/// The S3-Rec release's protocol, the target against 99 negatives, on a catalogue where
/// exactly 99 items are unseen (so every one is drawn): two of them score above the
/// target, so it ranks 3rd of 100.
#[test]
fn sampled_protocol_with_99_negatives_by_hand() {
    let c = EvalCase {
        user: 0,
        history: (0..50).map(|i| ev(i, 0.0)).collect(),
        target: 60,
        now: 0.0,
    };
    let negs = sample_negatives(&c, 150, 99, 1);
    let mut sorted = negs.clone();
    sorted.sort_unstable();
    let unseen: Vec<u32> = (50..150).filter(|&i| i != 60).collect();
    assert_eq!(sorted, unseen, "all 99 unseen items, nothing seen");
    let mut scores = vec![0.0; 150];
    scores[60] = 0.5;
    scores[100] = 1.0;
    scores[101] = 2.0;
    // Seen items may score anything: they are never candidates.
    scores[7] = 9.0;
    let m = evaluate(
        &Fixed(scores),
        &[c],
        150,
        Protocol::Sampled {
            negatives: 99,
            seed: 1,
        },
        &EvalOptions::default(),
    );
    close(m.mean_candidates, 100.0, "candidates");
    close(m.get("HR@1").unwrap(), 0.0, "HR@1");
    close(m.get("HR@5").unwrap(), 1.0, "HR@5");
    close(m.get("NDCG@10").unwrap(), 0.5, "NDCG@10 = 1/log2(3 + 1)");
    close(m.get("MRR").unwrap(), 1.0 / 3.0, "MRR");
}

#[test]
fn leave_last_out_and_time_split() {
    let seqs = vec![
        (0..5).map(|i| ev(i, i as f64)).collect::<Vec<_>>(),
        vec![ev(7, 0.0), ev(8, 1.0)],
    ];
    let s = leave_last_out(&seqs);
    assert_eq!(s.train[0].len(), 3);
    assert_eq!(s.train[1].len(), 2, "short users train only");
    assert_eq!(s.valid.len(), 1);
    assert_eq!((s.valid[0].target, s.valid[0].history.len()), (3, 3));
    assert_eq!((s.test[0].target, s.test[0].history.len()), (4, 4));
    // Latest event at 4, test cutoff 2.5: validation takes the window [1.0, 2.5).
    let t = time_split(&seqs, 2.5);
    assert!(
        t.train.iter().flatten().all(|e| e.at < 1.0),
        "training events after the validation cutoff"
    );
    assert!(
        t.valid.iter().all(|c| (1.0..2.5).contains(&c.now)),
        "validation target outside its window"
    );
    assert!(
        t.test.iter().all(|c| c.now >= 2.5),
        "test target before the cutoff"
    );
    assert_eq!((t.test[0].target, t.valid[0].target), (3, 1));
}

/// The refit's sequences: per user every event but the test target (the test case's
/// history), the validation target appended where the user has no test case, the
/// training sequence where it has neither; checked by hand on both splits.
#[test]
fn refit_sequences_hold_every_event_but_the_test_targets() {
    let seqs = vec![
        (0..5).map(|i| ev(i, i as f64)).collect::<Vec<_>>(),
        vec![ev(7, 0.0), ev(8, 1.0)],
    ];
    let items = |s: &[HistoryEvent]| s.iter().map(|e| e.item).collect::<Vec<_>>();
    let s = leave_last_out(&seqs);
    let r = s.refit_sequences(EventKind::View);
    assert_eq!(r.len(), 2);
    assert_eq!(
        items(&r[0]),
        [0, 1, 2, 3],
        "the validation target in, the test target out"
    );
    assert_eq!(r[0], seqs[0][..4], "events as they were");
    assert_eq!(
        items(&r[1]),
        [7, 8],
        "a user with no cases keeps its training sequence"
    );
    // Time split, test cutoff 2.5, validation from 1.0: user 0 trains on [0], validates
    // on 1, tests on 3 after the history [0, 1, 2]; user 1 trains on [7] and has a
    // validation case (8 at 1.0) but no test target after 2.5.
    let t = time_split(&seqs, 2.5);
    let r = t.refit_sequences(EventKind::Cart);
    assert_eq!(items(&r[0]), [0, 1, 2]);
    assert_eq!(items(&r[1]), [7, 8]);
    assert_eq!(
        (r[1][1].kind, r[1][1].at),
        (EventKind::Cart, 1.0),
        "an appended validation target has the target kind and the case's time"
    );
    assert!(t
        .test
        .iter()
        .all(|c| r[c.user].iter().all(|e| e.at < c.now)));
}

/// The dump's top lists order NaN like −∞ (ties among them by index), as before the
/// crate had one top-k routine: eval ranks `key(score)` (NaN → −∞) with it.
#[test]
fn dump_orders_nan_like_minus_infinity_and_ties_by_index() {
    let r = Fixed(vec![f32::NAN, f32::NEG_INFINITY, 0.5, 0.5, f32::NAN, 1.0]);
    let mut out = Vec::new();
    let protocol = Protocol::Full {
        exclude_seen: false,
    };
    dump_rankings(&r, &[case(3, &[])], 6, protocol, &mut out).unwrap();
    let line: DumpLine = serde_json::from_slice(&out).unwrap();
    assert_eq!(line.items, vec![5, 2, 3, 0, 1, 4]);
    assert_eq!(line.rank, 3);
    assert_eq!(
        line.scores,
        vec![Some(1.0), Some(0.5), Some(0.5), None, None, None]
    );
}

/// The model ranker is the shared "history → logits" path, bit for bit the encoder,
/// the head kernel and the memory term run by hand.
#[test]
fn model_ranker_runs_the_shared_score_path() {
    let file = common::fixtures::tiny_weight_file(50, 11);
    let model = Model::from_weights(&file).unwrap();
    let ranker = ModelRanker::new(&model);
    let h: Vec<HistoryEvent> = [4, 9, 4, 30].iter().map(|&i| ev(i, 100.0)).collect();
    let mut got = vec![0.0; 50];
    ranker.score_all(&h, 200.0, &mut got);
    let plan = model.head_plan(model.item_vectors());
    let enc = model.encode_user(&plan.item_vectors, &h);
    let mut want = vec![0.0; 50];
    CpuKernel::best().scores(&plan, &model.user_query(&enc.u), &mut want);
    model.add_memory(&h, &mut want);
    let mut shared = vec![0.0; 50];
    score::logits(&model, &plan, CpuKernel::best(), &h, true, &mut shared).unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&got), bits(&want));
    assert_eq!(bits(&shared), bits(&want));
    assert!(want.iter().any(|&x| x != want[0]), "scores vary");
}

/// Scores that depend on the history (so cases differ), with ties and NaN, counting the
/// calls.
struct HistoryScored(std::sync::atomic::AtomicUsize);

impl Ranker for HistoryScored {
    fn name(&self) -> String {
        "history-scored".into()
    }
    fn score_all(&self, h: &[HistoryEvent], _now: f64, out: &mut [f32]) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let last = h.last().map_or(0, |e| e.item);
        for (i, o) in out.iter_mut().enumerate() {
            let i = i as u32;
            *o = match (i * 7 + last * 3) % 11 {
                0 => f32::NAN,
                x => (x / 2) as f32,
            };
        }
    }
}

#[test]
fn several_protocols_in_one_pass_equal_one_pass_per_protocol() {
    let n_items = 23;
    let cases: Vec<EvalCase> = (0..40u32)
        .map(|u| {
            let history: Vec<HistoryEvent> = (0..u % 6)
                .map(|j| ev((u * 5 + j * 3) % 23, if j + 1 == u % 6 { 1.0 } else { 0.0 }))
                .collect();
            EvalCase {
                user: u as usize,
                history,
                // One target outside the catalog: skipped under every protocol.
                target: if u == 7 { 99 } else { (u * 11) % 23 },
                now: 1.0,
            }
        })
        .collect();
    let protocols = [
        Protocol::Full {
            exclude_seen: false,
        },
        Protocol::Full { exclude_seen: true },
        Protocol::Basket,
        Protocol::Sampled {
            negatives: 5,
            seed: 3,
        },
    ];
    let opts = EvalOptions {
        ks: vec![1, 3, 10],
        coverage_k: 3,
        ..EvalOptions::default()
    };
    let ranker = HistoryScored(Default::default());
    let together = evaluate_protocols(&ranker, &cases, n_items, &protocols, &opts);
    let calls = ranker.0.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(calls, cases.len() - 1, "each in-range case is scored once");
    assert_eq!(together.len(), protocols.len());
    for (p, got) in protocols.iter().zip(&together) {
        let alone = evaluate(&ranker, &cases, n_items, *p, &opts);
        assert_eq!(got, &alone, "{p:?}");
        assert_eq!(got.n_skipped, 1);
    }
    // The protocols do differ on these cases, so the comparison above is not vacuous.
    for j in 1..protocols.len() {
        assert_ne!(together[0].get("MRR"), together[j].get("MRR"), "{j}");
    }
}
