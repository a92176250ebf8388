//! The model's "wide" part: a sparse item-to-item transition memory learned from the
//! training sequences, added to the deep part's logit (as in Wide & Deep).
//!
//! Why: the deep part scores `u · v_i` with `d`-dimensional vectors, a rank-`d`
//! factorisation of "what follows what". Store logs have sharp, high-rank item-to-item
//! patterns (items listed together on one invoice, a product and its matching refill)
//! that a rank-64 factorisation blurs; the memory keeps them exactly, for the top
//! `K` neighbours of every item, and serves "frequently bought together" directly.
//!
//! `m_i(history) = Σ_j decay^j · w(h_j → i)` over the last `last_l` history events `h_j`
//! (most recent first), and the model's logit becomes `deep_i + alpha · m_i`. The
//! weights are `w(a → b) = c(a, b) / (c(a) + shrink)` where `c(a, b)` counts `b` within
//! `window` events after `a` (weight `1/gap`) plus, at half weight, `b` within `window`
//! events before `a`; `c(a)` is the row total ([`Memory::build`]), or the neighbour lists
//! of the item-kNN tuned on validation ([`Memory::from_lists`]; when `vitrine train` tunes
//! baselines it tries both and keeps whichever blend validates better). After the deep part is trained, `alpha` and `last_l` are
//! chosen on validation NDCG@10 by the native trainer's blend search
//! (`crate::train::blend::search_blend`, not compiled to wasm), over a grid whose `decay`
//! is given (the tuned item-kNN's, else 0.5); no memory is kept unless a blend beats the
//! deep part alone.
use crate::history::HistoryEvent;

/// Top-`K` neighbour lists of every item (CSR) and the blend parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    /// CSR offsets into `items`/`weights`, length `n_items + 1`.
    pub offsets: Vec<u32>,
    /// Neighbour item per entry.
    pub items: Vec<u32>,
    /// Transition weight per entry.
    pub weights: Vec<f32>,
    /// Weight of the memory in the logit (0 disables it).
    pub alpha: f32,
    /// How many of the most recent history events read the memory.
    pub last_l: usize,
    /// Per-event decay going back in the history.
    pub decay: f32,
}

/// How [`Memory::build`] counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryParams {
    /// Events after (and before) an event that count as co-occurring.
    pub window: usize,
    /// Neighbours kept per item.
    pub top_k: usize,
    /// Added to the row total (damps rare items).
    pub shrink: f32,
}

impl Default for MemoryParams {
    fn default() -> Self {
        MemoryParams {
            window: 2,
            top_k: 50,
            shrink: 10.0,
        }
    }
}

impl Memory {
    /// Counts transitions in `sequences` over a catalog of `n_items` (events outside it
    /// are skipped). The blend starts disabled (`alpha = 0`).
    pub fn build(sequences: &[Vec<HistoryEvent>], n_items: usize, p: MemoryParams) -> Memory {
        let mut rows: Vec<std::collections::HashMap<u32, f32>> = vec![Default::default(); n_items];
        for seq in sequences {
            let items: Vec<u32> = seq
                .iter()
                .map(|e| e.item)
                .filter(|&i| (i as usize) < n_items)
                .collect();
            for (a, &ia) in items.iter().enumerate() {
                for gap in 1..=p.window {
                    if let Some(&ib) = items.get(a + gap) {
                        if ib != ia {
                            *rows[ia as usize].entry(ib).or_default() += 1.0 / gap as f32;
                            *rows[ib as usize].entry(ia).or_default() += 0.5 / gap as f32;
                        }
                    }
                }
            }
        }
        Memory::from_lists(rows.into_iter().map(|row| {
            let total: f32 = row.values().sum();
            let mut v: Vec<(u32, f32)> = row
                .into_iter()
                .map(|(j, c)| (j, c / (total + p.shrink)))
                .collect();
            v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            v.truncate(p.top_k);
            v
        }))
    }

    /// A memory from per-item neighbour lists (e.g. a tuned item-kNN's), blend disabled.
    pub fn from_lists<I, L>(lists: I) -> Memory
    where
        I: IntoIterator<Item = L>,
        L: IntoIterator<Item = (u32, f32)>,
    {
        let mut m = Memory {
            offsets: vec![0],
            items: Vec::new(),
            weights: Vec::new(),
            alpha: 0.0,
            last_l: 1,
            decay: 0.5,
        };
        for list in lists {
            for (j, w) in list {
                m.items.push(j);
                m.weights.push(w);
            }
            m.offsets.push(m.items.len() as u32);
        }
        m
    }

