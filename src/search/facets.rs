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

use std::collections::BTreeMap;

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
    let mut p: Vec<f32> = prices.iter().copied().filter(|x| x.is_finite()).collect();
    if p.is_empty() || bands < 2 {
        return Vec::new();
    }
    p.sort_by(f32::total_cmp);
    let mut edges: Vec<f32> = (1..bands).map(|i| p[i * p.len() / bands]).collect();
    edges.dedup();
    edges
}

/// Counts the facets of `docs` (the matching, eligible documents).
pub fn count(index: &SearchIndex, docs: &[u32], price: Option<&PriceFacet<'_>>) -> Facets {
    let mut facets = Facets::default();
    let mut per_cat: BTreeMap<u32, u32> = BTreeMap::new();
    for &d in docs {
        match index.doc_cat.get(d as usize) {
            Some(&c) if c != u32::MAX => *per_cat.entry(c).or_default() += 1,
            _ => facets.no_category += 1,
        }
    }
    facets.categories = per_cat
        .into_iter()
        .map(|(c, count)| CategoryCount {
            name: index.categories[c as usize].to_string(),
            count,
        })
        .collect();
    facets
        .categories
        .sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    if let Some(pf) = price {
        count_prices(&mut facets, docs, pf);
    }
    facets
}

/// Fills the price bands of `facets`.
fn count_prices(facets: &mut Facets, docs: &[u32], pf: &PriceFacet<'_>) {
    let mut edges: Vec<f32> = if pf.edges.is_empty() {
        quantile_edges(pf.prices, DEFAULT_PRICE_BANDS)
    } else {
        pf.edges.iter().copied().filter(|x| x.is_finite()).collect()
    };
    edges.sort_by(f32::total_cmp);
    edges.dedup();
    edges.truncate(MAX_PRICE_EDGES);
    let mut counts = vec![0u32; edges.len() + 1];
    for &d in docs {
        match pf.prices.get(d as usize) {
            Some(&p) if p.is_finite() => counts[edges.partition_point(|&e| e <= p)] += 1,
            _ => facets.no_price += 1,
        }
    }
    facets.price_bands = counts
        .into_iter()
        .enumerate()
        .map(|(i, count)| PriceBand {
            min: i.checked_sub(1).map(|j| edges[j]),
            max: edges.get(i).copied(),
            count,
        })
        .collect();
}
