//! Facet counts over the matching, eligible documents: per category and per price band.
//!
//! Price bands are half-open `[lo, hi)` intervals cut at ascending `edges`: `m` edges
//! give `m + 1` bands, the first unbounded below and the last unbounded above. The
//! caller passes the edges ([`PriceFacet::edges`]); with none, the edges are the
//! quartiles of the whole catalogue's prices ([`quantile_edges`] with
//! [`DEFAULT_PRICE_BANDS`] bands), so the bands do not move from query to query.
//! Non-finite edges are ignored, the rest sorted and deduplicated, at most
//! [`MAX_PRICE_EDGES`] kept. A document without a finite price counts in
//! [`Facets::no_price`], one without a category in [`Facets::no_category`].

use super::index::SearchIndex;

/// Bands used when the caller passes no edges (quartiles of the catalogue).
pub const DEFAULT_PRICE_BANDS: usize = 4;
/// Price edges kept (the rest are ignored).
pub const MAX_PRICE_EDGES: usize = 32;

/// Prices for the price facet.
#[derive(Clone, Copy, Debug, Default)]
pub struct PriceFacet<'a> {
    /// Price by doc id (missing or non-finite: no price).
    pub prices: &'a [f32],
    /// Ascending band edges; empty: quartiles of `prices`.
    pub edges: &'a [f32],
}

/// Documents of one category among the matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CategoryCount {
    /// Category name as given to the index.
    pub name: String,
    /// Matching eligible documents in it.
    pub count: u32,
}

/// Documents of one price band among the matches.
#[derive(Clone, Debug, PartialEq)]
pub struct PriceBand {
    /// Inclusive lower edge (`None`: unbounded).
    pub min: Option<f32>,
    /// Exclusive upper edge (`None`: unbounded).
    pub max: Option<f32>,
    /// Matching eligible documents with a price in the band.
    pub count: u32,
}

/// Facet counts of one search.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facets {
    /// Categories by count descending, then name.
    pub categories: Vec<CategoryCount>,
    /// Matching documents without a category.
    pub no_category: u32,
    /// Price bands in ascending order (empty when no prices were given).
    pub price_bands: Vec<PriceBand>,
    /// Matching documents without a finite price (0 when no prices were given).
    pub no_price: u32,
}

/// Cut points of `bands` equal-count bands of the finite `prices` (sorted, deduplicated).
pub fn quantile_edges(prices: &[f32], bands: usize) -> Vec<f32> {
    // The finite prices in `total_cmp` order, `p`, are never copied: each edge
    // `p[i · len / bands]` is an order statistic ([`crate::select`]).
    let finite = || prices.iter().copied().filter(|x| x.is_finite());
    let len = finite().count();
    if len == 0 || bands < 2 {
        return Vec::new();
    }
    let mut edges: Vec<f32> = (1..bands)
        .filter_map(|i| crate::select::kth_smallest(finite, len, i * len / bands))
        .collect();
    edges.dedup();
    edges
}

/// Counts the facets of `docs` (the matching, eligible documents).
pub fn count(index: &SearchIndex, docs: &[u32], price: Option<&PriceFacet<'_>>) -> Facets {
    let mut counter = Counter::new(index, price);
    for &d in docs {
        counter.add(d);
    }
    counter.finish()
}

/// Facet counts built one document at a time (during matching, so the matches need not
/// be collected first): dense counts per category id and per price band, `O(1)` and
/// `O(log bands)` per document, no allocation after [`Counter::new`] (which allocates
/// one `u32` per stored category, at most [`MAX_CATEGORIES`](super::MAX_CATEGORIES),
/// and one per band). [`Counter::finish`] gives exactly what [`count`] gives for the
/// same documents, in any order.
pub struct Counter<'i, 'p> {
    index: &'i SearchIndex,
    /// Matches per category id.
    per_cat: Vec<u32>,
    no_category: u32,
    /// Prices, cleaned band edges and counts per band (`None`: no price facet).
    price: Option<PriceCounts<'p>>,
}

/// The price half of a [`Counter`].
struct PriceCounts<'p> {
    prices: &'p [f32],
    edges: Vec<f32>,
    counts: Vec<u32>,
    no_price: u32,
}

