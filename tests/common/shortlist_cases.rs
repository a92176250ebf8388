//! Random recommendation requests for the shortlist tests (`tests/recommend.rs` with the
//! scalar reference, `tests/gpu_recommend.rs` on lavapipe, `tests/web_kernels.rs` on
//! SwiftShader): a tiny model with a transition memory and a basket section, and requests
//! mixing every option the shortlist serves (filters, exclusions, seen items, boosts by
//! id and category, promotions, new-item boosts, baskets, earlier shelves).
#![allow(dead_code)] // each test crate uses its own subset

use vitrine::basket::{Basket, BasketParams};
use vitrine::history::{EventKind, HistoryEvent};
use vitrine::model::memory::Memory;
use vitrine::recommend::{Boost, Filter, Promote, RecommendOptions, Recommendation, Recommender};
use vitrine::rng::SplitMix64;

use super::fixtures::{tiny_weight_file, with_popularity};

/// Seconds of the first history event.
pub const T0: f64 = 1.7e9;

/// The tiny model over `n` items with a popularity prior, a basket section (item `b`
/// bought with its pair partner `b ^ 1` and with `b + 10`) and a transition memory.
pub fn recommender(n: usize, seed: u64) -> Recommender {
    let mut file = tiny_weight_file(n, seed);
    with_popularity(&mut file);
    let (mut offsets, mut items, mut orders) = (vec![0u32], Vec::new(), Vec::new());
    for b in 0..n {
        let mut row: Vec<(u32, u32)> = vec![((b ^ 1) as u32, 1 + (b as u32 / 2) % 4)];
        if b + 10 < n && (b + 10) != (b ^ 1) {
            row.push(((b + 10) as u32, 1 + (b as u32 % 3)));
        }
        row.retain(|&(i, _)| (i as usize) < n);
        row.sort_unstable();
        for (i, c) in row {
            items.push(i);
            orders.push(c);
        }
        offsets.push(items.len() as u32);
    }
    let params = BasketParams {
        alpha: 0.8,
        ..BasketParams::default()
    };
    let basket = Basket::new(n, offsets, items, orders, vec![10; n], params)
        .expect("the hand-made basket section is valid");
    basket.write_into(&mut file);
    let mut rec = Recommender::from_weight_file(file).expect("tiny model loads");
    let lists = (0..n).map(|i| {
        vec![
            (((i * 7 + 1) % n) as u32, 0.37 + (i % 13) as f32 * 0.01),
            (((i * 11 + 2) % n) as u32, 0.9),
        ]
    });
    let mut memory = Memory::from_lists(lists);
    (memory.alpha, memory.last_l, memory.decay) = (1.3, 3, 0.6);
    rec.model.memory = Some(memory);
    rec
}

fn pick(rng: &mut SplitMix64, n: usize) -> usize {
    rng.below_mod(n.max(1))
}

/// 1 to `most` random item ids.
fn ids(rng: &mut SplitMix64, n: usize, most: usize) -> Vec<String> {
    let count = 1 + pick(rng, most);
    (0..count).map(|_| format!("I{}", pick(rng, n))).collect()
}

/// A random request the shortlist can serve (no context, no diversity, `k ≤ 120`): its
/// history, options and the items of earlier shelves.
pub fn request(
    rng: &mut SplitMix64,
    rec: &Recommender,
) -> (Vec<HistoryEvent>, RecommendOptions, Vec<u32>) {
    let n = rec.n_items();
    let cats = &rec.metadata.categories;
    let kinds = [EventKind::View, EventKind::Cart, EventKind::Purchase];
    let len = 1 + pick(rng, 8);
    let history: Vec<HistoryEvent> = (0..len)
        .map(|j| HistoryEvent {
            item: pick(rng, n) as u32,
            kind: kinds[pick(rng, 3)],
            at: T0 + j as f64 * 600.0,
        })
        .collect();
    let coin = |rng: &mut SplitMix64, p: f32| rng.next_f32() < p;
    let mut o = RecommendOptions {
        k: [1, 5, 10, 20, 50, 120][pick(rng, 6)],
        exclude_seen: coin(rng, 0.7),
        allow_repurchase: coin(rng, 0.3),
        ..RecommendOptions::default()
    };
    if coin(rng, 0.4) {
        o.exclude = ids(rng, n, 5);
    }
    if coin(rng, 0.3) {
        o.basket = ids(rng, n, 3);
    }
    let mut filter = Filter::default();
    if coin(rng, 0.3) {
        filter.categories = (0..1 + pick(rng, 3))
            .map(|_| cats[pick(rng, cats.len())].clone())
            .collect();
    }
    if coin(rng, 0.2) {
        filter.exclude_categories = vec![cats[pick(rng, cats.len())].clone()];
    }
    if coin(rng, 0.3) {
        let lo = rng.next_f32() * 20.0;
        filter.price_min = Some(lo);
        if coin(rng, 0.5) {
            filter.price_max = Some(lo + rng.next_f32() * 15.0);
        }
    } else if coin(rng, 0.1) {
        filter.price_max = Some(rng.next_f32() * 10.0);
    }
    filter.new_only = coin(rng, 0.1);
    o.filter = filter;
    for _ in 0..pick(rng, 4) {
        let weight = (rng.next_f32() - 0.4) * 6.0;
        let by_ids = coin(rng, 0.5);
        o.boost.push(Boost {
            ids: if by_ids { ids(rng, n, 4) } else { Vec::new() },
            category: (!by_ids || coin(rng, 0.3)).then(|| cats[pick(rng, cats.len())].clone()),
            weight,
        });
    }
    if coin(rng, 0.3) {
        o.promote = Some(Promote {
            ids: ids(rng, n, 4),
            slots: pick(rng, 4),
        });
    }
    if coin(rng, 0.4) {
        o.new_items_boost = (rng.next_f32() - 0.3) * 4.0;
    }
    let shown = if coin(rng, 0.3) {
        (0..pick(rng, 12)).map(|_| pick(rng, n) as u32).collect()
    } else {
        Vec::new()
    };
    (history, o, shown)
}

