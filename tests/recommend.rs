//! The recommendation engine against a straightforward reference computation, the effect
//! of every option, explanations, and every error case.
use std::collections::HashSet;

use vitrine::format::{FormatError, OptColumn, Quantization, Tensor, TensorData, WeightFile};
use vitrine::history::{EventKind, HistoryEvent, HistoryLimits, HistoryStore, StoredEvent};
use vitrine::kernels::CpuKernel;
mod common;
use common::fixtures::{tiny_weight_file, with_popularity};
use common::shortlist_cases;
use vitrine::kernels::shortlist::shortlist_reference;
use vitrine::model::layers::sigmoid;
use vitrine::model::memory::Memory;
use vitrine::recommend::page::PageRequest;
use vitrine::recommend::shortlist::{FullPath, ShortlistError};
use vitrine::recommend::{
    Boost, Filter, Promote, Reason, RecommendError, RecommendOptions, Recommendation, Recommender,
};
use vitrine::strs::StrList;

const N: usize = 120;
const T0: f64 = 1_700_000_000.0;

/// The tiny model's weight file with known catalog attributes: prices (every 7th item
/// unpriced), `added` dates (item `i` added at `T0 + i` days), a popularity prior.
fn weight_file(n: usize, seed: u64) -> WeightFile {
    let mut file = tiny_weight_file(n, seed);
    let items = &mut file.metadata.items;
    items.price = (0..n)
        .map(|i| (i % 7 != 3).then_some(1.0 + (i * 37 % 100) as f32))
        .collect();
    items.added = (0..n).map(|i| Some(T0 + i as f64 * 86_400.0)).collect();
    with_popularity(&mut file);
    file
}

fn recommender() -> Recommender {
    let mut rec = Recommender::from_weight_file(weight_file(N, 7)).expect("tiny model loads");
    rec.kernel = CpuKernel::Scalar;
    rec
}

fn id(i: usize) -> String {
    format!("I{i}")
}

fn history() -> Vec<HistoryEvent> {
    vec![
        HistoryEvent {
            item: 3,
            kind: EventKind::View,
            at: T0,
        },
        HistoryEvent {
            item: 17,
            kind: EventKind::Cart,
            at: T0 + 60.0,
        },
        HistoryEvent {
            item: 42,
            kind: EventKind::View,
            at: T0 + 120.0,
        },
        HistoryEvent {
            item: 5,
            kind: EventKind::Purchase,
            at: T0 + 180.0,
        },
    ]
}

fn opts(k: usize) -> RecommendOptions {
    RecommendOptions {
        k,
        ..RecommendOptions::default()
    }
}

fn items(recs: &[Recommendation]) -> Vec<u32> {
    recs.iter().map(|r| r.index).collect()
}

/// Reference logits: the user encoder on `events`, then `score_reference` item by item.
fn reference_logits(rec: &Recommender, events: &[HistoryEvent], _now: f64) -> Vec<f32> {
    let v = rec.item_vectors().to_f32();
    let enc = rec.model.encode_user(&*v, events);
    (0..rec.n_items())
        .map(|i| rec.model.score_reference(&v, &enc.u, i))
        .collect()
}

/// Checks that `recs` is a top-k of `logits` over the items not in `excluded`: same
/// length, every position holds an item whose reference logit equals the k-th best
/// reference logit (up to float noise), and the score is the sigmoid of it.
fn assert_matches_reference(
    recs: &[Recommendation],
    logits: &[f32],
    excluded: &HashSet<u32>,
    k: usize,
) {
    let mut order: Vec<u32> = (0..logits.len() as u32)
        .filter(|i| !excluded.contains(i))
        .collect();
    order.sort_by(|&a, &b| {
        logits[b as usize]
            .total_cmp(&logits[a as usize])
            .then(a.cmp(&b))
    });
    order.truncate(k);
    assert_eq!(recs.len(), order.len());
    let tol = 1e-3;
    for (p, r) in recs.iter().enumerate() {
        assert!(
            !excluded.contains(&r.index),
            "excluded item {} returned",
            r.index
        );
        let got = logits[r.index as usize];
        let want = logits[order[p] as usize];
        assert!(
            (got - want).abs() <= tol * (1.0 + want.abs()),
            "position {p}: item {} has reference logit {got}, the reference ranking has {want}",
            r.index
        );
        assert!(
            (r.score - sigmoid(got)).abs() <= 1e-4,
            "score {} vs {}",
            r.score,
            sigmoid(got)
        );
    }
    let distinct: HashSet<u32> = items(recs).into_iter().collect();
    assert_eq!(
        distinct.len(),
        recs.len(),
        "duplicates in {:?}",
        items(recs)
    );
}

#[test]
fn for_you_matches_the_reference_ranking() {
    let rec = recommender();
    let h = history();
    let now = T0 + 3600.0;
    let o = RecommendOptions {
        k: 25,
        now: Some(now),
        ..RecommendOptions::default()
    };
    let recs = rec.recommend(&h, &o).unwrap();
    let logits = reference_logits(&rec, &h, now);
    let seen: HashSet<u32> = h.iter().map(|e| e.item).collect();
    assert_matches_reference(&recs, &logits, &seen, 25);
    // The same with the best kernel of this build.
    let mut fast = recommender();
    fast.kernel = CpuKernel::best();
    let recs_fast = fast.recommend(&h, &o).unwrap();
    assert_matches_reference(&recs_fast, &logits, &seen, 25);
}

#[test]
fn prepare_then_finish_is_recommend() {
    let rec = recommender();
    let h = history();
    let o = opts(10);
    let p = rec.prepare(&h, &o).unwrap();
    let q = p.query.as_ref().expect("a history gives a query");
    let mut logits = vec![0.0; rec.n_items()];
    rec.kernel.scores(&rec.plan, q, &mut logits);
    assert_eq!(rec.finish(&p, &logits), rec.recommend(&h, &o).unwrap());
    // Wrong-length logits are not a panic.
    assert!(rec.finish(&p, &logits[..5]).is_empty());
    assert_eq!(p.attention.len(), p.history.len());
}

#[test]
fn unsorted_history_is_read_oldest_first() {
    let rec = recommender();
    let mut h = history();
    h.reverse();
    assert_eq!(
        rec.recommend(&h, &opts(10)).unwrap(),
        rec.recommend(&history(), &opts(10)).unwrap()
    );
}

