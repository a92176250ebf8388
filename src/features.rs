//! Item content features: category, normalised price and hashed title tokens.
//!
//! Built natively from a catalog at training time ([`build_features`]) and stored in the
//! weight file, so the browser reads them back without re-deriving anything. Content
//! features give items that have no interactions (new items) a usable vector: the
//! cold-start path. [`FeatureSettings`] (stored as [`Features::settings`]) holds
//! everything needed to compute the same features for an item added later
//! ([`FeatureSettings::encode`]). This module does no I/O and builds for wasm32.
//!
//! # Category
//! When any catalog item has an explicit category (a `category` column, an attribute
//! file), categories are the explicit ones and items without one get index 0
//! ("unknown"). Otherwise (Online Retail has no category column) each item's category is
//! derived from its title by [`derive_category`], the title's head noun:
//! 1. Upper-case the title and split it into words (letters, digits, `-` and `'` inside a
//!    word; `/`, `,`, `.` and other punctuation separate words). Cut the title at `WITH`
//!    ("JAM MAKING SET WITH JARS" → "JAM MAKING SET").
//! 2. Strip a leading pack prefix: a pack word (`SET`, `PACK`, `BOX`, `BAG`, `TUBE`, `JAR`,
//!    `TIN`, `PAIR`, `STRING`, `ROLL`, `BUNDLE`) followed by `OF` and/or a number
//!    ("SET OF 3 ...", "PACK OF 72 ...", "SET/6 ..."). The pack word is the answer only
//!    when nothing else is left.
//! 3. Singularise each word: `-IES` → `-Y`; `-SSES`, `-XES`, `-CHES`, `-SHES` drop `ES`;
//!    other words ending in `S` (but not `SS`, `US`, `IS`) drop the `S`.
//! 4. The head is the rightmost word that is in a list of product nouns (`HOLDER`, `BAG`,
//!    `BOX`, `MUG`, `TIN`, `CASE`, ...; see `PRODUCT_NOUNS` in the source, built from
//!    the most common title words of Online Retail). Online Retail titles put the noun
//!    first and colour/pattern after it ("JUMBO BAG RED RETROSPOT") or last ("WHITE
//!    HANGING HEART T-LIGHT HOLDER"); taking the rightmost *known noun* handles both.
//! 5. Otherwise, the rightmost word that is not a modifier (colours, sizes, pattern and
//!    theme words such as `RETROSPOT`, `DESIGN`, `VINTAGE`, `CHRISTMAS`, materials such as
//!    `WICKER`, `GLASS`, `METAL`, numbers, words
//!    with digits, one-letter words, `AND`/`OF`/`THE`...); otherwise the first word.
//! 6. A title without any letter gives [`UNKNOWN_CATEGORY`].
//!
//! Examples: "WHITE HANGING HEART T-LIGHT HOLDER" → `HOLDER`, "JUMBO BAG RED RETROSPOT" →
//! `BAG`, "SET OF 3 CAKE TINS PANTRY DESIGN" → `TIN`, "PACK OF 72 RETROSPOT CAKE CASES" →
//! `CASE`. Categories (derived or explicit) with fewer than
//! [`FeatureConfig::min_category_items`] items are merged into [`OTHER_CATEGORY`].
//! Category vocabulary: index 0 = `unknown`, index 1 = `other`, then the rest by item
//! count (descending), ties by name.
//!
//! # Price
//! `log(price)` for prices > 0, then min-max scaled to [0, 1] over the catalog's known
//! prices (0.5 for all when they are all equal); later items are clamped to [0, 1].
//! Unknown, zero, negative or non-finite prices give price 0 with `price_missing` = 1.
//!
//! # Title tokens
//! [`tokenize`] splits a title into lowercase alphanumeric words; [`hash_token`] maps a
//! token to a bucket with 64-bit FNV-1a (byte-exact, so identical on every platform and
//! in wasm). Bucket 0 is reserved (padding / "no token"): tokens map to
//! `1 + hash % (buckets - 1)`. Each item keeps its distinct buckets in title order, at
//! most [`FeatureConfig::max_title_tokens`].
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