    /// Number of items covered.
    pub fn n_items(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// The neighbours of `item` with their weights.
    pub fn neighbours(&self, item: usize) -> impl Iterator<Item = (u32, f32)> + '_ {
        let (a, b) = match (self.offsets.get(item), self.offsets.get(item + 1)) {
            (Some(&a), Some(&b)) if a <= b && b as usize <= self.items.len() => {
                (a as usize, b as usize)
            }
            _ => (0, 0),
        };
        self.items[a..b]
            .iter()
            .copied()
            .zip(self.weights[a..b].iter().copied())
    }

    /// Adds `alpha · m_i(history)` to `logits` (no-op when `alpha` is 0).
    pub fn add_to(&self, history: &[HistoryEvent], logits: &mut [f32]) {
        self.for_each_term(history, |j, t| {
            if let Some(l) = logits.get_mut(j as usize) {
                *l += t;
            }
        });
    }

    /// Calls `f(i, alpha · decay^j · w(h_j → i))` for every term of `alpha · m(history)`,
    /// in the order [`Memory::add_to`] adds them (none when `alpha` is 0): summing an
    /// item's terms in this order gives its memory term bit for bit.
    pub fn for_each_term(&self, history: &[HistoryEvent], mut f: impl FnMut(u32, f32)) {
        if self.alpha == 0.0 {
            return;
        }
        let mut w = self.alpha;
        for e in history.iter().rev().take(self.last_l) {
            for (j, x) in self.neighbours(e.item as usize) {
                f(j, w * x);
            }
            w *= self.decay;
        }
    }

    /// Checks the CSR structure against the catalog size.
    pub fn validate(&self, n_items: usize) -> Result<(), String> {
        if self.offsets.len() != n_items + 1 || self.offsets[0] != 0 {
            return Err(format!(
                "memory offsets cover {} items, the catalog has {n_items}",
                self.n_items()
            ));
        }
        if self.offsets.windows(2).any(|w| w[0] > w[1])
            || self.offsets[n_items] as usize != self.items.len()
        {
            return Err("memory offsets are not a valid CSR index".into());
        }
        if self.items.len() != self.weights.len() {
            return Err("memory items and weights differ in length".into());
        }
        if self.items.iter().any(|&i| i as usize >= n_items) {
            return Err("memory refers to an item outside the catalog".into());
        }
        if self.weights.iter().any(|w| !w.is_finite())
            || !self.alpha.is_finite()
            || !self.decay.is_finite()
        {
            return Err("memory holds a non-finite value".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventKind;

    fn seq(items: &[u32]) -> Vec<HistoryEvent> {
        items
            .iter()
            .map(|&item| HistoryEvent {
                item,
                kind: EventKind::Purchase,
                at: 0.0,
            })
            .collect()
    }

    #[test]
    fn counts_follow_the_definition() {
        let m = Memory::build(
            &[seq(&[0, 1, 2]), seq(&[0, 1])],
            3,
            MemoryParams {
                window: 2,
                top_k: 10,
                shrink: 0.0,
            },
        );
        // Row 0: 1 follows twice at gap 1 (2.0), 2 follows at gap 2 (0.5). Total 2.5.
        let row0: Vec<(u32, f32)> = m.neighbours(0).collect();
        assert_eq!(row0, vec![(1, 2.0 / 2.5), (2, 0.5 / 2.5)]);
        // Row 2: 1 precedes at gap 1 (0.5), 0 precedes at gap 2 (0.25).
        let row2: Vec<(u32, f32)> = m.neighbours(2).collect();
        assert_eq!(row2, vec![(1, 0.5 / 0.75), (0, 0.25 / 0.75)]);
        assert!(m.validate(3).is_ok());
    }

    #[test]
    fn add_to_weights_recent_events_more() {
        let mut m = Memory::build(&[seq(&[0, 1]), seq(&[2, 3])], 4, MemoryParams::default());
        let mut l = vec![0.0; 4];
        m.add_to(&seq(&[0, 2]), &mut l);
        assert_eq!(l, vec![0.0; 4], "alpha 0 must be a no-op");
        m.alpha = 2.0;
        m.last_l = 2;
        m.decay = 0.5;
        m.add_to(&seq(&[0, 2]), &mut l);
        assert!(l[3] > l[1] && l[1] > 0.0, "{l:?}");
        assert!((l[3] / l[1] - 2.0).abs() < 1e-5);
    }

    #[test]
    fn validate_rejects_bad_csr() {
        let mut m = Memory::build(&[seq(&[0, 1])], 2, MemoryParams::default());
        m.items[0] = 7;
        assert!(m.validate(2).is_err());
        assert!(m.validate(3).is_err());
    }
}