#[test]
fn for_you_explains_with_history_events() {
    let rec = recommender();
    let h = history();
    let ids: HashSet<String> = h.iter().map(|e| id(e.item as usize)).collect();
    for r in rec.recommend(&h, &opts(20)).unwrap() {
        let hist: Vec<&Reason> = r
            .reasons
            .iter()
            .filter(|x| matches!(x, Reason::History { .. }))
            .collect();
        assert!((1..=2).contains(&hist.len()), "{:?}", r.reasons);
        let mut last = f32::INFINITY;
        for reason in hist {
            let Reason::History {
                item,
                weight,
                title,
                event,
            } = reason
            else {
                unreachable!()
            };
            assert!(ids.contains(item), "{item} is not in the history");
            assert!((0.0..=1.0).contains(weight), "{weight}");
            assert!(*weight <= last, "reasons not in decreasing weight");
            last = *weight;
            let j = rec.item_index(item).unwrap() as usize;
            assert_eq!(title, &rec.catalog().titles[j]);
            assert!(h.iter().any(|e| e.item as usize == j && e.kind == *event));
        }
    }
    // A one-event history explains everything with that event, at full weight.
    let one = [h[1]];
    for r in rec.recommend(&one, &opts(5)).unwrap() {
        assert_eq!(
            r.reasons,
            vec![Reason::History {
                item: id(17),
                title: rec.catalog().titles[17].to_owned(),
                event: EventKind::Cart,
                weight: 1.0
            }]
        );
    }
}

#[test]
fn empty_history_falls_back_to_popularity() {
    let rec = recommender();
    let p = rec.prepare(&[], &opts(10)).unwrap();
    assert!(p.query.is_none());
    let recs = rec.recommend(&[], &opts(30)).unwrap();
    let mut order: Vec<usize> = (0..N).collect();
    order.sort_by(|&a, &b| {
        rec.popularity[b]
            .total_cmp(&rec.popularity[a])
            .then(a.cmp(&b))
    });
    assert_eq!(
        items(&recs),
        order[..30].iter().map(|&i| i as u32).collect::<Vec<_>>()
    );
    let total: f32 = rec.popularity.iter().sum();
    for r in &recs {
        assert_eq!(r.reasons, vec![Reason::Popular]);
        let share = rec.popularity[r.index as usize] / total;
        assert!((r.score - share).abs() < 1e-5, "{} vs {share}", r.score);
    }
}

#[test]
fn missing_popularity_is_uniform_and_bad_popularity_is_an_error() {
    let mut file = weight_file(N, 7);
    file.tensors.remove("stats.popularity");
    let rec = Recommender::from_weight_file(file).unwrap();
    assert!(rec.popularity.iter().all(|&p| p == rec.popularity[0]));
    let recs = rec.recommend(&[], &opts(5)).unwrap();
    assert_eq!(
        items(&recs),
        vec![0, 1, 2, 3, 4],
        "ties go to the lower index"
    );

    for (shape, data) in [
        (vec![N - 1], TensorData::F32(vec![1.0; N - 1])),
        (vec![N], TensorData::I32(vec![1; N])),
        (vec![N], TensorData::F32(vec![f32::NAN; N])),
        (vec![N], TensorData::F32(vec![-1.0; N])),
    ] {
        let mut file = weight_file(N, 7);
        file.tensors
            .insert("stats.popularity".into(), Tensor { shape, data });
        assert!(matches!(
            Recommender::from_weight_file(file),
            Err(RecommendError::Inconsistent(_))
        ));
    }
}