#[cfg(not(target_arch = "wasm32"))]
use crate::data::ItemRecord;

/// Name of category index 0: items without a (known) category.
pub const UNKNOWN_CATEGORY: &str = "unknown";
/// Name of category index 1: categories too small to keep on their own.
pub const OTHER_CATEGORY: &str = "other";

/// Per-item content features for the whole catalog, in catalog order, in the compact form
/// the weight file stores and the item encoder reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemFeatureTable {
    /// Category index per item; 0 is "unknown category".
    pub category: Vec<u32>,
    /// Normalised price per item in [0, 1] (log, then min-max); 0 where unknown.
    pub price: Vec<f32>,
    /// 1.0 where the price is unknown, else 0.0 (missing values are explicit).
    pub price_missing: Vec<f32>,
    /// CSR offsets into `tokens` (length `n_items + 1`).
    pub token_offsets: Vec<u32>,
    /// Hashed title-token bucket ids, item by item.
    pub tokens: Vec<u32>,
}

impl ItemFeatureTable {
    /// Number of items.
    pub fn len(&self) -> usize {
        self.category.len()
    }

    /// True when the table holds no items.
    pub fn is_empty(&self) -> bool {
        self.category.is_empty()
    }

    /// The hashed title tokens of item `i`.
    pub fn tokens_of(&self, i: usize) -> &[u32] {
        &self.tokens[self.token_offsets[i] as usize..self.token_offsets[i + 1] as usize]
    }
}

/// How to build features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureConfig {
    /// Number of title-token hash buckets, bucket 0 included (reserved). At least 2.
    pub token_buckets: usize,
    /// Categories with fewer items than this are merged into "other".
    pub min_category_items: usize,
    /// Most distinct title tokens kept per item.
    pub max_title_tokens: usize,
    /// Use the items' explicit categories when any item has one (else always derive).
    pub use_explicit_categories: bool,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            token_buckets: 4096,
            min_category_items: 5,
            max_title_tokens: 16,
            use_explicit_categories: true,
        }
    }
}

/// Where categories came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CategorySource {
    /// The data's own category field.
    Explicit,
    /// [`derive_category`] on the title.
    TitleHeadNoun,
}

/// Everything needed to reproduce the features of an item, including one added after
/// training; serialised into [`Features::settings`] and the weight file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSettings {
    /// Hash buckets (bucket 0 reserved).
    pub token_buckets: usize,
    /// Token hash function name (`fnv1a64`).
    pub token_hash: String,
    /// Most tokens kept per item.
    pub max_title_tokens: usize,
    /// Smallest log(price) in the catalog (`None` when no price is known).
    pub price_log_min: Option<f32>,
    /// Largest log(price) in the catalog.
    pub price_log_max: Option<f32>,
    /// Where categories come from.
    pub category_source: CategorySource,
    /// Minimum items per category before merging into "other".
    pub min_category_items: usize,
    /// The category vocabulary (index 0 = unknown, 1 = other).
    pub categories: Vec<String>,
}

impl FeatureSettings {
    /// Normalised price and missing flag for a price, with this catalog's bounds.
    pub fn price_feature(&self, price: Option<f32>) -> (f32, f32) {
        normalize_price(price, self.price_log_min, self.price_log_max)
    }

    /// Category index of a category name or, when the source is the title, of the
    /// derived category; unknown names of a non-empty category map to "other".
    pub fn category_index(&self, title: &str, category: Option<&str>) -> u32 {
        let name = match self.category_source {
            CategorySource::Explicit => match category.map(str::trim) {
                Some(c) if !c.is_empty() => c.to_string(),
                _ => return 0,
            },
            CategorySource::TitleHeadNoun => derive_category(title),
        };
        if name == UNKNOWN_CATEGORY {
            return 0;
        }
        self.categories
            .iter()
            .position(|c| *c == name)
            .map_or(1, |i| i as u32)
    }

