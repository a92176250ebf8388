//! Personalised re-rank: blend the text score with the recommender's score.

use super::query::Hit;

/// Re-ranks `hits` by `score = (1 − w)·text_score + w·model_norm`, where `w` is
/// `weight` clamped to [0, 1] (NaN: 0) and `model_norm` is the model's score of the
/// hit's document min–max normalised over these hits (NaN, missing or out-of-range
/// scores count as the minimum; all equal: 0). The sort is stable, so with `w = 0`, or
/// without `model_scores`, the order is exactly the text order and `score` equals
/// `text_score`.
///
/// `model_scores` is indexed by doc id (the recommender's score of every item). Call
/// [`search`](super::search) with `k` = the candidate pool to re-rank, then keep the top.
pub fn personalize(hits: Vec<Hit>, model_scores: Option<&[f32]>, weight: f32) -> Vec<Hit> {
    let per_hit: Option<Vec<f32>> = model_scores.map(|model| {
        (hits.iter())
            .map(|h| model.get(h.doc as usize).copied().unwrap_or(f32::NAN))
            .collect()
    });
    personalize_hits(hits, per_hit.as_deref(), weight)
}

/// [`personalize`] with the model's scores given per hit, `hit_scores[j]` for `hits[j]`
/// (a scorer that computed only the candidate pool).
pub fn personalize_hits(mut hits: Vec<Hit>, hit_scores: Option<&[f32]>, weight: f32) -> Vec<Hit> {
    let w = if weight.is_nan() {
        0.0
    } else {
        weight.clamp(0.0, 1.0)
    };
    let Some(model) = hit_scores.filter(|_| w > 0.0) else {
        for h in &mut hits {
            h.score = h.text_score;
        }
        return hits;
    };
    let raw: Vec<Option<f32>> = (0..hits.len())
        .map(|j| model.get(j).copied().filter(|s| s.is_finite()))
        .collect();
    let lo = raw.iter().flatten().copied().fold(f32::INFINITY, f32::min);
    let hi = raw
        .iter()
        .flatten()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    for (h, m) in hits.iter_mut().zip(raw) {
        let norm = match m {
            Some(s) if hi > lo => (s - lo) / (hi - lo),
            _ => 0.0,
        };
        h.score = (1.0 - w) * h.text_score + w * norm;
    }
    crate::sort::sort_by(&mut hits, |a, b| b.score.total_cmp(&a.score));
    hits
}
