#![cfg(not(target_arch = "wasm32"))]
//! Scenario evaluation (`src/scenarios.rs`): every metric on hand-built cases with
//! hand-computed values, the cold split, the rival on a toy case, the shelves through the
//! real pipeline, and `vitrine scenario-eval --quick` end to end on a generated dataset.
mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use vitrine::eval::{EvalCase, Split};
use vitrine::features::ItemFeatureTable;
use vitrine::history::{EventKind, HistoryEvent};
use vitrine::recommend::{RecommendOptions, Recommender};
use vitrine::rng::SplitMix64;
use vitrine::scenarios::*;

fn ev(item: u32, at: f64) -> HistoryEvent {
    HistoryEvent {
        item,
        kind: EventKind::Purchase,
        at,
    }
}

fn case(user: usize, history: &[u32], target: u32) -> EvalCase {
    EvalCase {
        user,
        history: history
            .iter()
            .enumerate()
            .map(|(j, &i)| ev(i, j as f64))
            .collect(),
        target,
        now: history.len() as f64,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn held_out_items_are_a_seeded_tenth() {
    let a = choose_held_out(37, 0.1, 7);
    assert_eq!(a.len(), 4, "round(3.7) items");
    assert!(
        a.windows(2).all(|w| w[0] < w[1]),
        "ascending, distinct: {a:?}"
    );
    assert!(a.iter().all(|&i| i < 37));
    assert_eq!(
        a,
        choose_held_out(37, 0.1, 7),
        "deterministic under the seed"
    );
    let picks: HashSet<Vec<u32>> = (0..20).map(|s| choose_held_out(37, 0.1, s)).collect();
    assert!(picks.len() > 15, "seeds pick different items: {picks:?}");
    assert!(choose_held_out(37, 0.0, 7).is_empty());
    assert!(choose_held_out(37, f64::NAN, 7).is_empty());
    assert!(choose_held_out(37, -1.0, 7).is_empty());
    assert_eq!(choose_held_out(5, 3.0, 7), vec![0, 1, 2, 3, 4]);
    // Every item is held out about equally often (not always the same few).
    let mut counts = [0usize; 20];
    for s in 0..2000 {
        for i in choose_held_out(20, 0.1, s) {
            counts[i as usize] += 1;
        }
    }
    assert!(
        counts.iter().all(|&c| (150..250).contains(&c)),
        "{counts:?}"
    );
}

#[test]
fn cold_split_removes_every_event_of_the_held_out_items_and_only_those() {
    let split = Split {
        train: vec![
            vec![ev(0, 0.0), ev(2, 1.0), ev(1, 2.0), ev(5, 3.0)],
            vec![ev(2, 0.0), ev(5, 1.0)],
            vec![ev(3, 0.0), ev(4, 1.0)],
        ],
        valid: vec![
            case(0, &[0, 2, 1, 5], 2), // held-out target: valid_cold
            case(1, &[2, 5], 3),       // history only held-out items: dropped
            case(2, &[3, 4], 1),       // warm
        ],
        test: vec![
            case(0, &[0, 2, 1, 5, 2], 5), // held-out target, history filtered to [0, 1]
            case(1, &[2, 5, 3], 4),       // warm target: not a cold test case
            case(2, &[3, 4, 1], 2),
            case(1, &[5, 2], 2), // empty after filtering: dropped
        ],
    };
    let cs = cold_split(&split, &[5, 2, 99], 6);
    assert_eq!(cs.held_out, vec![2, 5], "ascending, in-catalogue only");
    assert_eq!(
        cs.train,
        vec![
            vec![ev(0, 0.0), ev(1, 2.0)],
            vec![],
            vec![ev(3, 0.0), ev(4, 1.0)]
        ],
        "sequences kept in place, held-out events gone"
    );
    assert_eq!(cs.removed_train_events, 4);
    let no_held = |c: &EvalCase| c.history.iter().all(|e| e.item != 2 && e.item != 5);
    assert!(cs
        .valid_warm
        .iter()
        .chain(&cs.valid_cold)
        .chain(&cs.test_cold)
        .all(no_held));
    assert_eq!(cs.valid_cold.len(), 1);
    assert_eq!(cs.valid_cold[0].target, 2);
    assert_eq!(cs.valid_warm.len(), 1);
    assert_eq!(cs.valid_warm[0].target, 1);
    let targets: Vec<(usize, u32)> = cs.test_cold.iter().map(|c| (c.user, c.target)).collect();
    assert_eq!(targets, vec![(0, 5), (2, 2)]);
    let h: Vec<u32> = cs.test_cold[0].history.iter().map(|e| e.item).collect();
    assert_eq!(h, vec![0, 1]);
    assert_eq!(
        cs.test_cold[0].history[1].at, 2.0,
        "events keep their times"
    );
    assert_eq!(cs.dropped_empty, 2);
}

#[test]
fn placement_and_expected_metrics_by_hand() {
    let cands = [10, 11, 12, 13, 14, 15];
    let scores = [0.9, 0.5, f64::NAN, 0.5, 0.7, 0.5];
    // Target 13 (0.5): 10 and 14 above, 11 and 15 tied, NaN below.
    let p = place(&cands, &scores, 13, 0.5);
    assert_eq!(p, Placement { above: 2, tied: 2 });
    // Ranks 3, 4, 5 equally likely.
    let m = expected_at(p, 10);
    let want = (1.0 / 4f64.log2() + 1.0 / 5f64.log2() + 1.0 / 6f64.log2()) / 3.0;
    assert!(close(m.ndcg, want), "{} vs {want}", m.ndcg);
    assert!(close(m.hr, 1.0));
    assert!(close(m.rr, (1.0 / 3.0 + 0.25 + 0.2) / 3.0));
    // A cutoff inside the tied ranks: ranks 3 and 4 count at K = 4.
    let m = expected_at(p, 4);
    assert!(close(m.hr, 2.0 / 3.0));
    assert!(close(m.ndcg, (0.5 + 1.0 / 5f64.log2()) / 3.0));
    // No ties: the usual rank (3 → NDCG 1/log2 4 = 0.5).
    let m = expected_at(Placement { above: 2, tied: 0 }, 10);
    assert!(close(m.ndcg, 0.5) && close(m.hr, 1.0) && close(m.rr, 1.0 / 3.0));
    // Out of the top 10.
    let m = expected_at(Placement { above: 10, tied: 0 }, 10);
    assert!(close(m.ndcg, 0.0) && close(m.hr, 0.0) && close(m.rr, 1.0 / 11.0));
    // A NaN target is placed last; the target's own entry is never counted.
    assert_eq!(
        place(&cands, &scores, 12, f64::NAN),
        Placement { above: 5, tied: 0 }
    );
    assert_eq!(
        place(&cands, &scores, 10, 0.9),
        Placement { above: 0, tied: 0 }
    );
}

#[test]
fn random_order_is_the_exact_expectation() {
    // 4 candidates, all tied: ranks 1..=4 equally likely.
    let cases = vec![case(0, &[0], 3), case(1, &[1], 5)];
    let r = evaluate_cold(&RandomOrder, &cases, &[3, 4, 5, 6], None);
    let want = (1.0 + 1.0 / 3f64.log2() + 0.5 + 1.0 / 5f64.log2()) / 4.0;
    assert!(close(r.ndcg10, want), "{} vs {want}", r.ndcg10);
    assert!(close(r.hr10, 1.0));
    assert!(close(r.mrr, (1.0 + 0.5 + 1.0 / 3.0 + 0.25) / 4.0));
    assert_eq!((r.n_cases, r.n_candidates, r.tied_cases), (2, 4, 2));
    // 20 candidates: only ranks 1..=10 score, HR@10 = 1/2.
    let many: Vec<u32> = (0..20).collect();
    let r = evaluate_cold(&RandomOrder, &[case(0, &[0], 7)], &many, None);
    let want: f64 = (1..=10).map(|r| 1.0 / ((r + 1) as f64).log2()).sum::<f64>() / 20.0;
    assert!(close(r.ndcg10, want) && close(r.hr10, 0.5));
}

/// Items 0..8: categories [1, 1, 2, 1, 2, 3, 4, 3], title tokens, prices (exact in f32).
fn toy_features() -> ItemFeatureTable {
    let tokens: Vec<Vec<u32>> = vec![
        vec![7, 8],
        vec![7],
        vec![9],
        vec![20],
        vec![21],
        vec![22],
        vec![23],
        vec![7, 8],
    ];
    let mut offsets = vec![0u32];
    for t in &tokens {
        offsets.push(offsets.last().unwrap() + t.len() as u32);
    }
    ItemFeatureTable {
        category: vec![1, 1, 2, 1, 2, 3, 4, 3],
        price: vec![0.25, 0.5, 0.75, 1.0, 0.75, 0.375, 0.375, 0.0],
        price_missing: vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        token_offsets: offsets,
        tokens: tokens.concat(),
    }
}

#[test]
fn category_popularity_by_hand() {
    let f = toy_features();
    let train = vec![vec![ev(0, 0.0), ev(5, 1.0)], vec![ev(7, 0.0), ev(5, 1.0)]];
    // Categories 1, 3, 3, 3 of 4 events.
    assert_eq!(
        category_popularity(&train, &f),
        vec![0.0, 0.25, 0.0, 0.75, 0.0]
    );
}

#[test]
fn popularity_within_category_on_a_toy_case() {
    let f = toy_features();
    // History: items 0, 1 (category 1), then 2 (category 2). Candidates: the cold items.
    let hist = case(0, &[0, 1, 2], 0);
    let cands = [3, 4, 5, 6, 7];
    let pop = vec![0.0, 0.1, 0.1, 0.3, 0.5];
    let plain = CategoryShare::new(&f, pop.clone(), CategoryShareParams::PLAIN, "plain");
    let mut s = [0.0; 5];
    plain.score(&hist, &cands, &mut s);
    let want = [
        2.0 / 3.0 + POP_TIE * 0.1,
        1.0 / 3.0 + POP_TIE * 0.1,
        POP_TIE * 0.3,
        POP_TIE * 0.5,
        POP_TIE * 0.3,
    ];
    for (g, w) in s.iter().zip(want) {
        assert!(close(*g, w), "{s:?} vs {want:?}");
    }
    // Order 3, 4, then category 4 (more popular) above category 3's two tied items.
    let target = |t: u32| EvalCase {
        target: t,
        ..hist.clone()
    };
    let r = evaluate_cold(&plain, &[target(6)], &cands, None);
    assert!(close(r.ndcg10, 0.5), "third: {}", r.ndcg10);
    let r = evaluate_cold(&plain, &[target(5)], &cands, None);
    assert!(close(
        r.ndcg10,
        (1.0 / 5f64.log2() + 1.0 / 6f64.log2()) / 2.0
    ));
    assert_eq!(r.tied_cases, 1, "items 5 and 7 tie");

    // Recency decay 0.5: weights 0.25, 0.5, 1 → category 2 (the last event) first.
    let decayed = CategoryShareParams {
        decay: 0.5,
        ..CategoryShareParams::PLAIN
    };
    CategoryShare::new(&f, pop.clone(), decayed, "").score(&hist, &cands, &mut s);
    assert!(close(s[0], 0.75 / 1.75 + POP_TIE * 0.1));
    assert!(close(s[1], 1.0 / 1.75 + POP_TIE * 0.1));

    // Title tokens: item 7 shares both tokens 7 and 8 with the history (token 7 in
    // events 0 and 1, token 8 in event 0): affinity (2/3 + 1/3) / 2 = 0.5.
    let tok = CategoryShareParams {
        tokens: 1.0,
        ..CategoryShareParams::PLAIN
    };
    CategoryShare::new(&f, pop.clone(), tok, "").score(&hist, &cands, &mut s);
    assert!(close(s[4], 0.5 + POP_TIE * 0.3), "{s:?}");
    assert!(close(s[2], POP_TIE * 0.3), "no shared token: {s:?}");
    // Weighted by idf over the 8 items: token 7 is in 3 titles, token 8 in 2.
    let idf = CategoryShareParams { idf: true, ..tok };
    CategoryShare::new(&f, pop.clone(), idf, "").score(&hist, &cands, &mut s);
    let (u7, u8) = ((8.0f64 / 3.0).ln(), 4f64.ln());
    let want = (u7 * 2.0 / 3.0 + u8 / 3.0) / (u7 + u8);
    assert!(close(s[4], want + POP_TIE * 0.3), "{s:?} vs {want}");

    // Price: history mean (0.25 + 0.5 + 0.75) / 3 = 0.5; item 3 at 1.0 is 0.5 away, item
    // 5 at 0.375 is 0.125 away, item 7 has no price (−0.5).
    let price = CategoryShareParams {
        price: 2.0,
        ..CategoryShareParams::PLAIN
    };
    CategoryShare::new(&f, pop, price, "").score(&hist, &cands, &mut s);
    assert!(close(s[0], 2.0 / 3.0 + POP_TIE * 0.1 - 2.0 * 0.5), "{s:?}");
    assert!(close(s[2], POP_TIE * 0.3 - 2.0 * 0.125), "{s:?}");
    assert!(close(s[4], POP_TIE * 0.3 - 2.0 * 0.5), "{s:?}");
}

#[test]
fn tuning_the_rival_keeps_the_best_setting() {
    let f = toy_features();
    let pop = vec![0.0, 0.1, 0.1, 0.3, 0.5];
    // The target 7 shares title tokens with the history but not its categories: only a
    // token weight ranks it first.
    let valid = vec![case(0, &[0, 1, 2], 7)];
    let trials = tune_category_share(&f, &pop, &valid, &[3, 4, 5, 6, 7]);
    let g = RIVAL_GRID;
    assert_eq!(trials.len(), g.len());
    assert_eq!(g.len(), 5 * 6 * 5 * 2);
    let best = best_trial(&trials).unwrap();
    assert!(trials.iter().all(|t| t.valid_ndcg10 <= best.valid_ndcg10));
    assert!(best.params.tokens > 0.0, "{best:?}");
    assert!(close(best.valid_ndcg10, 1.0), "{best:?}");
    let plain = trials
        .iter()
        .find(|t| t.params == CategoryShareParams::PLAIN)
        .unwrap();
    assert!(plain.valid_ndcg10 < 0.5, "{plain:?}");
    assert_eq!(best_trial(&[]), None);
}

#[test]
fn history_categories_are_sorted_and_distinct() {
    let cats = [5, 3, 5, 1];
    let h = [ev(0, 0.0), ev(2, 1.0), ev(1, 2.0), ev(0, 3.0), ev(99, 4.0)];
    assert_eq!(history_categories(&h, &cats), vec![3, 5]);
}

fn list(target: u32, hist_cats: &[u32], items: &[u32]) -> ShelfList {
    ShelfList {
        target,
        items: items.to_vec(),
        history_categories: hist_cats.to_vec(),
    }
}

#[test]
fn shelf_metrics_by_hand() {
    // 8 items, two per category 0..=3.
    let cat = [0, 0, 1, 1, 2, 2, 3, 3];
    let lists = [
        // Target 4 (category 2, not in the history {0}) first: a hit outside.
        list(4, &[0], &[4, 2, 0]),
        // Target 1 (category 0, in the history {0, 1}) missed; item 6 is outside.
        list(1, &[0, 1], &[6, 3]),
        // Target 7 (category 3, outside {1}); an empty list.
        list(7, &[1], &[]),
    ];
    let r = shelf_report("s", &lists, &cat, 3);
    assert_eq!((r.n_cases, r.k), (3, 3));
    assert!(close(r.hr, 1.0 / 3.0) && close(r.ndcg, 1.0 / 3.0));
    // Items 4, 2, 0, 6, 3 of 8.
    assert!(close(r.coverage, 5.0 / 8.0));
    // Categories {2, 1, 0}, {3, 1}, {} → (3 + 2 + 0) / 3.
    assert!(close(r.mean_categories, 5.0 / 3.0));
    // Outside the history: 2 of 3, 1 of 2; the empty list is not averaged.
    assert!(close(r.outside_share, (2.0 / 3.0 + 0.5) / 2.0));
    assert_eq!((r.outside_cases, r.outside_hits), (2, 1));
    assert!(close(r.outside_hr, 0.5));

    // Cut at K = 1: only the first item of each list counts.
    let r = shelf_report("s", &lists, &cat, 1);
    assert!(close(r.coverage, 2.0 / 8.0));
    assert!(close(r.outside_share, 1.0));
    assert!(close(r.mean_categories, 2.0 / 3.0));
    // The hit at position 2 is not a hit at K = 1; NDCG at position 2 is 1/log2(3).
    let r = shelf_report("s", &[list(3, &[1], &[1, 3])], &cat, 2);
    assert!(close(r.ndcg, 1.0 / 3f64.log2()) && close(r.hr, 1.0));
    assert_eq!((r.outside_cases, r.outside_share), (0, 0.5));
    let r = shelf_report("s", &[list(3, &[1], &[1, 3])], &cat, 1);
    assert!(close(r.hr, 0.0) && close(r.ndcg, 0.0));
    // No cases at all.
    let r = shelf_report("s", &[], &cat, 10);
    assert_eq!((r.n_cases, r.outside_hr, r.coverage), (0, 0.0, 0.0));
}

fn recommender() -> Recommender {
    Recommender::from_weight_file(common::fixtures::tiny_weight_file(60, 3)).unwrap()
}

#[test]
fn shelves_run_the_real_pipeline() {
    let rec = recommender();
    let cases: Vec<EvalCase> = (0..8)
        .map(|u| {
            let h: Vec<u32> = (0..4).map(|j| (u * 7 + j * 3) % 60).collect();
            EvalCase {
                user: u as usize,
                history: common::fixtures::history(&h),
                target: (u * 11 + 5) % 60,
                now: 2e9,
            }
        })
        .collect();
    let opts = |d: f32| RecommendOptions {
        k: 10,
        diversity: d,
        ..RecommendOptions::default()
    };
    let shelves = [
        Shelf {
            name: "default".into(),
            options: opts(0.0),
            exclude_history_categories: false,
        },
        Shelf {
            name: "other".into(),
            options: opts(0.0),
            exclude_history_categories: true,
        },
        Shelf {
            name: "diverse".into(),
            options: opts(1.0),
            exclude_history_categories: false,
        },
    ];
    let lists = shelf_lists(&rec, &cases, &shelves, None).unwrap();
    assert_eq!(lists.len(), 3);
    let cat = &rec.metadata.items.category;
    for (c, case) in cases.iter().enumerate() {
        // The default shelf is exactly `recommend()` for that history.
        let want: Vec<u32> = (rec.recommend(&case.history, &opts(0.0)).unwrap())
            .iter()
            .map(|r| r.index)
            .collect();
        assert_eq!(lists[0][c].items, want, "case {c}");
        let diverse: Vec<u32> = (rec.recommend(&case.history, &opts(1.0)).unwrap())
            .iter()
            .map(|r| r.index)
            .collect();
        assert_eq!(lists[2][c].items, diverse, "case {c}");
        let hc = history_categories(&case.history, cat);
        assert_eq!(lists[1][c].history_categories, hc);
        assert!(!lists[1][c].items.is_empty(), "other categories exist");
        for &i in &lists[1][c].items {
            assert!(
                !hc.contains(&cat[i as usize]),
                "case {c}: item {i} in a history category"
            );
        }
        assert_eq!(lists[1][c].target, case.target);
    }
    let other = shelf_report("other", &lists[1], cat, 10);
    assert!(close(other.outside_share, 1.0));
    // Diversity 1 never repeats a category while another has candidates: every list
    // holds every category of the catalogue (fewer than 10, each with unseen items).
    let n_cats = cat.iter().collect::<HashSet<_>>().len();
    assert!(n_cats < 10, "{n_cats}");
    let default = shelf_report("default", &lists[0], cat, 10);
    let diverse = shelf_report("diverse", &lists[2], cat, 10);
    assert!(close(diverse.mean_categories, n_cats as f64), "{diverse:?}");
    assert!(default.mean_categories <= diverse.mean_categories);
}

#[test]
fn diversity_chart_draws_every_point() {
    let point = |d: f32, seen: bool| DiversityPoint {
        diversity: d,
        exclude_seen: seen,
        report: shelf_report("x", &[list(1, &[0], &[1, 2])], &[0, 0, 1], 10),
    };
    let pts: Vec<DiversityPoint> = DIVERSITY_GRID
        .iter()
        .flat_map(|&d| [point(d, true), point(d, false)])
        .collect();
    let mut svg = Vec::new();
    write_diversity_svg(&pts, &mut svg).unwrap();
    let svg = String::from_utf8(svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 2, "NDCG and coverage");
    // The excludeSeen points only: 5 per series.
    assert_eq!(svg.matches("<circle").count(), 10);
    assert_eq!(svg.matches(" cat.</text>").count(), 5);
}

// ---------------------------------------------------------------------------------------
// `vitrine scenario-eval --quick` end to end
// ---------------------------------------------------------------------------------------

const CATS: [&str; 6] = ["mugs", "bags", "candles", "hearts", "stars", "boxes"];
const ADJ: [&str; 5] = ["RED", "BLUE", "VINTAGE", "PINK", "GLASS"];
const N_ITEMS: usize = 90;

/// 90 items in 6 categories; 240 shoppers who buy mostly in one or two favourite
/// categories, in catalogue-neighbour runs.
fn write_dataset(dir: &Path) {
    let mut items = String::from("item_id,title,category,price\n");
    for i in 0..N_ITEMS {
        let c = i % CATS.len();
        let noun = CATS[c].trim_end_matches('s').to_uppercase();
        let adj = ADJ[(i / CATS.len()) % ADJ.len()];
        let price = 1.0 + (i % 13) as f64 * 0.5;
        items.push_str(&format!("P{i},{adj} {noun} {i},{},{price}\n", CATS[c]));
    }
    std::fs::write(dir.join("items.csv"), items).unwrap();
    let mut rng = SplitMix64::new(11);
    let mut events = String::from("user_id,item_id,timestamp\n");
    for u in 0..240 {
        let fav = [rng.below(6) as usize, rng.below(6) as usize];
        let len = 6 + rng.below(8) as usize;
        let mut t = 1_300_000_000 + u * 1000;
        for _ in 0..len {
            let c = if rng.below(10) < 8 {
                fav[rng.below(2) as usize]
            } else {
                rng.below(6) as usize
            };
            let i = c + CATS.len() * rng.below((N_ITEMS / CATS.len()) as u64) as usize;
            t += 3600 + rng.below(86_400) as usize;
            events.push_str(&format!("U{u},P{i},{t}\n"));
        }
    }
    std::fs::write(dir.join("events.csv"), events).unwrap();
}

fn vitrine(args: &[&str], dir: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_vitrine"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run vitrine");
    assert!(
        out.status.success(),
        "vitrine {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn scenario_eval_quick_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_dataset(d);
    let data = ["--events", "events.csv", "--items", "items.csv"];
    let mut train = vec![
        "train",
        "--quick",
        "--out",
        "m.vitrine",
        "--artifacts",
        "art",
    ];
    train.extend(data);
    vitrine(&train, d);
    let mut scen = vec![
        "scenario-eval",
        "--quick",
        "--model",
        "m.vitrine",
        "--artifacts",
        "art",
    ];
    scen.extend(data);
    vitrine(&scen, d);

    let json = std::fs::read_to_string(d.join("art/scenarios.json")).unwrap();
    let r: ScenarioReport = serde_json::from_str(&json).unwrap();
    let cold = r.cold.as_ref().expect("the cold part ran");
    assert_eq!(cold.held_out, 9, "10% of 90 items");
    assert!(cold.removed_train_events > 0);
    assert_eq!(cold.training.dim, 32, "--quick");
    assert!(
        cold.training.cold_items >= 9,
        "held-out items get a zeroed ID row"
    );
    assert_eq!(cold.rows.len(), 5, "model, two rivals, random, reference");
    let n = cold.rows[0].n_cases;
    assert!(n >= 5, "some test targets are held out: {n}");
    assert!(cold
        .rows
        .iter()
        .all(|row| row.n_cases == n && row.n_candidates == 9));
    // Random order over 9 candidates, exactly.
    let random = cold
        .rows
        .iter()
        .find(|r| r.ranker.starts_with("random"))
        .unwrap();
    let want: f64 = (1..=9).map(|r| 1.0 / ((r + 1) as f64).log2()).sum::<f64>() / 9.0;
    assert!(
        (random.ndcg10 - want).abs() < 1e-9,
        "{} vs {want}",
        random.ndcg10
    );
    assert!(
        (random.hr10 - 1.0).abs() < 1e-12,
        "9 candidates all fit in the top 10"
    );
    assert_eq!(cold.rival_trials.len(), RIVAL_GRID.len());

    assert_eq!(r.cross.len(), 2);
    let (mine, other) = (&r.cross[0], &r.cross[1]);
    assert!(mine.n_cases > 0 && mine.n_cases == other.n_cases);
    assert!((other.outside_share - 1.0).abs() < 1e-12, "{other:?}");
    assert_eq!(
        mine.outside_cases, other.outside_cases,
        "same cases, same targets"
    );
    assert!(
        mine.outside_share < 1.0,
        "shoppers stick to their categories: {mine:?}"
    );

    assert_eq!(r.diversity.len(), 10);
    let d0 = &r.diversity[0];
    assert!(d0.exclude_seen && d0.diversity == 0.0);
    assert_eq!(d0.report.ndcg, mine.ndcg, "δ = 0 is the default request");
    let d1 = r
        .diversity
        .iter()
        .find(|p| p.exclude_seen && p.diversity == 1.0)
        .unwrap();
    assert!(d1.report.mean_categories >= d0.report.mean_categories);

    let md = std::fs::read_to_string(d.join("art/scenarios.md")).unwrap();
    assert!(md.contains("## Cold-start items") && md.contains("## Diversity curve"));
    let svg = std::fs::read_to_string(d.join("art/diversity-curve.svg")).unwrap();
    assert_eq!(svg.matches("<circle").count(), 10);
}