    /// The token buckets of a title.
    pub fn title_tokens(&self, title: &str) -> Vec<u32> {
        title_buckets(title, self.token_buckets, self.max_title_tokens)
    }

    /// All features of one item (category index, normalised price, price missing flag,
    /// token buckets): the cold-start path for items not in the table.
    pub fn encode(
        &self,
        title: &str,
        category: Option<&str>,
        price: Option<f32>,
    ) -> (u32, f32, f32, Vec<u32>) {
        let (p, missing) = self.price_feature(price);
        (
            self.category_index(title, category),
            p,
            missing,
            self.title_tokens(title),
        )
    }
}

/// The catalog's content features.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Category names; index 0 = "unknown", index 1 = "other".
    pub categories: Vec<String>,
    /// Per-item features in catalog order.
    pub table: ItemFeatureTable,
    /// [`FeatureSettings`] as JSON: everything needed to reproduce the features.
    pub settings: serde_json::Value,
}

impl Features {
    /// The settings, parsed back from [`Features::settings`].
    pub fn parsed_settings(&self) -> Result<FeatureSettings, serde_json::Error> {
        serde_json::from_value(self.settings.clone())
    }
}

/// Lowercase alphanumeric words of a title ("T-LIGHT HOLDER" → `["t", "light",
/// "holder"]`).
pub fn tokenize(title: &str) -> Vec<String> {
    title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// 64-bit FNV-1a of the token's UTF-8 bytes, mapped to a bucket in `1..buckets`
/// (bucket 0 is reserved; `buckets` below 2 is treated as 2).
pub fn hash_token(tok: &str, buckets: usize) -> u32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for &b in tok.as_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(PRIME);
    }
    let n = buckets.max(2) as u64 - 1;
    (1 + h % n) as u32
}

fn title_buckets(title: &str, buckets: usize, max_tokens: usize) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::new();
    for t in tokenize(title) {
        if out.len() >= max_tokens {
            break;
        }
        let b = hash_token(&t, buckets);
        if !out.contains(&b) {
            out.push(b);
        }
    }
    out
}

/// Normalised price in [0, 1] and the missing flag: `(log(p) - min) / (max - min)`,
/// clamped; `(0, 1)` when the price is unknown, not positive or not finite, or no bounds
/// are known; 0.5 when `min == max`.
pub fn normalize_price(
    price: Option<f32>,
    log_min: Option<f32>,
    log_max: Option<f32>,
) -> (f32, f32) {
    let (Some(p), Some(lo), Some(hi)) = (price, log_min, log_max) else {
        return (0.0, 1.0);
    };
    if !(p.is_finite() && p > 0.0) {
        return (0.0, 1.0);
    }
    if hi <= lo {
        return (0.5, 0.0);
    }
    (((p.ln() - lo) / (hi - lo)).clamp(0.0, 1.0), 0.0)
}

/// Words that lead a "pack of n" prefix.
#[rustfmt::skip]
const PACK_WORDS: &[&str] = &[
    "SET", "PACK", "BOX", "BAG", "TUBE", "JAR", "TIN", "PAIR", "STRING", "ROLL", "BUNDLE",
];

