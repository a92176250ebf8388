//! Option checking and resolution shared by [`Recommender::prepare`] (strict: every
//! problem is an error) and [`Recommender::finish`] (lenient: unknown ids and names are
//! skipped, so it never fails).
use super::blend::ResolvedBoost;
use super::eligibility::ResolvedFilter;
use super::{RecommendError, RecommendOptions, Recommender, MAX_K};

/// Options with every id and category name resolved to catalog indices.
#[derive(Debug, Default)]
pub(super) struct Resolved {
    /// The context item.
    pub context: Option<u32>,
    /// The basket items.
    pub basket: Vec<u32>,
    /// Excluded items.
    pub exclude: Vec<u32>,
    /// The attribute filter.
    pub filter: ResolvedFilter,
    /// The boosts, in request order.
    pub boosts: Vec<ResolvedBoost>,
    /// Promoted items, in request order.
    pub promote: Vec<u32>,
}

impl Resolved {
    /// The items a recommendation never returns: `exclude`, the context and the basket.
    pub fn banned(&self) -> Vec<u32> {
        let mut out = self.exclude.clone();
        out.extend(self.context);
        out.extend_from_slice(&self.basket);
        out
    }
}

impl Recommender {
    /// Resolves ids and category names. `strict`: unknown ones are errors; otherwise
    /// they are skipped (used by [`Recommender::finish`], which must not fail).
    pub(super) fn resolve(
        &self,
        o: &RecommendOptions,
        strict: bool,
    ) -> Result<Resolved, RecommendError> {
        // `field`: the option's name; `indexed`: whether its ids are an array (`[j]`).
        let items = |ids: &mut dyn Iterator<Item = &String>,
                     field: &str,
                     indexed: bool|
         -> Result<Vec<u32>, RecommendError> {
            let mut out = Vec::new();
            for (j, id) in ids.enumerate() {
                match self.item_index(id) {
                    Some(i) => out.push(i),
                    None if strict => {
                        return Err(RecommendError::UnknownOptionItem {
                            field: if indexed {
                                format!("{field}[{j}]")
                            } else {
                                field.to_string()
                            },
                            id: id.clone(),
                        })
                    }
                    None => {}
                }
            }
            Ok(out)
        };
        let context = items(&mut o.context.iter(), "context", false)?
            .first()
            .copied();
        let basket = items(&mut o.basket.iter(), "basket", true)?;
        let exclude = items(&mut o.exclude.iter(), "exclude", true)?;
        let filter = ResolvedFilter::resolve(self, &o.filter, strict)?;
        let boosts = o
            .boost
            .iter()
            .enumerate()
            .map(|(j, b)| ResolvedBoost::resolve(self, b, j, strict))
            .collect::<Result<Vec<_>, _>>()?;
        let promote = match &o.promote {
            Some(p) => items(&mut p.ids.iter(), "promote.ids", true)?,
            None => Vec::new(),
        };
        Ok(Resolved {
            context,
            basket,
            exclude,
            filter,
            boosts,
            promote,
        })
    }

    /// Range and consistency checks on the numeric options.
    pub(super) fn validate_numbers(o: &RecommendOptions) -> Result<(), RecommendError> {
        let invalid = |m: String| Err(RecommendError::InvalidOption(m));
        if o.k == 0 || o.k > MAX_K {
            return invalid(format!("k must be between 1 and {MAX_K}, got {}", o.k));
        }
        if !(o.diversity.is_finite() && (0.0..=1.0).contains(&o.diversity)) {
            return invalid(format!(
                "diversity must be between 0 and 1, got {}",
                o.diversity
            ));
        }
        if !o.new_items_boost.is_finite() {
            return invalid(format!(
                "newItemsBoost must be a finite number, got {}",
                o.new_items_boost
            ));
        }
        if let Some(now) = o.now {
            if !now.is_finite() {
                return invalid(format!("now must be a finite number, got {now}"));
            }
        }
        for (name, v) in [
            ("filter.priceMin", o.filter.price_min),
            ("filter.priceMax", o.filter.price_max),
        ] {
            if let Some(v) = v {
                if !v.is_finite() {
                    return invalid(format!("{name} must be a finite number, got {v}"));
                }
            }
        }
        if let (Some(lo), Some(hi)) = (o.filter.price_min, o.filter.price_max) {
            if lo > hi {
                return invalid(format!(
                    "filter.priceMin ({lo}) is greater than filter.priceMax ({hi})"
                ));
            }
        }
        for (j, b) in o.boost.iter().enumerate() {
            if !b.weight.is_finite() {
                return invalid(format!(
                    "boost[{j}].weight must be a finite number, got {}",
                    b.weight
                ));
            }
            if b.ids.is_empty() && b.category.is_none() {
                return invalid(format!("boost[{j}] names neither ids nor a category"));
            }
        }
        Ok(())
    }
}
