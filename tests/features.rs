//! Feature tests: the title → category rule on real Online Retail titles, price
//! normalisation and missing values, token hashing, cold items.
use vitrine::features::{
    build_features_from, derive_category, hash_token, normalize_price, tokenize, CategorySource,
    FeatureConfig, FeatureSettings, ItemAttrs, OTHER_CATEGORY, UNKNOWN_CATEGORY,
};

#[test]
fn category_rule_on_real_titles() {
    let table = [
        ("WHITE HANGING HEART T-LIGHT HOLDER", "HOLDER"),
        ("JUMBO BAG RED RETROSPOT", "BAG"),
        ("SET OF 3 CAKE TINS PANTRY DESIGN", "TIN"),
        ("PACK OF 72 RETROSPOT CAKE CASES", "CASE"),
        ("WHITE METAL LANTERN", "LANTERN"),
        ("CREAM CUPID HEARTS COAT HANGER", "HANGER"),
        ("KNITTED UNION FLAG HOT WATER BOTTLE", "BOTTLE"),
        ("LUNCH BAG SPACEBOY DESIGN", "BAG"),
        ("ALARM CLOCK BAKELIKE RED", "CLOCK"),
        ("HAND WARMER UNION JACK", "WARMER"),
        ("PAPER CHAIN KIT 50'S CHRISTMAS", "KIT"),
        ("SET 7 BABUSHKA NESTING BOXES", "BOX"),
        ("JAM MAKING SET WITH JARS", "SET"),
        ("REGENCY CAKESTAND 3 TIER", "CAKESTAND"),
        ("60 TEATIME FAIRY CAKE CASES", "CASE"),
        ("SET/6 RED SPOTTY PAPER CUPS", "CUP"),
        ("PARTY BUNTING", "BUNTING"),
        ("ASSORTED COLOUR BIRD ORNAMENT", "ORNAMENT"),
        ("NATURAL SLATE HEART CHALKBOARD", "CHALKBOARD"),
        ("PACK OF 12 PINK PAISLEY TISSUES", "TISSUE"),
        ("HEART OF WICKER SMALL", "HEART"),
        ("DOORMAT HOME SWEET HOME BLUE", "DOORMAT"),
        ("SMALL GLASS HEART TRINKET POT", "POT"),
        ("RED WOOLLY HOTTIE WHITE HEART.", "HOTTIE"),
        ("SET OF 4 PANTRY JELLY MOULDS", "MOULD"),
        ("GLASS STAR FROSTED T-LIGHT HOLDER", "HOLDER"),
        ("STRAWBERRY CERAMIC TRINKET BOX", "BOX"),
        ("FELTCRAFT 6 FLOWER FRIENDS", "FRIEND"),
        ("6 RIBBONS RUSTIC CHARM", "CHARM"),
        ("SET OF 6 SOLDIER SKITTLES", "SKITTLE"),
        ("BOX OF VINTAGE JIGSAW BLOCKS", "BLOCK"),
        ("ROSES REGENCY TEACUP AND SAUCER", "SAUCER"),
        ("PINK DOILY", "DOILY"),
        ("DOILIES", "DOILY"),
        ("", UNKNOWN_CATEGORY),
        ("12345", UNKNOWN_CATEGORY),
        ("SET OF 3", "SET"),
        ("lowercase storage jar", "JAR"),
    ];
    let mut wrong = Vec::new();
    for (title, want) in table {
        let got = derive_category(title);
        if got != want {
            wrong.push(format!("{title:?}: got {got}, want {want}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn item<'a>(title: &'a str, category: Option<&'a str>, price: Option<f32>) -> ItemAttrs<'a> {
    ItemAttrs {
        title,
        category,
        price,
    }
}

#[test]
fn price_normalisation_bounds_and_missing() {
    let items = [
        item("A MUG", None, Some(1.0)),
        item("B MUG", None, Some(100.0)),
        item("C MUG", None, Some(10.0)),
        item("D MUG", None, None),
        item("E MUG", None, Some(0.0)),
        item("F MUG", None, Some(f32::NAN)),
        item("G MUG", None, Some(-3.0)),
    ];
    let f = build_features_from(&items, &FeatureConfig::default());
    let t = &f.table;
    assert_eq!(t.price[0], 0.0);
    assert_eq!(t.price[1], 1.0);
    assert!((t.price[2] - 0.5).abs() < 1e-6, "log scale: {}", t.price[2]);
    assert_eq!(&t.price_missing[..3], &[0.0, 0.0, 0.0]);
    for i in 3..7 {
        assert_eq!((t.price[i], t.price_missing[i]), (0.0, 1.0), "item {i}");
    }
    assert!(t.price.iter().all(|p| (0.0..=1.0).contains(p)));
    let s: FeatureSettings = f.parsed_settings().unwrap();
    assert!((s.price_log_min.unwrap() - 0.0).abs() < 1e-6);
    assert!((s.price_log_max.unwrap() - 100f32.ln()).abs() < 1e-5);
    // A later item outside the range is clamped; equal bounds give 0.5.
    assert_eq!(s.price_feature(Some(1000.0)), (1.0, 0.0));
    assert_eq!(s.price_feature(Some(0.01)), (0.0, 0.0));
    assert_eq!(s.price_feature(None), (0.0, 1.0));
    assert_eq!(normalize_price(Some(5.0), Some(1.0), Some(1.0)), (0.5, 0.0));
    assert_eq!(normalize_price(Some(5.0), None, None), (0.0, 1.0));
    // No known prices at all: every item is missing.
    let f = build_features_from(&[item("X", None, None)], &FeatureConfig::default());
    assert_eq!(f.table.price_missing, vec![1.0]);
}

#[test]
fn token_hashing_is_deterministic_and_reserves_zero() {
    assert_eq!(
        tokenize("WHITE HANGING HEART T-LIGHT HOLDER"),
        vec!["white", "hanging", "heart", "t", "light", "holder"]
    );
    assert_eq!(
        tokenize("Café, 3\"x5\" Frame!"),
        vec!["café", "3", "x5", "frame"]
    );
    // Published FNV-1a 64 test vectors: "" -> cbf29ce484222325, "a" -> af63dc4c8601ec8c.
    assert_eq!(
        hash_token("", 1 << 20),
        (1 + 0xcbf2_9ce4_8422_2325u64 % ((1 << 20) - 1)) as u32
    );
    assert_eq!(
        hash_token("a", 4096),
        (1 + 0xaf63_dc4c_8601_ec8cu64 % 4095) as u32
    );
    assert_eq!(hash_token("holder", 4096), hash_token("holder", 4096));
    assert_ne!(hash_token("holder", 4096), hash_token("holders", 4096));
    for t in ["a", "b", "heart", "light", "x"] {
        for b in [0usize, 1, 2, 3, 4096] {
            let h = hash_token(t, b);
            assert!(h >= 1 && (h as usize) < b.max(2), "{t} {b} {h}");
        }
    }
    let f = build_features_from(
        &[item("RED RED HEART", None, None), item("", None, None)],
        &FeatureConfig::default(),
    );
    // Duplicate words hash once; empty titles have no tokens.
    assert_eq!(
        f.table.tokens_of(0),
        &[hash_token("red", 4096), hash_token("heart", 4096)]
    );
    assert!(f.table.tokens_of(1).is_empty());
    assert_eq!(f.table.token_offsets, vec![0, 2, 2]);
}

#[test]
fn categories_derived_merged_and_explicit() {
    let titles = [
        "JUMBO BAG RED RETROSPOT",
        "LUNCH BAG SPACEBOY DESIGN",
        "JUMBO BAG PINK POLKADOT",
        "WHITE HANGING HEART T-LIGHT HOLDER",
        "GLASS STAR FROSTED T-LIGHT HOLDER",
        "WHITE METAL LANTERN",
        "",
    ];
    let items: Vec<_> = titles.iter().map(|t| item(t, None, None)).collect();
    let cfg = FeatureConfig {
        min_category_items: 2,
        ..FeatureConfig::default()
    };
    let f = build_features_from(&items, &cfg);
    assert_eq!(
        f.categories,
        vec![UNKNOWN_CATEGORY, OTHER_CATEGORY, "BAG", "HOLDER"]
    );
    assert_eq!(f.table.category, vec![2, 2, 2, 3, 3, 1, 0]);
    let s = f.parsed_settings().unwrap();
    assert_eq!(s.category_source, CategorySource::TitleHeadNoun);
    assert_eq!(s.category_index("RECYCLING BAG RETROSPOT", None), 2);
    assert_eq!(s.category_index("CERAMIC MUG", None), 1);

    // Explicit categories win when the data has them; items without one are unknown.
    let items = [
        item("A", Some("Toys"), None),
        item("B", Some(" Toys "), None),
        item("C", Some("Home"), None),
        item("JUMBO BAG RED RETROSPOT", None, None),
    ];
    let f = build_features_from(
        &items,
        &FeatureConfig {
            min_category_items: 1,
            ..FeatureConfig::default()
        },
    );
    assert_eq!(
        f.categories,
        vec![UNKNOWN_CATEGORY, OTHER_CATEGORY, "Toys", "Home"]
    );
    assert_eq!(f.table.category, vec![2, 2, 3, 0]);
    let s = f.parsed_settings().unwrap();
    assert_eq!(s.category_source, CategorySource::Explicit);
    assert_eq!(s.category_index("x", Some("Home")), 3);
    assert_eq!(s.category_index("x", Some("Garden")), 1);
    assert_eq!(s.category_index("x", None), 0);
}

#[test]
fn cold_items_have_content_features() {
    // Features depend on content only: a brand-new item gets the same features whether
    // it is in the table or encoded later from the stored settings.
    let items = [
        item("JUMBO BAG RED RETROSPOT", None, Some(2.0)),
        item("LUNCH BAG SPACEBOY DESIGN", None, Some(1.65)),
        item("JUMBO BAG PINK POLKADOT", None, Some(2.08)),
        item("NEW JUMBO BAG VINTAGE LEAF", None, Some(1.95)),
    ];
    let f = build_features_from(
        &items,
        &FeatureConfig {
            min_category_items: 2,
            ..FeatureConfig::default()
        },
    );
    let s = f.parsed_settings().unwrap();
    let t = &f.table;
    assert_eq!(t.len(), 4);
    let (cat, price, missing, toks) = s.encode(items[3].title, None, items[3].price);
    assert_eq!(cat, t.category[3]);
    assert_ne!(cat, 0);
    assert_eq!(price, t.price[3]);
    assert_eq!(missing, 0.0);
    assert_eq!(toks, t.tokens_of(3));
    assert!(!toks.is_empty());
    assert!(toks
        .iter()
        .all(|&b| b > 0 && (b as usize) < s.token_buckets));
    // Settings survive a JSON round trip.
    let text = serde_json::to_string(&f.settings).unwrap();
    let back: FeatureSettings = serde_json::from_str(&text).unwrap();
    assert_eq!(back, s);
}