/// Product nouns (singular), from the most frequent title words of Online Retail.
#[rustfmt::skip]
const PRODUCT_NOUNS: &[&str] = &[
    "APRON", "BADGE", "BAG", "BALL", "BALLOON", "BANGLE", "BASKET", "BEAD", "BEAKER", "BELL",
    "BIN", "BLANKET", "BLOCK", "BOARD", "BOOK", "BOOKMARK", "BOTTLE", "BOWL", "BOX",
    "BRACELET", "BROOCH", "BUCKET", "BUNTING", "BUTTON", "CABINET", "CAKESTAND", "CALENDAR",
    "CAN", "CANDLE", "CANDLEHOLDER", "CANDLESTICK", "CARD", "CASE", "CHAIR", "CHALKBOARD",
    "CHARM", "CHEST", "CLIP", "CLOCK", "COASTER", "COMB", "CONTAINER", "COSY", "COVER",
    "CRAYON", "CUSHION", "CUP", "CURTAIN", "CUTLERY", "DECORATION", "DISH", "DISPENSER",
    "DOILY", "DOLL", "DOORMAT", "DOORSTOP", "DRAWER", "EARRING", "ENVELOPE", "ERASER", "FAN",
    "FLAG", "FLANNEL", "FRAME", "GAME", "GARLAND", "GLOVE", "HAIRCLIP", "HAMMOCK", "HANDBAG",
    "HANGER", "HOLDER", "HOOK", "HOTTIE", "INCENSE", "JAR", "JIGSAW", "JOURNAL", "JUG",
    "KEYRING", "KIT", "KNOB", "LAMP", "LAMPSHADE", "LANTERN", "LID", "LIGHT", "MAGNET",
    "MARKER", "MAT", "MATCH", "MIRROR", "MOBILE", "MUG", "NAPKIN", "NECKLACE", "NOTEBOOK",
    "ORGANISER", "ORNAMENT", "PAD", "PAN", "PAPER", "PARASOL", "PATCH", "PEG", "PEN",
    "PENCIL", "PENDANT", "PICTURE", "PIN", "PLACEMAT", "PLANTER", "PLAQUE", "PLATE", "POT",
    "POUFFE", "PURSE", "PUZZLE", "RACK", "RIBBON", "RING", "RULER", "SAUCER", "SCARF",
    "SHEET", "SHELF", "SIGN", "SKETCHBOOK", "SLATE", "SOAP", "SPOON", "STAMP", "STAND",
    "STICKER", "STOOL", "STRAW", "TABLECLOTH", "TAG", "TAPE", "TEAPOT", "TEASPOON",
    "THERMOMETER", "TIDY", "TIN", "TISSUE", "T-LIGHT", "TOWEL", "TOY", "TRAY", "TUMBLER",
    "UMBRELLA", "VASE", "WALLET", "WARMER", "WASHBAG", "WINDMILL", "WRAP", "WREATH",
];

/// Words that describe rather than name the product (skipped by the fallback rule).
#[rustfmt::skip]
const MODIFIERS: &[&str] = &[
    // colours and finishes
    "RED", "WHITE", "PINK", "BLUE", "GREEN", "BLACK", "CREAM", "IVORY", "GOLD", "SILVER",
    "PURPLE", "BROWN", "YELLOW", "ORANGE", "GREY", "GRAY", "LILAC", "TURQUOISE", "AQUA",
    "PASTEL", "COLOUR", "COLOURED", "MULTICOLOUR", "ASSORTED", "ASSTD", "CLEAR", "NATURAL",
    "AMBER", "COPPER", "ANTIQUE", "GLITTER", "FROSTED", "PAINTED",
    // materials
    "WICKER", "GLASS", "METAL", "WOODEN", "WOOD", "CERAMIC", "ENAMEL", "FELT", "ZINC",
    "CRYSTAL", "ACRYLIC", "WIRE", "COTTON", "LACE", "PORCELAIN", "TIN", "PAPER",
    // sizes and shapes
    "SMALL", "LARGE", "MEDIUM", "MINI", "JUMBO", "BIG", "GIANT", "TINY", "TALL", "ROUND",
    "SQUARE", "OVAL", "SIZE", "TIER", "TRIPLE", "SINGLE", "DOUBLE",
    // patterns, themes and design words
    "DESIGN", "RETROSPOT", "POLKADOT", "SPOTTY", "SPOT", "PAISLEY", "FLORAL", "VINTAGE",
    "RETRO", "STRIPE", "GINGHAM", "STYLE", "PRINT", "FINISH", "CHRISTMAS", "XMAS", "EASTER",
    "LONDON", "PANTRY", "SPACEBOY", "WOODLAND", "DOLLY", "GIRL", "REGENCY", "BAROQUE",
    "EDWARDIAN", "VICTORIAN", "FRENCH", "ENGLISH", "SCANDINAVIAN", "NEW", "CLASSIC",
    "TRADITIONAL", "DECORATIVE", "HANGING", "BAKELIKE",
    // function words
    "AND", "OF", "THE", "A", "AN", "IN", "ON", "FOR", "TO", "W", "S", "I", "YOUR", "OWN",
];