#[test]
fn inconsistent_catalogs_are_errors() {
    // The catalog rule is the format's: the same typed error from a parsed file and
    // from one built in memory.
    let mut file = weight_file(N, 7);
    let mut ids = file.metadata.items.ids.to_vec();
    ids[5] = ids[4].clone();
    file.metadata.items.ids = ids.into();
    let duplicate = |r: Result<Recommender, RecommendError>| {
        matches!(
            r,
            Err(RecommendError::Format(FormatError::DuplicateItemId { ref id, first: 4, second: 5 }))
                if id == "I4"
        )
    };
    assert!(duplicate(Recommender::from_weight_file(file)));
    // Format version 1, whose catalog is JSON inside the header's JSON (its quotes
    // escaped); version 2's section gets the same rule (tests/format.rs).
    let bytes = weight_file(N, 7).to_bytes_as(Quantization::F32, 1).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(bytes[8..8 + header_len].to_vec()).unwrap();
    let patched = header.replacen(r#"\"I5\""#, r#"\"I4\""#, 1);
    assert_ne!(patched, header);
    let mut bad = bytes[..8].to_vec();
    bad.extend_from_slice(patched.as_bytes());
    bad.extend_from_slice(&bytes[8 + header_len..]);
    assert!(duplicate(Recommender::from_bytes(&bad)));
    // The format requires every catalog column in full (titles may not be left out).
    let mut file = weight_file(N, 7);
    file.metadata.items.titles = StrList::new();
    assert!(matches!(
        Recommender::from_weight_file(file),
        Err(RecommendError::Format(FormatError::CatalogLength {
            field: "titles",
            len: 0,
            ..
        }))
    ));
    let mut file = weight_file(N, 7);
    let mut ids = file.metadata.items.ids.to_vec();
    ids.pop();
    file.metadata.items.ids = ids.into();
    assert!(Recommender::from_weight_file(file).is_err());
    let mut file = weight_file(N, 7);
    file.metadata.items.category[0] = 10_000;
    assert!(Recommender::from_weight_file(file).is_err());
    assert!(Recommender::from_bytes(b"definitely not a weight file").is_err());
    assert!(Recommender::from_bytes(&[]).is_err());
}

#[test]
fn category_filters_only_return_matching_items() {
    let rec = recommender();
    let cats: Vec<String> = (0..N).map(|i| rec.category_name(i).to_string()).collect();
    let wanted = cats[10].clone();
    let n_wanted = cats.iter().filter(|c| **c == wanted).count();
    let o = RecommendOptions {
        k: 1000,
        exclude_seen: false,
        filter: Filter {
            categories: vec![wanted.clone()],
            ..Filter::default()
        },
        ..RecommendOptions::default()
    };
    let recs = rec.recommend(&history(), &o).unwrap();
    assert_eq!(recs.len(), n_wanted);
    assert!(recs.iter().all(|r| r.category == wanted));
    let o = RecommendOptions {
        k: 1000,
        exclude_seen: false,
        filter: Filter {
            exclude_categories: vec![wanted.clone()],
            ..Filter::default()
        },
        ..RecommendOptions::default()
    };
    let recs = rec.recommend(&history(), &o).unwrap();
    assert_eq!(recs.len(), N - n_wanted);
    assert!(recs.iter().all(|r| r.category != wanted));
}

#[test]
fn price_filter_only_returns_priced_items_in_range() {
    let rec = recommender();
    let o = RecommendOptions {
        k: 1000,
        filter: Filter {
            price_min: Some(20.0),
            price_max: Some(60.0),
            ..Filter::default()
        },
        ..RecommendOptions::default()
    };
    let recs = rec.recommend(&history(), &o).unwrap();
    let h: HashSet<u32> = history().iter().map(|e| e.item).collect();
    let expected = (0..N)
        .filter(|&i| !h.contains(&(i as u32)))
        .filter(|&i| {
            rec.catalog()
                .price
                .get(i)
                .is_some_and(|p| (20.0..=60.0).contains(&p))
        })
        .count();
    assert!(expected > 0);
    assert_eq!(recs.len(), expected);
    for r in &recs {
        let p = r.price.expect("unpriced item passed a price filter");
        assert!((20.0..=60.0).contains(&p));
    }
    // Only a minimum: unpriced items are out too.
    let o = RecommendOptions {
        k: 1000,
        filter: Filter {
            price_min: Some(0.0),
            ..Filter::default()
        },
        ..RecommendOptions::default()
    };
    assert!(rec
        .recommend(&history(), &o)
        .unwrap()
        .iter()
        .all(|r| r.price.is_some()));
}

#[test]
fn exclusions_and_seen_items() {
    let rec = recommender();
    let h = history();
    let all = |o: RecommendOptions| -> HashSet<u32> {
        items(
            &rec.recommend(&h, &RecommendOptions { k: 1000, ..o })
                .unwrap(),
        )
        .into_iter()
        .collect()
    };
    // Default: every history item is left out.
    let got = all(RecommendOptions::default());
    assert_eq!(got.len(), N - 4);
    assert!(h.iter().all(|e| !got.contains(&e.item)));
    // Repurchase allowed: the purchased item (5) comes back, the viewed ones do not.
    let got = all(RecommendOptions {
        allow_repurchase: true,
        ..RecommendOptions::default()
    });
    assert!(got.contains(&5) && !got.contains(&3) && !got.contains(&17));
    // excludeSeen off: everything, minus the explicit exclusions.
    let got = all(RecommendOptions {
        exclude_seen: false,
        exclude: vec![id(0), id(3), id(99)],
        ..RecommendOptions::default()
    });
    assert_eq!(got.len(), N - 3);
    assert!(!got.contains(&0) && !got.contains(&3) && !got.contains(&99));
    assert!(got.contains(&17));
}

#[test]
fn boost_moves_an_item_up_and_a_negative_boost_down() {
    let rec = recommender();
    let h = history();
    let base = rec.recommend(&h, &opts(30)).unwrap();
    let target = base[20].item.clone();
    let o = RecommendOptions {
        k: 30,
        boost: vec![Boost {
            ids: vec![target.clone()],
            category: None,
            weight: 100.0,
        }],
        ..RecommendOptions::default()
    };
    let boosted = rec.recommend(&h, &o).unwrap();
    assert_eq!(boosted[0].item, target);
    assert!(boosted[0].reasons.contains(&Reason::Boosted));
    assert!(boosted[1..]
        .iter()
        .all(|r| !r.reasons.contains(&Reason::Boosted)));
    // The rest keep their relative order.
    let rest: Vec<&String> = boosted[1..].iter().map(|r| &r.item).collect();
    let base_rest: Vec<&String> = base
        .iter()
        .map(|r| &r.item)
        .filter(|i| **i != target)
        .collect();
    assert_eq!(rest, base_rest[..29]);

    let top = base[0].item.clone();
    let o = RecommendOptions {
        k: 30,
        boost: vec![Boost {
            ids: vec![top.clone()],
            category: None,
            weight: -100.0,
        }],
        ..RecommendOptions::default()
    };
    let demoted = rec.recommend(&h, &o).unwrap();
    assert!(demoted.iter().all(|r| r.item != top));

    // A category boost fills the top with that category.
    let cat = rec.category_name(50).to_string();
    let in_cat = (0..N).filter(|&i| rec.category_name(i) == cat).count()
        - h.iter()
            .filter(|e| rec.category_name(e.item as usize) == cat)
            .count();
    let o = RecommendOptions {
        k: in_cat.min(10),
        boost: vec![Boost {
            ids: vec![],
            category: Some(cat.clone()),
            weight: 100.0,
        }],
        ..RecommendOptions::default()
    };
    let recs = rec.recommend(&h, &o).unwrap();
    assert!(recs
        .iter()
        .all(|r| r.category == cat && r.reasons.contains(&Reason::Boosted)));
}

#[test]
fn promote_pins_items_into_the_first_slots() {
    let rec = recommender();
    let h = history();
    let base = rec.recommend(&h, &opts(10)).unwrap();
    let last: Vec<String> = {
        let all = rec.recommend(&h, &opts(1000)).unwrap();
        all[all.len() - 3..]
            .iter()
            .map(|r| r.item.clone())
            .collect()
    };
    let promote = |ids: Vec<String>, slots: usize| RecommendOptions {
        k: 10,
        promote: Some(Promote { ids, slots }),
        ..RecommendOptions::default()
    };
    let recs = rec.recommend(&h, &promote(last.clone(), 2)).unwrap();
    assert_eq!(recs.len(), 10);
    assert_eq!(recs[0].item, last[0]);
    assert_eq!(recs[1].item, last[1]);
    assert_eq!(recs[0].reasons[0], Reason::Promoted);
    assert!(recs[2..]
        .iter()
        .all(|r| !r.reasons.contains(&Reason::Promoted)));
    assert!(recs.iter().all(|r| r.item != last[2]));
    let rest: Vec<&String> = recs[2..].iter().map(|r| &r.item).collect();
    let base_rest: Vec<&String> = base[..8].iter().map(|r| &r.item).collect();
    assert_eq!(rest, base_rest);

    // Excluded or seen promoted items are skipped; duplicates pin once; an item both
    // promoted and ranked appears once.
    let seen = id(history()[0].item as usize);
    let recs = rec
        .recommend(
            &h,
            &promote(
                vec![
                    seen.clone(),
                    base[3].item.clone(),
                    base[3].item.clone(),
                    last[0].clone(),
                ],
                3,
            ),
        )
        .unwrap();
    assert_eq!(recs[0].item, base[3].item);
    assert_eq!(recs[1].item, last[0]);
    assert!(recs.iter().all(|r| r.item != seen));
    let distinct: HashSet<&String> = recs.iter().map(|r| &r.item).collect();
    assert_eq!(distinct.len(), recs.len());
    // More slots than k: the whole list is promotions.
    let recs = rec
        .recommend(
            &h,
            &RecommendOptions {
                k: 2,
                ..promote(last.clone(), 5)
            },
        )
        .unwrap();
    assert_eq!(items(&recs).len(), 2);
    assert!(recs.iter().all(|r| r.reasons[0] == Reason::Promoted));
}

#[test]
fn diversity_increases_distinct_categories() {
    let rec = recommender();
    let h = history();
    let n_cats = (0..N)
        .map(|i| rec.category_name(i))
        .collect::<HashSet<_>>()
        .len();
    assert!(n_cats >= 3, "the tiny catalog needs a few categories");
    let k = 12;
    let distinct = |d: f32| {
        let o = RecommendOptions {
            k,
            diversity: d,
            ..RecommendOptions::default()
        };
        let recs = rec.recommend(&h, &o).unwrap();
        assert_eq!(recs.len(), k);
        recs.iter()
            .map(|r| r.category.clone())
            .collect::<HashSet<_>>()
            .len()
    };
    let d0 = distinct(0.0);
    let d1 = distinct(1.0);
    assert!(d1 >= d0);
    assert_eq!(
        d1,
        n_cats.min(k),
        "diversity 1 uses every category before repeating"
    );
    // Diversity 1 picks the best item of each category first.
    let o = RecommendOptions {
        k: n_cats,
        diversity: 1.0,
        ..RecommendOptions::default()
    };
    let recs = rec.recommend(&h, &o).unwrap();
    let all = rec.recommend(&h, &opts(1000)).unwrap();
    for r in &recs {
        let best = all.iter().find(|a| a.category == r.category).unwrap();
        assert_eq!(best.item, r.item);
    }
    // Diversity 0 is the plain ranking.
    let o = RecommendOptions {
        k,
        diversity: 0.0,
        ..RecommendOptions::default()
    };
    assert_eq!(
        rec.recommend(&h, &o).unwrap(),
        rec.recommend(&h, &opts(k)).unwrap()
    );
}

#[test]
fn new_items_boost_raises_new_items() {
    let rec = recommender();
    let h = history();
    // Items were added one a day, so the newest tenth is the last 12.
    let new: Vec<usize> = (0..N).filter(|&i| rec.is_new(i)).collect();
    assert_eq!(new, (N - 12..N).collect::<Vec<_>>());
    // The flags are all the loaded engine keeps of the dates.
    assert_eq!(rec.metadata.items.added.len(), 0);
    assert!(!rec.is_new(N) && !rec.is_new(usize::MAX));
    let count_new = |b: f32| {
        let o = RecommendOptions {
            k: 10,
            new_items_boost: b,
            ..RecommendOptions::default()
        };
        let recs = rec.recommend(&h, &o).unwrap();
        for r in &recs {
            assert_eq!(
                r.reasons.contains(&Reason::New),
                b > 0.0 && rec.is_new(r.index as usize)
            );
        }
        recs.iter().filter(|r| rec.is_new(r.index as usize)).count()
    };
    let before = count_new(0.0);
    let mid = count_new(1.0);
    let after = count_new(100.0);
    assert!(before <= mid && mid <= after);
    assert_eq!(after, 10);
    // Without `added` dates nothing is new.
    let mut file = weight_file(N, 7);
    file.metadata.items.added = OptColumn::none(N);
    let rec = Recommender::from_weight_file(file).unwrap();
    assert!((0..N).all(|i| !rec.is_new(i)));
}

#[test]
fn context_item_gives_similar_items() {
    let rec = recommender();
    let now = T0 + 500.0;
    let o = RecommendOptions {
        k: 15,
        context: Some(id(60)),
        now: Some(now),
        ..RecommendOptions::default()
    };
    let recs = rec.recommend(&[], &o).unwrap();
    let similar = Reason::Similar {
        item: id(60),
        title: rec.catalog().titles[60].to_owned(),
    };
    for r in &recs {
        assert_eq!(r.reasons[0], similar);
    }
    let ctx = [HistoryEvent {
        item: 60,
        kind: EventKind::View,
        at: now,
    }];
    let logits = with_context_term(&rec, reference_logits(&rec, &ctx, now), 60);
    assert_matches_reference(&recs, &logits, &HashSet::from([60]), 15);
}

/// `logits` plus the context term `λ · σ(logits) · cos(v_c, v_i)`, computed in f64 from
/// the item vectors (the blend stage's math, written out again).
fn with_context_term(rec: &Recommender, logits: Vec<f32>, c: usize) -> Vec<f32> {
    let d = rec.plan.dim;
    let v = |i: usize| -> Vec<f64> {
        rec.item_vectors()
            .row(i, d)
            .expect("a catalogue item")
            .iter()
            .map(|&x| x as f64)
            .collect()
    };
    let cos = |a: &[f64], b: &[f64]| {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
        let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
        dot / (na * nb)
    };
    let n = logits.len() as f64;
    let mean = logits.iter().map(|&z| z as f64).sum::<f64>() / n;
    let var = logits
        .iter()
        .map(|&z| (z as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    let lambda = vitrine::recommend::blend::CONTEXT_WEIGHT as f64;
    let vc = v(c);
    (0..logits.len())
        .map(|i| (logits[i] as f64 + lambda * var.sqrt() * cos(&vc, &v(i))) as f32)
        .collect()
}

/// Mean cosine between the context item's vector and the results' vectors.
fn mean_cosine_to(rec: &Recommender, recs: &[Recommendation], c: usize) -> f64 {
    let d = rec.plan.dim;
    let all = rec.item_vectors().to_f32();
    let v = |i: usize| &all[i * d..(i + 1) * d];
    let cos = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let n = |x: &[f32]| x.iter().map(|y| y * y).sum::<f32>().sqrt();
        (dot / (n(a) * n(b))) as f64
    };
    recs.iter()
        .map(|r| cos(v(c), v(r.index as usize)))
        .sum::<f64>()
        / recs.len() as f64
}

/// "Similar items" rank by the context item first and the history second: with a
/// history, the similar shelf is closer to the context item than "for you" is, and the
/// ranking is exactly the reference with the context term.
#[test]
fn similar_items_rank_by_the_context_first() {
    let rec = recommender();
    let h = history();
    let now = T0 + 500.0;
    let c = 60;
    let similar = RecommendOptions {
        k: 10,
        context: Some(id(c)),
        now: Some(now),
        ..RecommendOptions::default()
    };
    let for_you = RecommendOptions {
        k: 10,
        exclude: vec![id(c)],
        now: Some(now),
        ..RecommendOptions::default()
    };
    let s = rec.recommend(&h, &similar).unwrap();
    let f = rec.recommend(&h, &for_you).unwrap();
    let (cs, cf) = (mean_cosine_to(&rec, &s, c), mean_cosine_to(&rec, &f, c));
    assert!(cs > cf + 0.1, "similar {cs:.3} vs for you {cf:.3}");
    let mut input = h.clone();
    input.push(HistoryEvent {
        item: c as u32,
        kind: EventKind::View,
        at: now,
    });
    let logits = with_context_term(&rec, reference_logits(&rec, &input, now), c);
    let mut excluded: HashSet<u32> = h.iter().map(|e| e.item).collect();
    excluded.insert(c as u32);
    assert_matches_reference(&s, &logits, &excluded, 10);
}

/// The shelves of a page never share an item; each shelf is exactly `recommend()` with
/// the earlier shelves' items excluded; without `dedup` each is exactly `recommend()`.
#[test]
fn page_shelves_never_repeat_an_item() {
    let rec = recommender();
    let h = history();
    let shelves = vec![
        RecommendOptions {
            k: 6,
            filter: Filter {
                new_only: true,
                ..Filter::default()
            },
            ..RecommendOptions::default()
        },
        RecommendOptions {
            k: 8,
            context: Some(id(60)),
            ..RecommendOptions::default()
        },
        RecommendOptions {
            k: 8,
            basket: vec![id(20), id(21)],
            ..RecommendOptions::default()
        },
        opts(8),
        opts(5),
    ];
    let req = |dedup| PageRequest {
        shelves: shelves.clone(),
        dedup,
    };
    let page = rec.page(&h, &req(true)).unwrap();
    assert_eq!(page.len(), shelves.len());
    let mut shown: Vec<String> = Vec::new();
    for (j, (shelf, o)) in page.iter().zip(&shelves).enumerate() {
        assert_eq!(shelf.len(), o.k, "shelf {j} is full");
        assert!(
            shelf.iter().all(|r| !shown.contains(&r.item)),
            "shelf {j} repeats an item"
        );
        let mut alone = o.clone();
        alone.exclude.extend(shown.iter().cloned());
        assert_eq!(shelf, &rec.recommend(&h, &alone).unwrap(), "shelf {j}");
        shown.extend(shelf.iter().map(|r| r.item.clone()));
    }
    let plain = rec.page(&h, &req(false)).unwrap();
    for (j, (shelf, o)) in plain.iter().zip(&shelves).enumerate() {
        assert_eq!(shelf, &rec.recommend(&h, o).unwrap(), "shelf {j}");
    }
    // Without dedup the two identical "for you" shelves repeat each other.
    assert_eq!(plain[4][..], plain[3][..5]);
}

#[test]
fn new_only_returns_new_items_with_the_new_reason() {
    let rec = recommender();
    let o = RecommendOptions {
        k: 20,
        filter: Filter {
            new_only: true,
            ..Filter::default()
        },
        ..RecommendOptions::default()
    };
    let recs = rec.recommend(&history(), &o).unwrap();
    let n_new = (0..N).filter(|&i| rec.is_new(i)).count();
    assert!(n_new >= 5, "the fixture has new items");
    assert_eq!(recs.len(), n_new.min(20));
    for r in &recs {
        assert!(rec.is_new(r.index as usize), "{} is not new", r.item);
        assert!(r.reasons.contains(&Reason::New), "{:?}", r.reasons);
    }
}

#[test]
fn page_errors_name_the_shelf() {
    let rec = recommender();
    let h = history();
    let page = |shelves: Vec<RecommendOptions>| {
        rec.page(
            &h,
            &PageRequest {
                shelves,
                dedup: true,
            },
        )
        .unwrap_err()
        .to_string()
    };
    assert!(page(Vec::new()).contains("1 to 16 shelves, got 0"));
    assert!(page(vec![opts(3); 17]).contains("got 17"));
    let bad_k = page(vec![opts(3), opts(0)]);
    assert!(bad_k.contains("shelves[1]: k must be"), "{bad_k}");
    let unknown = page(vec![
        opts(3),
        opts(3),
        RecommendOptions {
            basket: vec![id(1), "nope".into()],
            ..opts(3)
        },
    ]);
    assert_eq!(unknown, "shelves[2].basket[1]: unknown item id \"nope\"");
    let json = r#"{"shelves":[{"k":2}],"dedupe":true}"#;
    let e = serde_json::from_str::<PageRequest>(json)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `dedupe`"), "{e}");
}

/// A file without a `basket.*` section: the basket is read as cart events (the model's
/// ranking) and, with no order counts to show, no result claims a co-purchase: each is
/// `similar` to its closest basket item.
#[test]
fn basket_without_a_section_ranks_by_the_model_and_claims_no_co_purchase() {
    let rec = recommender();
    let now = T0 + 500.0;
    let basket = [8usize, 33, 71];
    let o = RecommendOptions {
        k: 15,
        basket: basket.iter().map(|&i| id(i)).collect(),
        now: Some(now),
        ..RecommendOptions::default()
    };
    let recs = rec.recommend(&[], &o).unwrap();
    let d = rec.plan.dim;
    let all = rec.item_vectors().to_f32();
    let v = |i: usize| &all[i * d..(i + 1) * d];
    let dot = |a: usize, b: usize| v(a).iter().zip(v(b)).map(|(x, y)| x * y).sum::<f32>();
    for r in &recs {
        assert!(!basket.contains(&(r.index as usize)));
        let best = *basket
            .iter()
            .max_by(|&&a, &&b| {
                dot(a, r.index as usize)
                    .total_cmp(&dot(b, r.index as usize))
                    .then(b.cmp(&a))
            })
            .unwrap();
        assert_eq!(
            r.reasons[0],
            Reason::Similar {
                item: id(best),
                title: rec.catalog().titles[best].to_owned()
            }
        );
        assert!(
            !(r.reasons.iter()).any(|x| matches!(x, Reason::BoughtTogether { .. })),
            "{:?}",
            r.reasons
        );
    }
    assert!(rec.basket_model().is_none());
    let events: Vec<HistoryEvent> = basket
        .iter()
        .map(|&i| HistoryEvent {
            item: i as u32,
            kind: EventKind::Cart,
            at: now,
        })
        .collect();
    let logits = reference_logits(&rec, &events, now);
    let excluded: HashSet<u32> = basket.iter().map(|&i| i as u32).collect();
    assert_matches_reference(&recs, &logits, &excluded, 15);
}

fn err(rec: &Recommender, h: &[HistoryEvent], o: RecommendOptions) -> RecommendError {
    match rec.recommend(h, &o) {
        Ok(r) => panic!("{o:?} was accepted: {r:?}"),
        Err(e) => e,
    }
}

#[test]
fn every_invalid_option_is_its_error() {
    let rec = recommender();
    let h = history();
    let d = RecommendOptions::default;
    let invalid = |o: RecommendOptions, needle: &str| match err(&rec, &h, o) {
        RecommendError::InvalidOption(m) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
        e => panic!("expected InvalidOption({needle}), got {e:?}"),
    };
    invalid(RecommendOptions { k: 0, ..d() }, "k");
    invalid(RecommendOptions { k: 1001, ..d() }, "k");
    for x in [-0.1, 1.5, f32::NAN, f32::INFINITY] {
        invalid(
            RecommendOptions {
                diversity: x,
                ..d()
            },
            "diversity",
        );
    }
    invalid(
        RecommendOptions {
            new_items_boost: f32::NAN,
            ..d()
        },
        "newItemsBoost",
    );
    invalid(
        RecommendOptions {
            now: Some(f64::INFINITY),
            ..d()
        },
        "now",
    );
    let filter = |f: Filter| RecommendOptions { filter: f, ..d() };
    invalid(
        filter(Filter {
            price_min: Some(10.0),
            price_max: Some(5.0),
            ..Filter::default()
        }),
        "priceMin",
    );
    invalid(
        filter(Filter {
            price_max: Some(f32::NAN),
            ..Filter::default()
        }),
        "priceMax",
    );
    invalid(
        filter(Filter {
            categories: vec!["no such category".into()],
            ..Filter::default()
        }),
        "no such category",
    );
    invalid(
        filter(Filter {
            exclude_categories: vec!["nope-cat".into()],
            ..Filter::default()
        }),
        "nope-cat",
    );
    let boost = |b: Boost| RecommendOptions {
        boost: vec![b],
        ..d()
    };
    invalid(
        boost(Boost {
            ids: vec![id(1)],
            category: None,
            weight: f32::NAN,
        }),
        "weight",
    );
    invalid(
        boost(Boost {
            ids: vec![],
            category: None,
            weight: 1.0,
        }),
        "boost[0]",
    );
    invalid(
        boost(Boost {
            ids: vec![],
            category: Some("zzz-cat".into()),
            weight: 1.0,
        }),
        "zzz-cat",
    );

    let unknown = |o: RecommendOptions, name: &str, at: &str| match err(&rec, &h, o) {
        RecommendError::UnknownOptionItem { field, id } => {
            assert_eq!((field.as_str(), id.as_str()), (at, name))
        }
        e => panic!("expected UnknownOptionItem({at}: {name}), got {e:?}"),
    };
    unknown(
        RecommendOptions {
            context: Some("ghost-1".into()),
            ..d()
        },
        "ghost-1",
        "context",
    );
    unknown(
        RecommendOptions {
            basket: vec![id(1), "ghost-2".into()],
            ..d()
        },
        "ghost-2",
        "basket[1]",
    );
    unknown(
        RecommendOptions {
            exclude: vec!["ghost-3".into()],
            ..d()
        },
        "ghost-3",
        "exclude[0]",
    );
    unknown(
        boost(Boost {
            ids: vec!["ghost-4".into()],
            category: None,
            weight: 1.0,
        }),
        "ghost-4",
        "boost[0].ids[0]",
    );
    unknown(
        RecommendOptions {
            promote: Some(Promote {
                ids: vec!["ghost-5".into()],
                slots: 1,
            }),
            ..d()
        },
        "ghost-5",
        "promote.ids[0]",
    );
    // History events must point into the catalog and have finite times.
    let bad = [HistoryEvent {
        item: N as u32,
        kind: EventKind::View,
        at: T0,
    }];
    assert!(
        matches!(err(&rec, &bad, d()), RecommendError::UnknownItem(m) if m.contains(&N.to_string()))
    );
    let bad = [HistoryEvent {
        item: 1,
        kind: EventKind::View,
        at: f64::NAN,
    }];
    assert!(matches!(
        err(&rec, &bad, d()),
        RecommendError::InvalidOption(_)
    ));
    // Category names match case-insensitively.
    let name = rec.category_name(10).to_uppercase();
    assert!(rec
        .recommend(
            &h,
            &filter(Filter {
                categories: vec![name],
                ..Filter::default()
            })
        )
        .is_ok());
}

#[test]
fn options_json_is_camel_case_and_strict() {
    let o: RecommendOptions = serde_json::from_str(
        r#"{"k":5,"excludeSeen":false,"allowRepurchase":true,"newItemsBoost":0.5,
            "filter":{"priceMax":20,"excludeCategories":["a"]},
            "boost":[{"ids":["I1"],"weight":2}],"promote":{"ids":["I2"],"slots":1}}"#,
    )
    .unwrap();
    assert_eq!(o.k, 5);
    assert!(!o.exclude_seen && o.allow_repurchase);
    assert_eq!(o.filter.price_max, Some(20.0));
    assert_eq!(o.diversity, 0.0, "missing fields take their defaults");
    for (json, field) in [
        (r#"{"k":5,"excludeSeem":true}"#, "excludeSeem"),
        (r#"{"filter":{"priceMaximum":3}}"#, "priceMaximum"),
        (r#"{"boost":[{"ids":[],"weigth":1}]}"#, "weigth"),
        (r#"{"promote":{"ids":[],"slot":1}}"#, "slot"),
    ] {
        let e = serde_json::from_str::<RecommendOptions>(json).unwrap_err();
        assert!(e.to_string().contains(field), "{e}");
    }
}

#[test]
fn resolve_history_skips_unknown_ids() {
    let rec = recommender();
    let events = vec![
        (id(4), EventKind::View, T0),
        ("gone".to_string(), EventKind::Cart, T0 + 1.0),
        (id(9), EventKind::Purchase, T0 + 2.0),
        ("gone".to_string(), EventKind::View, T0 + 3.0),
    ];
    let (known, unknown) = rec.resolve_history(&events);
    assert_eq!(
        known,
        vec![
            HistoryEvent {
                item: 4,
                kind: EventKind::View,
                at: T0
            },
            HistoryEvent {
                item: 9,
                kind: EventKind::Purchase,
                at: T0 + 2.0
            },
        ]
    );
    assert_eq!(unknown, vec!["gone".to_string()]);
}

#[test]
fn stored_history_feeds_the_engine() {
    let rec = recommender();
    let limits = HistoryLimits::default();
    let mut store = HistoryStore::new("vitrine:test");
    for e in history() {
        store
            .record(
                StoredEvent {
                    item: id(e.item as usize),
                    kind: e.kind,
                    at: e.at,
                },
                &limits,
            )
            .unwrap();
    }
    let (events, unknown) = rec.resolve_history(&store.entries());
    assert!(unknown.is_empty());
    assert_eq!(
        rec.recommend(&events, &opts(10)).unwrap(),
        rec.recommend(&history(), &opts(10)).unwrap()
    );
}

#[test]
fn every_result_has_a_reason_and_a_score_in_range() {
    let rec = recommender();
    for h in [vec![], history()] {
        for o in [
            opts(50),
            RecommendOptions {
                k: 50,
                diversity: 0.5,
                new_items_boost: 0.3,
                ..RecommendOptions::default()
            },
            RecommendOptions {
                k: 50,
                context: Some(id(2)),
                basket: vec![id(7)],
                ..RecommendOptions::default()
            },
        ] {
            for r in rec.recommend(&h, &o).unwrap() {
                assert!(!r.reasons.is_empty());
                assert!(r.score.is_finite() && (0.0..=1.0).contains(&r.score));
                assert_eq!(r.item, id(r.index as usize));
                assert_eq!(r.category, rec.category_name(r.index as usize));
            }
        }
    }
}

#[test]
fn weight_file_bytes_load_to_the_same_engine() {
    let file = weight_file(N, 7);
    let bytes = file.to_bytes(Quantization::F32).unwrap();
    let mut from_bytes = Recommender::from_bytes(&bytes).unwrap();
    from_bytes.kernel = CpuKernel::Scalar;
    let rec = recommender();
    assert_eq!(from_bytes.n_items(), N);
    assert_eq!(
        from_bytes.recommend(&history(), &opts(20)).unwrap(),
        rec.recommend(&history(), &opts(20)).unwrap()
    );
}

#[test]
fn events_beyond_max_len_are_never_named() {
    let rec = recommender();
    let max_len = rec.model.config.max_len;
    let h: Vec<HistoryEvent> = (0..max_len + 10)
        .map(|j| HistoryEvent {
            item: j as u32,
            kind: EventKind::View,
            at: T0 + j as f64 * 60.0,
        })
        .collect();
    let unread: HashSet<String> = (0..10).map(id).collect();
    for r in rec.recommend(&h, &opts(30)).unwrap() {
        for reason in &r.reasons {
            if let Reason::History { item, .. } = reason {
                assert!(!unread.contains(item), "{item} was not read by the encoder");
            }
        }
    }
}

#[test]
fn finish_never_panics_on_odd_inputs() {
    let rec = recommender();
    let good = rec.prepare(&history(), &opts(10)).unwrap();
    let mut odd = good.clone();
    odd.history.push(HistoryEvent {
        item: u32::MAX,
        kind: EventKind::View,
        at: f64::NAN,
    });
    odd.attention = vec![f32::NAN];
    odd.options = RecommendOptions {
        k: 100_000,
        context: Some("ghost".into()),
        basket: vec!["ghost".into(), id(1)],
        exclude: vec!["ghost".into()],
        diversity: f32::NAN,
        new_items_boost: f32::INFINITY,
        boost: vec![Boost {
            ids: vec!["ghost".into(), id(2)],
            category: Some("ghost".into()),
            weight: f32::NEG_INFINITY,
        }],
        promote: Some(Promote {
            ids: vec![id(3), id(3)],
            slots: usize::MAX,
        }),
        filter: Filter {
            price_min: Some(f32::NAN),
            categories: vec!["ghost".into()],
            ..Filter::default()
        },
        ..RecommendOptions::default()
    };
    let mut logits: Vec<f32> = (0..N).map(|i| i as f32).collect();
    logits[0] = f32::NAN;
    logits[1] = f32::INFINITY;
    logits[2] = f32::NEG_INFINITY;
    let recs = rec.finish(&odd, &logits);
    for r in &recs {
        assert!(!r.reasons.is_empty());
        assert!(!r.score.is_nan());
    }
    assert!(rec.finish(&odd, &[]).is_empty());
    let mut pop = odd.clone();
    pop.query = None;
    let _ = rec.finish(&pop, &[]);
}

/// Histories × option sets covering every stage of the pipeline (eligibility, blend,
/// promotion, diversity, explanations, the popularity fallback).
fn snapshot_cases() -> Vec<(Vec<HistoryEvent>, RecommendOptions)> {
    let h = history();
    let short = vec![h[1]];
    let bought: Vec<HistoryEvent> = h
        .iter()
        .map(|e| HistoryEvent {
            kind: EventKind::Purchase,
            ..*e
        })
        .collect();
    let option_sets = vec![
        opts(10),
        RecommendOptions {
            k: 30,
            exclude_seen: false,
            ..RecommendOptions::default()
        },
        RecommendOptions {
            k: 20,
            allow_repurchase: true,
            exclude: vec![id(1), id(2)],
            filter: Filter {
                price_min: Some(10.0),
                price_max: Some(80.0),
                ..Filter::default()
            },
            ..RecommendOptions::default()
        },
        RecommendOptions {
            k: 25,
            boost: vec![
                Boost {
                    ids: vec![id(9), id(11)],
                    category: None,
                    weight: 2.5,
                },
                Boost {
                    ids: Vec::new(),
                    category: Some("MUG".into()),
                    weight: -0.75,
                },
            ],
            new_items_boost: 1.25,
            now: Some(T0 + 7200.0),
            ..RecommendOptions::default()
        },
        RecommendOptions {
            k: 15,
            promote: Some(Promote {
                ids: vec![id(100), id(3), id(50), id(51)],
                slots: 2,
            }),
            diversity: 0.5,
            ..RecommendOptions::default()
        },
        RecommendOptions {
            k: 12,
            diversity: 1.0,
            context: Some(id(8)),
            ..RecommendOptions::default()
        },
        RecommendOptions {
            k: 12,
            basket: vec![id(20), id(21)],
            filter: Filter {
                exclude_categories: vec!["candle".into()],
                ..Filter::default()
            },
            ..RecommendOptions::default()
        },
    ];
    let mut cases = Vec::new();
    for hist in [Vec::new(), short, h, bought] {
        for o in &option_sets {
            cases.push((hist.clone(), o.clone()));
        }
    }
    cases
}

/// The full result lists (ids, scores, reasons) of [`snapshot_cases`] under the scalar
/// and the best CPU kernel, as JSON (f32 values print as their shortest round-trip form,
/// so equal text means equal bits).
fn snapshot_json() -> String {
    let mut rec = recommender();
    let mut out = Vec::new();
    for kernel in [CpuKernel::Scalar, CpuKernel::best()] {
        rec.kernel = kernel;
        for (h, o) in snapshot_cases() {
            let recs = rec.recommend(&h, &o).unwrap();
            out.push(serde_json::json!({ "kernel": kernel.name(), "results": recs }));
        }
    }
    serde_json::to_string_pretty(&out).unwrap() + "\n"
}

/// Results are bit-identical to `tests/snapshots/recommend.json`, written by the engine
/// before it was split into pipeline stages (regenerate with `VITRINE_BLESS=1` only for
/// an intended change of results).
#[test]
fn results_match_the_recorded_snapshot() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/snapshots/recommend.json"
    );
    let got = snapshot_json();
    if std::env::var_os("VITRINE_BLESS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
        std::fs::write(path, &got).unwrap();
    }
    let want = std::fs::read_to_string(path).expect("snapshot file");
    assert!(got.len() > 10_000, "the snapshot holds real results");
    for (j, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "line {} of {path} differs", j + 1);
    }
    assert_eq!(got.lines().count(), want.lines().count());
}

/// With a transition memory, a result's score is `sigmoid((head + boost + new) + memory)`
/// in exactly that order (the blend stage's math), bit for bit, and the list is the top
/// of those logits over the unseen items.
#[test]
fn memory_term_is_added_after_the_boosts() {
    let mut rec = recommender();
    let lists = (0..N).map(|i| {
        vec![
            (((i * 7 + 1) % N) as u32, 0.37 + i as f32 * 0.01),
            (((i * 11 + 2) % N) as u32, 0.9),
        ]
    });
    let mut memory = Memory::from_lists(lists);
    (memory.alpha, memory.last_l, memory.decay) = (3.3, 2, 0.6);
    rec.model.memory = Some(memory);
    let h = history();
    let o = RecommendOptions {
        k: 40,
        boost: vec![Boost {
            ids: (0..N).step_by(3).map(id).collect(),
            category: None,
            weight: 0.7,
        }],
        new_items_boost: 0.45,
        ..RecommendOptions::default()
    };
    let recs = rec.recommend(&h, &o).unwrap();
    let p = rec.prepare(&h, &o).unwrap();
    let mut head = vec![0.0; N];
    rec.kernel
        .scores(&rec.plan, p.query.as_ref().unwrap(), &mut head);
    let mut want: Vec<f32> = (0..N)
        .map(|i| {
            let boost = if i % 3 == 0 { 0.7 } else { 0.0 };
            let new = if rec.is_new(i) { 0.45 } else { 0.0 };
            head[i] + boost + new + 0.0
        })
        .collect();
    let before = want.clone();
    rec.model.add_memory(&p.history, &mut want);
    assert!(want.iter().zip(&before).any(|(a, b)| a != b), "memory adds");
    let seen: HashSet<u32> = h.iter().map(|e| e.item).collect();
    let order =
        vitrine::kernels::top_k_among(&want, (0..N as u32).filter(|i| !seen.contains(i)), 40);
    assert_eq!(items(&recs), order);
    for r in &recs {
        assert_eq!(r.score.to_bits(), sigmoid(want[r.index as usize]).to_bits());
    }
}

/// A product page records a view of the product, then asks for similar items: the
/// product is named once ("similar to X"), never again as "because you viewed X".
#[test]
fn the_context_item_is_not_named_twice() {
    let rec = recommender();
    let mut h = history();
    let c = 42; // viewed in the history
    h.push(HistoryEvent {
        item: c,
        kind: EventKind::View,
        at: T0 + 400.0,
    });
    let o = RecommendOptions {
        k: 20,
        context: Some(id(c as usize)),
        ..RecommendOptions::default()
    };
    let recs = rec.recommend(&h, &o).unwrap();
    let named_as_history = |r: &Recommendation| {
        r.reasons
            .iter()
            .any(|x| matches!(x, Reason::History { item, .. } if *item == id(c as usize)))
    };
    assert!(recs.iter().all(|r| !named_as_history(r)));
    // Without the context the same event is a reason for some of these items.
    let plain = rec.recommend(&h, &opts(20)).unwrap();
    assert!(
        plain.iter().any(named_as_history),
        "the fixture names item 42"
    );
}

/// The shortlist path with the scalar reference standing in for the GPU
/// (`kernels::shortlist::shortlist_reference`): over 150 random requests (filters,
/// exclusions, seen items, boosts, promotions, new-item boosts, baskets with evidence, a
/// transition memory, earlier shelves) its list is `finish_page`'s over every logit, bit
/// for bit. `tests/gpu_recommend.rs` runs the same on a real GPU pass.
#[test]
fn shortlist_finish_equals_the_full_path() {
    let rec = shortlist_cases::recommender(2600, 11);
    let attrs = rec.item_attributes();
    let mut rng = vitrine::rng::SplitMix64::new(0x5eed);
    for case in 0..150 {
        let (history, o, shown) = shortlist_cases::request(&mut rng, &rec);
        let p = rec.prepare(&history, &o).expect("valid request");
        let plan = rec
            .plan_shortlist(&p, &shown)
            .expect("served by a shortlist");
        let logits = rec.cpu_logits(&p).expect("logits");
        let got = shortlist_reference(&logits, &attrs, &plan.request, 1024);
        let fast = rec
            .finish_shortlist(&p, &plan, &got)
            .unwrap_or_else(|e| panic!("case {case}: {e}"));
        let want = rec.finish_page(&p, &logits, &shown);
        shortlist_cases::assert_same(&format!("case {case} {o:?}"), &fast, &want);
    }
}

/// A shortlist that does not fit its request is refused, never served: a candidate whose
/// blended logit differs from the CPU's, one repeated, one the filter excludes, and
/// gathered logits of the wrong length.
#[test]
fn shortlist_mismatches_are_errors() {
    let rec = shortlist_cases::recommender(300, 12);
    let history = common::fixtures::history(&[3, 17, 42]);
    let o = RecommendOptions {
        filter: Filter {
            price_min: Some(5.0),
            ..Filter::default()
        },
        ..opts(10)
    };
    let p = rec.prepare(&history, &o).expect("valid");
    let plan = rec.plan_shortlist(&p, &[]).expect("served by a shortlist");
    let logits = rec.cpu_logits(&p).expect("logits");
    let good = shortlist_reference(&logits, &rec.item_attributes(), &plan.request, 1024);
    assert!(rec.finish_shortlist(&p, &plan, &good).is_ok());
    let mut bad = good.clone();
    bad.candidates[0].blended = f32::from_bits(bad.candidates[0].blended.to_bits() ^ 1);
    assert!(matches!(
        rec.finish_shortlist(&p, &plan, &bad),
        Err(ShortlistError::Blend { .. })
    ));
    let mut bad = good.clone();
    bad.candidates.push(bad.candidates[0]);
    assert!(matches!(
        rec.finish_shortlist(&p, &plan, &bad),
        Err(ShortlistError::NotACandidate { .. })
    ));
    let cheap = (0..300u32)
        .find(|&i| rec.catalog().price.get(i as usize).is_none_or(|x| x < 5.0))
        .expect("an item under the price bound");
    let mut bad = good.clone();
    bad.candidates[0].index = cheap;
    assert_eq!(
        rec.finish_shortlist(&p, &plan, &bad),
        Err(ShortlistError::NotACandidate { index: cheap })
    );
    let mut bad = good;
    bad.sparse_logits.pop();
    assert!(matches!(
        rec.finish_shortlist(&p, &plan, &bad),
        Err(ShortlistError::SparseLength { .. })
    ));
}

/// Context items, diversity, more places than a chunk keeps and no history keep the full
/// read-back, each for its stated reason.
#[test]
fn requests_a_shortlist_cannot_serve_say_why() {
    let rec = shortlist_cases::recommender(300, 4);
    let history = common::fixtures::history(&[3, 17, 42]);
    let plan = |o: RecommendOptions, h: &[HistoryEvent]| {
        let p = rec.prepare(h, &o).expect("valid");
        rec.plan_shortlist(&p, &[]).err()
    };
    let ctx = RecommendOptions {
        context: Some("I5".into()),
        ..RecommendOptions::default()
    };
    assert_eq!(plan(ctx, &history), Some(FullPath::Context));
    let div = RecommendOptions {
        diversity: 0.5,
        ..RecommendOptions::default()
    };
    assert_eq!(plan(div, &history), Some(FullPath::Diversity));
    let big = RecommendOptions {
        k: 257,
        ..RecommendOptions::default()
    };
    assert_eq!(
        plan(big, &history),
        Some(FullPath::TooManyPlaces { places: 257 })
    );
    assert_eq!(
        plan(RecommendOptions::default(), &[]),
        Some(FullPath::NoQuery)
    );
    assert_eq!(plan(RecommendOptions::default(), &history), None);
}

/// `warm_up` (the browser binding's first-call warm-up) scores up to
/// `WARM_UP_ITEMS` items of a smaller catalogue too, and keeps nothing: the
/// recommendations and their scores are the same, bit for bit, after it.
#[test]
fn warm_up_changes_no_recommendation() {
    for kernel in [CpuKernel::Scalar, CpuKernel::best()] {
        let mut rec = recommender();
        rec.kernel = kernel;
        assert!(rec.n_items() < vitrine::recommend::WARM_UP_ITEMS);
        let before = rec.recommend(&history(), &opts(10)).unwrap();
        rec.warm_up();
        let after = rec.recommend(&history(), &opts(10)).unwrap();
        assert_eq!(before, after, "{kernel:?}");
    }
}