impl<'i, 'p> Counter<'i, 'p> {
    /// An empty count over `index`'s categories and, when given, `price`'s bands.
    pub fn new(index: &'i SearchIndex, price: Option<&PriceFacet<'p>>) -> Self {
        Counter {
            index,
            per_cat: vec![0; index.categories.len()],
            no_category: 0,
            price: price.map(|pf| {
                let edges = band_edges(pf);
                PriceCounts {
                    prices: pf.prices,
                    counts: vec![0; edges.len() + 1],
                    edges,
                    no_price: 0,
                }
            }),
        }
    }

    /// Counts document `d`.
    pub fn add(&mut self, d: u32) {
        let cat = self.index.doc_cat.get(d as usize).copied();
        match cat.and_then(|c| self.per_cat.get_mut(c as usize)) {
            Some(n) => *n += 1,
            None => self.no_category += 1,
        }
        if let Some(pc) = &mut self.price {
            match pc.prices.get(d as usize) {
                Some(&p) if p.is_finite() => pc.counts[pc.edges.partition_point(|&e| e <= p)] += 1,
                _ => pc.no_price += 1,
            }
        }
    }

    /// The facets: categories with at least one match by count descending, then name;
    /// price bands ascending.
    pub fn finish(self) -> Facets {
        let mut facets = Facets {
            no_category: self.no_category,
            ..Facets::default()
        };
        facets.categories = (self.per_cat.iter().enumerate())
            .filter(|&(_, &count)| count > 0)
            .map(|(c, &count)| CategoryCount {
                name: self.index.categories[c].to_string(),
                count,
            })
            .collect();
        crate::sort::sort_by(&mut facets.categories, |a, b| {
            b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name))
        });
        if let Some(pc) = self.price {
            facets.no_price = pc.no_price;
            facets.price_bands = (pc.counts.into_iter().enumerate())
                .map(|(i, count)| PriceBand {
                    min: i.checked_sub(1).map(|j| pc.edges[j]),
                    max: pc.edges.get(i).copied(),
                    count,
                })
                .collect();
        }
        facets
    }
}

/// The band edges of `pf`: its finite edges sorted, deduplicated and capped, or the
/// catalogue's quartiles when it has none.
fn band_edges(pf: &PriceFacet<'_>) -> Vec<f32> {
    let mut edges: Vec<f32> = if pf.edges.is_empty() {
        quantile_edges(pf.prices, DEFAULT_PRICE_BANDS)
    } else {
        pf.edges.iter().copied().filter(|x| x.is_finite()).collect()
    };
    crate::sort::sort_by(&mut edges, f32::total_cmp);
    edges.dedup();
    edges.truncate(MAX_PRICE_EDGES);
    edges
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition: sort a copy of the finite prices, take `p[i · len / bands]`.
    fn sorted_edges(prices: &[f32], bands: usize) -> Vec<f32> {
        let mut p: Vec<f32> = prices.iter().copied().filter(|x| x.is_finite()).collect();
        if p.is_empty() || bands < 2 {
            return Vec::new();
        }
        p.sort_by(f32::total_cmp);
        let mut edges: Vec<f32> = (1..bands).map(|i| p[i * p.len() / bands]).collect();
        edges.dedup();
        edges
    }

    #[test]
    fn quantile_edges_are_the_sorted_prices_quantiles() {
        let mut rng = crate::rng::SplitMix64::new(5);
        for len in [0usize, 1, 2, 3, 7, 100, 5000] {
            let prices: Vec<f32> = (0..len)
                .map(|_| match rng.below(6) {
                    0 => f32::NAN,
                    1 => 0.0,
                    2 => -0.0,
                    3 => rng.below(4) as f32 * 2.5,
                    4 => f32::INFINITY,
                    _ => rng.below(100_000) as f32 / 100.0,
                })
                .collect();
            for bands in [0, 1, 2, DEFAULT_PRICE_BANDS, 10] {
                let (got, want) = (quantile_edges(&prices, bands), sorted_edges(&prices, bands));
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "len {len} bands {bands}");
            }
        }
    }
}