/// Simple English singular of an upper-case word (see the module doc, rule 3).
fn singular(w: &str) -> String {
    let n = w.len();
    if n > 4 && w.ends_with("IES") {
        return format!("{}Y", &w[..n - 3]);
    }
    for suf in ["SSES", "XES", "CHES", "SHES"] {
        if n > suf.len() + 1 && w.ends_with(suf) {
            return w[..n - 2].to_string();
        }
    }
    if n > 3 && w.ends_with('S') && !w.ends_with("SS") && !w.ends_with("US") && !w.ends_with("IS") {
        return w[..n - 1].to_string();
    }
    w.to_string()
}

fn is_number_like(w: &str) -> bool {
    w.chars().any(|c| c.is_ascii_digit())
}

/// Derives a category from a product title: its head noun, upper case and singular
/// (rules in the module doc). Returns [`UNKNOWN_CATEGORY`] for titles without letters.
pub fn derive_category(title: &str) -> String {
    let upper = title.to_uppercase();
    let mut words: Vec<&str> = upper
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '\''))
        .map(|w| w.trim_matches(|c| c == '-' || c == '\''))
        .filter(|w| !w.is_empty())
        .collect();
    if !words.iter().any(|w| w.chars().any(char::is_alphabetic)) {
        return UNKNOWN_CATEGORY.to_string();
    }
    if let Some(p) = words.iter().position(|w| *w == "WITH") {
        if p > 0 {
            words.truncate(p);
        }
    }
    // Pack prefix.
    let mut pack: Option<&str> = None;
    if words.len() > 1 && PACK_WORDS.contains(&words[0]) {
        let mut k = 1;
        if words.get(k) == Some(&"OF") {
            k += 1;
        }
        while words
            .get(k)
            .is_some_and(|w| w.chars().all(|c| c.is_ascii_digit()))
        {
            k += 1;
        }
        if k > 1 && k < words.len() {
            pack = Some(words[0]);
            words.drain(..k);
        }
    }
    let sing: Vec<String> = words.iter().map(|w| singular(w)).collect();
    if let Some(head) = sing
        .iter()
        .rev()
        .find(|w| PRODUCT_NOUNS.contains(&w.as_str()))
    {
        return head.clone();
    }
    let content = |w: &&String| {
        w.chars().filter(|c| c.is_alphabetic()).count() > 1
            && !is_number_like(w)
            && !MODIFIERS.contains(&w.as_str())
    };
    if let Some(head) = sing.iter().rev().find(content) {
        return head.clone();
    }
    if let Some(p) = pack {
        return singular(p);
    }
    sing.iter()
        .find(|w| w.chars().any(char::is_alphabetic))
        .cloned()
        .unwrap_or_else(|| UNKNOWN_CATEGORY.to_string())
}

/// The input [`build_features_from`] needs per item (so that wasm builds, which have no
/// `data` module, can use it too).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ItemAttrs<'a> {
    /// Display title.
    pub title: &'a str,
    /// Explicit category, when the data has one.
    pub category: Option<&'a str>,
    /// Price, when known.
    pub price: Option<f32>,
}