/// Two result lists are the same: items, order, score bits and reasons.
pub fn assert_same(what: &str, got: &[Recommendation], want: &[Recommendation]) {
    let key = |r: &[Recommendation]| -> Vec<(u32, u32)> {
        r.iter().map(|x| (x.index, x.score.to_bits())).collect()
    };
    assert_eq!(key(got), key(want), "{what}: items or score bits differ");
    assert_eq!(got, want, "{what}: reasons or attributes differ");
}

/// How many of the checked requests exercised the sparse terms.
#[derive(Debug, Default, Clone, Copy)]
pub struct ShortlistTally {
    /// Lists holding a promoted item.
    pub promoted: usize,
    /// Requests with a boost.
    pub boosted: usize,
    /// Requests with a basket.
    pub basket: usize,
}

/// Uploads `rec`'s item attributes to `gpu`, then serves `cases` random requests (seed
/// `seed`) from its shortlist: each reads back
/// `12 · m · chunks + 4 · |S|` bytes (`m` = places after the promoted items), under the
/// `4n` of the full read-back; the GPU's shortlist equals the scalar reference over the
/// same GPU's logits; and the list equals `finish_page` over every logit bit for bit.
/// Shared by the native (lavapipe) and browser (SwiftShader) tests.
#[cfg(feature = "gpu")]
pub async fn check_gpu_shortlist(
    gpu: &vitrine::kernels::gpu::GpuScorer,
    rec: &Recommender,
    seed: u64,
    cases: usize,
) -> ShortlistTally {
    use vitrine::kernels::gpu::TOPK_CHUNK;
    use vitrine::kernels::shortlist::shortlist_reference;
    let n = rec.n_items();
    let attrs = rec.item_attributes();
    gpu.set_items(&attrs).expect("attributes fit");
    let chunks = n.div_ceil(TOPK_CHUNK as usize);
    let mut rng = SplitMix64::new(seed);
    let mut tally = ShortlistTally::default();
    for case in 0..cases {
        let (history, o, shown) = request(&mut rng, rec);
        let p = rec.prepare(&history, &o).expect("valid request");
        let plan = rec
            .plan_shortlist(&p, &shown)
            .expect("served by a shortlist");
        let q = p.query.as_ref().expect("a history gives a query");
        let before = gpu.bytes_read_back();
        let got = gpu.shortlist(q, &plan.request).await.expect("shortlist");
        let read = gpu.bytes_read_back() - before;
        let m = plan.request.per_chunk;
        let want_read = (12 * m * chunks + 4 * plan.request.sparse.len()) as u64;
        assert_eq!(read, want_read, "case {case}: bytes read back");
        assert!(read < 4 * n as u64, "case {case}: {read} bytes read back");
        let fast = rec
            .finish_shortlist(&p, &plan, &got)
            .unwrap_or_else(|e| panic!("case {case}: {e}"));
        let logits = gpu.scores(q).await.expect("scores");
        let reference = shortlist_reference(&logits, &attrs, &plan.request, TOPK_CHUNK as usize);
        assert_eq!(got, reference, "case {case}: GPU shortlist vs reference");
        let want = rec.finish_page(&p, &logits, &shown);
        assert_same(&format!("case {case} {o:?}"), &fast, &want);
        let promoted = vitrine::recommend::Reason::Promoted;
        tally.promoted += usize::from(fast.iter().any(|r| r.reasons.contains(&promoted)));
        tally.boosted += usize::from(!o.boost.is_empty());
        tally.basket += usize::from(!o.basket.is_empty());
    }
    tally
}