/// Builds the catalog's features from loaded items (native; see [`build_features_from`]).
#[cfg(not(target_arch = "wasm32"))]
pub fn build_features(items: &[ItemRecord], cfg: &FeatureConfig) -> Features {
    let attrs: Vec<ItemAttrs<'_>> = items
        .iter()
        .map(|it| ItemAttrs {
            title: &it.title,
            category: it.category.as_deref(),
            price: it.price,
        })
        .collect();
    build_features_from(&attrs, cfg)
}

/// Builds the catalog's features: categories, normalised prices, hashed title tokens,
/// and the settings that reproduce them (rules in the module doc).
pub fn build_features_from(items: &[ItemAttrs<'_>], cfg: &FeatureConfig) -> Features {
    let buckets = cfg.token_buckets.max(2);
    let explicit = cfg.use_explicit_categories
        && items
            .iter()
            .any(|it| it.category.is_some_and(|c| !c.trim().is_empty()));
    let raw = raw_categories(items, explicit);
    let categories = category_vocabulary(&raw, cfg.min_category_items);
    let category = category_indices(&raw, &categories);
    let prices = PriceFeatures::of(items);
    let (token_offsets, tokens) = token_table(items, buckets, cfg.max_title_tokens);
    let settings = FeatureSettings {
        token_buckets: buckets,
        token_hash: "fnv1a64".into(),
        max_title_tokens: cfg.max_title_tokens,
        price_log_min: prices.log_min,
        price_log_max: prices.log_max,
        category_source: if explicit {
            CategorySource::Explicit
        } else {
            CategorySource::TitleHeadNoun
        },
        min_category_items: cfg.min_category_items,
        categories: categories.clone(),
    };
    Features {
        categories,
        table: ItemFeatureTable {
            category,
            price: prices.price,
            price_missing: prices.missing,
            token_offsets,
            tokens,
        },
        settings: serde_json::to_value(&settings).unwrap_or(serde_json::Value::Null),
    }
}

/// Each item's category name before merging (`None` = unknown): the trimmed explicit
/// category when `explicit`, else [`derive_category`] of the title.
fn raw_categories(items: &[ItemAttrs<'_>], explicit: bool) -> Vec<Option<String>> {
    items
        .iter()
        .map(|it| {
            if explicit {
                it.category
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
            } else {
                Some(derive_category(it.title)).filter(|c| c != UNKNOWN_CATEGORY)
            }
        })
        .collect()
}

/// The category vocabulary: `unknown`, `other`, then every category with at least
/// `min_items` items by count (descending), ties by name.
fn category_vocabulary(raw: &[Option<String>], min_items: usize) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in raw.iter().flatten() {
        *counts.entry(c.as_str()).or_insert(0) += 1;
    }
    let mut kept: Vec<(&str, usize)> = counts
        .into_iter()
        .filter(|(name, n)| *n >= min_items && *name != UNKNOWN_CATEGORY && *name != OTHER_CATEGORY)
        .collect();
    kept.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut categories = vec![UNKNOWN_CATEGORY.to_string(), OTHER_CATEGORY.to_string()];
    categories.extend(kept.iter().map(|(n, _)| n.to_string()));
    categories
}

/// Each item's index in `categories`: 0 when unknown, 1 (`other`) when merged away.
fn category_indices(raw: &[Option<String>], categories: &[String]) -> Vec<u32> {
    let index: HashMap<&str, u32> = categories
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i as u32))
        .collect();
    raw.iter()
        .map(|c| match c {
            None => 0,
            Some(c) => index.get(c.as_str()).copied().unwrap_or(1),
        })
        .collect()
}

/// The catalog's price bounds and every item's normalised price and missing flag.
struct PriceFeatures {
    /// Smallest log(price) over known positive prices.
    log_min: Option<f32>,
    /// Largest log(price) over known positive prices.
    log_max: Option<f32>,
    /// [`normalize_price`] per item.
    price: Vec<f32>,
    /// Its missing flag per item.
    missing: Vec<f32>,
}

impl PriceFeatures {
    fn of(items: &[ItemAttrs<'_>]) -> PriceFeatures {
        let logs: Vec<f32> = items
            .iter()
            .filter_map(|it| it.price)
            .filter(|p| p.is_finite() && *p > 0.0)
            .map(f32::ln)
            .collect();
        let lo = logs.iter().copied().reduce(f32::min);
        let hi = logs.iter().copied().reduce(f32::max);
        let (price, missing) = items
            .iter()
            .map(|it| normalize_price(it.price, lo, hi))
            .unzip();
        PriceFeatures {
            log_min: lo,
            log_max: hi,
            price,
            missing,
        }
    }
}

/// The items' title-token buckets in CSR form: `(offsets [n + 1], buckets)`.
fn token_table(items: &[ItemAttrs<'_>], buckets: usize, max_tokens: usize) -> (Vec<u32>, Vec<u32>) {
    let mut token_offsets = Vec::with_capacity(items.len() + 1);
    let mut tokens = Vec::new();
    token_offsets.push(0u32);
    for it in items {
        tokens.extend(title_buckets(it.title, buckets, max_tokens));
        token_offsets.push(tokens.len() as u32);
    }
    (token_offsets, tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn features_sha(items: &[ItemAttrs<'_>], cfg: &FeatureConfig) -> String {
        let f = build_features_from(items, cfg);
        crate::format::to_hex(&Sha256::digest(format!("{f:?}").as_bytes()))
    }

    /// Every output of [`build_features_from`] (vocabulary, table, settings) is that of
    /// the builder before it was split into parts, with derived and explicit categories.
    #[test]
    fn built_features_are_unchanged() {
        let titles = [
            "WHITE HANGING HEART T-LIGHT HOLDER",
            "JUMBO BAG RED RETROSPOT",
            "SET OF 3 CAKE TINS PANTRY DESIGN",
            "PACK OF 72 RETROSPOT CAKE CASES",
            "RED RETROSPOT CHARLOTTE BAG",
            "LUNCH BAG PINK POLKADOT",
            "12 PENCILS TALL TUBE",
            "???",
        ];
        let prices = [
            Some(2.55),
            Some(1.95),
            None,
            Some(0.55),
            Some(-1.0),
            Some(0.85),
            Some(f32::NAN),
            Some(2.55),
        ];
        let cats = [
            Some("home"),
            None,
            Some(" "),
            Some("kitchen"),
            Some("home"),
            Some("bags"),
            Some("other"),
            Some("home"),
        ];
        let derived: Vec<ItemAttrs<'_>> = titles
            .iter()
            .zip(prices)
            .map(|(&title, price)| ItemAttrs {
                title,
                category: None,
                price,
            })
            .collect();
        let explicit: Vec<ItemAttrs<'_>> = derived
            .iter()
            .zip(cats)
            .map(|(it, category)| ItemAttrs { category, ..*it })
            .collect();
        let cfg = FeatureConfig {
            token_buckets: 64,
            min_category_items: 2,
            max_title_tokens: 3,
            use_explicit_categories: true,
        };
        let got = [
            features_sha(&derived, &cfg),
            features_sha(&explicit, &cfg),
            features_sha(&explicit, &FeatureConfig::default()),
            features_sha(&[], &cfg),
        ];
        assert_eq!(
            got,
            [
                "93814c41ae90e548751262c7dd73bfe80722eb9995ff551b46499044b97ab038",
                "26ab004e8330d8b2f8327df0d3862b2356e4b5699c430d6cb5bb4c7b928a30bb",
                "2e03da854573fbfe3aa11c1fbcc4fcc244ed422d782f5922959503b6f6d8f4ea",
                "203474e65d0e7ae6dd170407b8ec8f9b29de0289b321f171da5160ba0b72f565",
            ]
        );
    }
}
