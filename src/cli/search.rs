//! `vitrine search` (one query, the browser's `search()`) and `vitrine search-eval` (the
//! offline quality proxy of product search).
//!
//! # The proxy (`search-eval`)
//! For each held-out next purchase — the leave-last-out test targets, and the validation
//! targets for tuning — a query is made from the target's title: one or two consecutive
//! title words (which length is drawn first, the other tried when none qualifies), each of
//! at least [`MIN_WORD_CHARS`] characters, that match at least `--min-matches` catalogue
//! items (every word but the last equals a title word, the last prefixes one), and a
//! variant with one random edit (substitution, deletion, insertion, adjacent
//! transposition) in a word of ≥ 4 letters. The shopper's history is the case's history.
//! A one-letter word is left out: the tokeniser indexes it (`7`, the `t` of `T-LIGHT`),
//! but as a prefix it matches a large part of the catalogue, which no shopper types.
//! With `rank` the target's 1-based position in the top [`EVAL_K`]:
//!
//! ```text
//! MRR      = mean(1/rank)             (0 beyond EVAL_K)
//! HR@10    = mean[rank ≤ 10]
//! NDCG@10  = mean(1/log2(rank + 1))   (rank ≤ 10, else 0)
//! ```
//!
//! reported for text-only search (weight 0) and personalised search (the chosen weight),
//! clean and typo. Deterministic under `--seed` (SplitMix64, modulo rule).
//!
//! `--write-queries DIR` writes the same queries for `bench/search/` (its README has the
//! format): the catalogue, and per query its shopper's history before the target (the
//! last [`history_cap`] events: what the model reads) and the target's rank here, text
//! only and personalised, which the bench checks its vitrine engine against.
use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::{load_data, make_split, DataArgs};
use vitrine::eval::EvalCase;
use vitrine::history::HistoryEvent;
use vitrine::recommend::search::{
    SearchReason, SearchRequest, SearchResponse, CANDIDATE_POOL, DEFAULT_PERSONALIZE,
};
use vitrine::recommend::{score, Recommender};
use vitrine::rng::SplitMix64;
use vitrine::search::{personalize, search, tokenize, SearchOptions};

/// Results read per query (MRR counts ranks up to here).
pub const EVAL_K: usize = 100;
/// Personalisation weights tried by `--tune` unless `--grid` is given: fine below 0.1,
/// since text scores are `raw / raw_best` with `raw` in the hundreds (see
/// `docs/search.md`, "Ranking"): one tier of completions is worth about 0.003 of text
/// score, one edit about 0.03, so small weights already reorder the hits.
const TUNE_GRID: [f32; 17] = [
    0.0, 0.001, 0.002, 0.003, 0.005, 0.007, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7,
    1.0,
];
/// Fewest characters of a query word of the proxy.
pub const MIN_WORD_CHARS: usize = 2;

#[derive(Args)]
pub(super) struct SearchArgs {
    /// The weight file.
    #[arg(long, default_value = "www/models/online-retail.vitrine")]
    model: PathBuf,
    /// Comma-separated item ids viewed, oldest first.
    #[arg(long, value_delimiter = ',', default_value = "")]
    history: Vec<String>,
    /// How many results.
    #[arg(short, long, default_value_t = 10)]
    k: usize,
    /// Weight of the model's score in the re-rank, 0..=1 (default: the built-in one).
    #[arg(long)]
    personalize: Option<f32>,
    /// Full options as JSON (same object the browser's `search()` takes).
    #[arg(long)]
    options: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// The query.
    query: String,
}

#[derive(Args)]
pub(super) struct SearchEvalArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The weight file (trained on the same data).
    #[arg(long, default_value = "www/models/online-retail.vitrine")]
    model: PathBuf,
    /// Random seed of the query words and typos.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// A query must match at least this many catalogue items.
    #[arg(long, default_value_t = 20)]
    min_matches: usize,
    /// Personalisation weight to report (default: the built-in one, or the tuned one).
    #[arg(long)]
    personalize: Option<f32>,
    /// Pick the weight on the validation queries (NDCG@10, clean and typo pooled).
    #[arg(long)]
    tune: bool,
    /// Weights `--tune` tries, comma-separated (default: a built-in grid from 0 to 1).
    #[arg(long, value_delimiter = ',')]
    grid: Vec<f32>,
    /// Write `catalog.json` and `queries.jsonl` for bench/search here.
    #[arg(long)]
    write_queries: Option<PathBuf>,
}

/// `vitrine search`.
pub(super) fn cmd_search(a: SearchArgs) -> Result<()> {
    let rec = super::load_recommender(&a.model)?;
    let history = super::views_of(&rec, &a.history, super::unix_now())?;
    let mut req: SearchRequest = super::options_or_default(a.options.as_deref(), "search options")?;
    if a.options.is_none() || a.k != 10 {
        req.k = a.k;
    }
    if a.personalize.is_some() {
        req.personalize = a.personalize;
    }
    let t = Instant::now();
    let res = rec.search(&history, &a.query, &req)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&res)?);
        return Ok(());
    }
    print_response(&res);
    eprintln!(
        "searched {} items in {ms:.2} ms ({} matches{})",
        rec.n_items(),
        res.total,
        if res.personalized {
            ", personalised"
        } else {
            ""
        }
    );
    Ok(())
}

/// The table of `vitrine search` (the same style as `vitrine recommend`).
fn print_response(res: &SearchResponse) {
    println!(
        "{:>3}  {:<10} {:<40} {:>7} {:>7}  because",
        "#", "item", "title", "score", "text"
    );
    for (i, r) in res.results.iter().enumerate() {
        let why: Vec<String> = r.reasons.iter().map(reason_text).collect();
        let title: String = r.title.chars().take(40).collect();
        println!(
            "{:>3}  {:<10} {:<40} {:>7.4} {:>7.4}  {}",
            i + 1,
            r.item,
            title,
            r.score,
            r.text_score,
            why.join(", ")
        );
    }
    if let Some(s) = &res.suggestions {
        if let Some(q) = &s.did_you_mean {
            println!("no match; did you mean {q:?}?");
        }
        let from = s.popular_category.as_deref().unwrap_or("all categories");
        println!("popular in {from}:");
        for (i, r) in s.popular.iter().enumerate() {
            println!("{:>3}  {:<10} {}", i + 1, r.item, r.title);
        }
    }
}

fn reason_text(r: &SearchReason) -> String {
    match r {
        SearchReason::Match { terms, .. } => {
            let t: Vec<String> = (terms.iter())
                .map(|m| match (m.distance, m.prefix) {
                    (0, false) => m.term.clone(),
                    (0, true) => format!("{}…→{}", m.word, m.term),
                    (d, _) => format!("{}~{}({d})", m.word, m.term),
                })
                .collect();
            format!("matches {}", t.join(" "))
        }
        SearchReason::History {
            item,
            event,
            weight,
            ..
        } => format!(
            "{} {item} ({:.0}%)",
            format!("{event:?}").to_lowercase(),
            weight * 100.0
        ),
        SearchReason::Popular => "popular".into(),
    }
}

/// One evaluation query.
#[derive(Clone, Debug)]
struct EvalQuery {
    query: String,
    typo: bool,
    valid: bool,
    /// Index of the case in its split.
    case: usize,
    target: u32,
}

/// Catalogue titles as folded words, for the matching rule.
struct Words {
    titles: Vec<Vec<String>>,
}

impl Words {
    fn new(rec: &Recommender) -> Words {
        let titles = (rec.catalog().titles.iter())
            .map(|t| tokenize(t).into_iter().map(|t| t.text).collect())
            .collect();
        Words { titles }
    }

    /// Items matching `words`: each word but the last equals a title word, the last
    /// prefixes one.
    fn matches(&self, words: &[&str]) -> usize {
        let Some((last, rest)) = words.split_last() else {
            return 0;
        };
        (self.titles.iter())
            .filter(|t| {
                rest.iter().all(|w| t.iter().any(|x| x == w))
                    && t.iter().any(|x| x.starts_with(last))
            })
            .count()
    }
}

/// A query of one or two consecutive words of `title`, each of at least
/// [`MIN_WORD_CHARS`] characters, matching ≥ `min` items.
fn clean_query(
    words: &Words,
    title: &[String],
    min: usize,
    rng: &mut SplitMix64,
) -> Option<String> {
    let first = 1 + rng.below_mod(2);
    for len in [first, 3 - first] {
        let cands: Vec<Vec<&str>> = (title.windows(len))
            .map(|w| w.iter().map(String::as_str).collect::<Vec<_>>())
            .filter(|w| w.iter().all(|x| x.chars().count() >= MIN_WORD_CHARS))
            .filter(|w| words.matches(w) >= min)
            .collect();
        if !cands.is_empty() {
            return Some(cands[rng.below_mod(cands.len())].join(" "));
        }
    }
    None
}

/// `query` with one random edit in a word of at least 4 letters (`None`: no such word).
fn typo_query(query: &str, rng: &mut SplitMix64) -> Option<String> {
    let mut words: Vec<Vec<char>> = query.split(' ').map(|w| w.chars().collect()).collect();
    let long: Vec<usize> = (0..words.len()).filter(|&i| words[i].len() >= 4).collect();
    if long.is_empty() {
        return None;
    }
    let w = &mut words[long[rng.below_mod(long.len())]];
    let letter = (b'a' + rng.below_mod(26) as u8) as char;
    let at = rng.below_mod(w.len());
    match rng.below_mod(4) {
        0 if w[at] == letter => {
            w[at] = if letter == 'z' {
                'a'
            } else {
                (letter as u8 + 1) as char
            }
        }
        0 => w[at] = letter,
        1 => {
            w.remove(at);
        }
        2 => w.insert(at, letter),
        _ => {
            let at = at.min(w.len() - 2);
            if w[at] == w[at + 1] {
                w[at] = if w[at] == 'x' { 'y' } else { 'x' };
            } else {
                w.swap(at, at + 1);
            }
        }
    }
    Some(
        words
            .iter()
            .map(|w| w.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The queries of every validation and test case (deterministic under `seed`).
fn make_queries(
    rec: &Recommender,
    valid: &[EvalCase],
    test: &[EvalCase],
    seed: u64,
    min: usize,
) -> Vec<EvalQuery> {
    let words = Words::new(rec);
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::new();
    for (is_valid, cases) in [(true, valid), (false, test)] {
        for (case, c) in cases.iter().enumerate() {
            let title = &words.titles[c.target as usize];
            let Some(q) = clean_query(&words, title, min, &mut rng) else {
                continue;
            };
            let typo = typo_query(&q, &mut rng);
            let base = EvalQuery {
                query: q,
                typo: false,
                valid: is_valid,
                case,
                target: c.target,
            };
            if let Some(t) = typo {
                out.push(base.clone());
                out.push(EvalQuery {
                    query: t,
                    typo: true,
                    ..base
                });
            } else {
                out.push(base);
            }
        }
    }
    out
}

/// MRR, HR@10, NDCG@10 sums.
#[derive(Clone, Copy, Default, Debug)]
struct Metrics {
    n: usize,
    mrr: f64,
    hr10: f64,
    ndcg10: f64,
}

impl Metrics {
    fn add(&mut self, rank: Option<usize>) {
        self.n += 1;
        if let Some(r) = rank {
            self.mrr += 1.0 / r as f64;
            if r <= 10 {
                self.hr10 += 1.0;
                self.ndcg10 += 1.0 / (r as f64 + 1.0).log2();
            }
        }
    }

    fn mean(&self) -> (f64, f64, f64) {
        let n = self.n.max(1) as f64;
        (self.mrr / n, self.hr10 / n, self.ndcg10 / n)
    }
}

/// The target's rank under each weight of `weights` for one query: the text hits of
/// the pool, the model's logits once, [`personalize`] per weight — the steps of
/// `Recommender::search` with no filter.
fn ranks(
    rec: &Recommender,
    history: &[HistoryEvent],
    q: &EvalQuery,
    weights: &[f32],
) -> Vec<Option<usize>> {
    let index = rec.search_index().expect("checked by the caller");
    let opts = SearchOptions {
        k: EVAL_K.max(CANDIDATE_POOL),
        ..SearchOptions::default()
    };
    let hits = search(index, &q.query, &opts, &|_| true).hits;
    let mut logits = vec![0.0; rec.n_items()];
    let personal = !history.is_empty();
    if personal {
        let mut hist = history.to_vec();
        hist.sort_by(|a, b| a.at.total_cmp(&b.at));
        score::logits(&rec.model, &rec.plan, rec.kernel, &hist, true, &mut logits)
            .expect("the model's own plan");
    }
    (weights.iter())
        .map(|&w| {
            let order = personalize(hits.clone(), personal.then_some(&logits[..]), w);
            (order.iter().take(EVAL_K))
                .position(|h| h.doc == q.target)
                .map(|p| p + 1)
        })
        .collect()
}

/// `vitrine search-eval`.
pub(super) fn cmd_search_eval(a: SearchEvalArgs) -> Result<()> {
    let rec = super::load_recommender(&a.model)?;
    if rec.search_index().is_none() {
        bail!(
            "{} has no search index (retrain it with this vitrine)",
            a.model.display()
        );
    }
    let ds = load_data(&a.data)?;
    let same = ds.items.len() == rec.n_items()
        && (ds.items.iter().zip(&rec.catalog().ids)).all(|(x, id)| x.id == *id);
    if !same {
        bail!("the weight file's catalogue is not this dataset's (train it on the same data)");
    }
    let split = make_split(&ds, &a.data);
    let queries = make_queries(&rec, &split.valid, &split.test, a.seed, a.min_matches);
    eprintln!(
        "{} queries ({} validation, {} test; {} with a typo)",
        queries.len(),
        queries.iter().filter(|q| q.valid).count(),
        queries.iter().filter(|q| !q.valid).count(),
        queries.iter().filter(|q| q.typo).count()
    );
    check_against_search(&rec, &queries, &split.valid, &split.test)?;
    let history = |q: &EvalQuery| -> &[HistoryEvent] {
        let cases = if q.valid { &split.valid } else { &split.test };
        &cases[q.case].history
    };
    if let Some(dir) = &a.write_queries {
        write_catalog(dir, &rec)?;
        write_queries(dir, &rec, &queries, &history)?;
    }
    let mut weight = a.personalize.unwrap_or(DEFAULT_PERSONALIZE);
    if a.tune {
        let grid = if a.grid.is_empty() {
            &TUNE_GRID[..]
        } else {
            &a.grid[..]
        };
        if let Some(w) = grid.iter().find(|w| !(0.0..=1.0).contains(*w)) {
            bail!("--grid: weight {w} is not in [0, 1]");
        }
        weight = tune(&rec, &queries, &history, grid);
    }
    let weights = [0.0, weight];
    let mut m = [[Metrics::default(); 2]; 2]; // [typo][weight]
    let t = Instant::now();
    for q in queries.iter().filter(|q| !q.valid) {
        for (j, r) in ranks(&rec, history(q), q, &weights).into_iter().enumerate() {
            m[usize::from(q.typo)][j].add(r);
        }
    }
    print_table(&m, weight);
    eprintln!("evaluated in {:.1}s", t.elapsed().as_secs_f64());
    Ok(())
}

/// Picks the weight with the best validation NDCG@10 (clean and typo pooled; the
/// smallest on ties) and prints the curve.
fn tune<'a>(
    rec: &Recommender,
    queries: &'a [EvalQuery],
    history: &dyn Fn(&'a EvalQuery) -> &'a [HistoryEvent],
    grid: &[f32],
) -> f32 {
    let mut m = vec![Metrics::default(); grid.len()];
    for q in queries.iter().filter(|q| q.valid) {
        for (j, r) in ranks(rec, history(q), q, grid).into_iter().enumerate() {
            m[j].add(r);
        }
    }
    println!("validation curve (clean + typo): weight → MRR, HR@10, NDCG@10");
    let mut best = (0.0f32, f64::NEG_INFINITY);
    for (w, x) in grid.iter().zip(&m) {
        let (mrr, hr, ndcg) = x.mean();
        println!("  {w:<5} → {mrr:.4}, {hr:.4}, {ndcg:.4}");
        if ndcg > best.1 {
            best = (*w, ndcg);
        }
    }
    println!(
        "tuned personalize weight: {} (NDCG@10 {:.4})",
        best.0, best.1
    );
    best.0
}

fn print_table(m: &[[Metrics; 2]; 2], weight: f32) {
    println!("\n| search (test queries) | queries | MRR | HR@10 | NDCG@10 |");
    println!("|---|---:|---:|---:|---:|");
    for (t, variant) in ["clean", "typo"].iter().enumerate() {
        for (j, name) in ["text only", "personalised"].iter().enumerate() {
            let (mrr, hr, ndcg) = m[t][j].mean();
            let label = if j == 1 {
                format!("{name} (w = {weight})")
            } else {
                name.to_string()
            };
            println!(
                "| {label}, {variant} | {} | {mrr:.4} | {hr:.4} | {ndcg:.4} |",
                m[t][j].n
            );
        }
    }
}

/// Checks that the proxy's decomposition ranks as `Recommender::search` does, on the
/// first test queries (text only and personalised at the default weight).
fn check_against_search(
    rec: &Recommender,
    queries: &[EvalQuery],
    valid: &[EvalCase],
    test: &[EvalCase],
) -> Result<()> {
    for q in queries.iter().filter(|q| !q.valid).take(20) {
        let h = &(if q.valid { valid } else { test })[q.case].history;
        for w in [0.0, DEFAULT_PERSONALIZE] {
            let req = SearchRequest {
                k: EVAL_K,
                personalize: Some(w),
                facets: false,
                ..SearchRequest::default()
            };
            let res = rec.search(h, &q.query, &req)?;
            let want = res
                .results
                .iter()
                .position(|r| r.index == q.target)
                .map(|p| p + 1);
            if ranks(rec, h, q, &[w])[0] != want {
                bail!(
                    "search-eval and Recommender::search disagree on {:?}",
                    q.query
                );
            }
        }
    }
    Ok(())
}

/// How many of a history's most recent events the model reads: the encoder's `max_len`,
/// or the transition memory's `last_l` when larger. Older events change no score.
pub fn history_cap(rec: &Recommender) -> usize {
    let memory = rec.model.memory.as_ref().map_or(0, |m| m.last_l);
    rec.model.config.max_len.max(memory)
}

/// `catalog.json` in bench/search's format (position = catalogue index).
fn write_catalog(dir: &Path, rec: &Recommender) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let c = rec.catalog();
    let catalog: Vec<serde_json::Value> = (0..rec.n_items())
        .map(|i| {
            let mut o = serde_json::json!({ "id": c.ids[i], "title": c.titles[i] });
            if c.category[i] != 0 {
                o["category"] = rec.category_name(i).into();
            }
            if let Some(p) = c.price.get(i) {
                o["price"] = p.into();
            }
            o
        })
        .collect();
    let path = dir.join("catalog.json");
    fs::write(&path, serde_json::to_vec(&catalog)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// One `queries.jsonl` record: the query, its target, and what the bench needs to run
/// and check vitrine on it — the history before the target (oldest first, the last
/// [`history_cap`] events, as the browser stores them) and the target's rank here (1-based
/// within [`EVAL_K`], 0 when absent), text only and at [`DEFAULT_PERSONALIZE`].
fn query_record(rec: &Recommender, q: &EvalQuery, history: &[HistoryEvent]) -> serde_json::Value {
    let ids = &rec.catalog().ids;
    let mut sorted = history.to_vec();
    sorted.sort_by(|a, b| a.at.total_cmp(&b.at));
    let kept = &sorted[sorted.len().saturating_sub(history_cap(rec))..];
    let events: Vec<serde_json::Value> = (kept.iter())
        .map(|e| serde_json::json!({ "item": ids[e.item as usize], "kind": e.kind, "at": e.at }))
        .collect();
    let r = ranks(rec, history, q, &[0.0, DEFAULT_PERSONALIZE]);
    let rank = |x: Option<usize>| x.unwrap_or(0);
    serde_json::json!({
        "query": q.query,
        "target": ids[q.target as usize],
        "variant": if q.typo { "typo" } else { "clean" },
        "split": if q.valid { "valid" } else { "test" },
        "history": events,
        "vitrine": {
            "textRank": rank(r[0]),
            "personalizedRank": rank(r[1]),
            "personalize": DEFAULT_PERSONALIZE,
        },
    })
}

/// `queries.jsonl` in bench/search's format.
fn write_queries<'a>(
    dir: &Path,
    rec: &Recommender,
    queries: &'a [EvalQuery],
    history: &dyn Fn(&'a EvalQuery) -> &'a [HistoryEvent],
) -> Result<()> {
    let path = dir.join("queries.jsonl");
    let mut f = std::io::BufWriter::new(
        fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?,
    );
    let mut seen = HashSet::new();
    for q in queries {
        seen.insert((q.valid, q.case));
        writeln!(f, "{}", query_record(rec, q, history(q)))?;
    }
    f.flush()?;
    eprintln!(
        "wrote {} ({} queries of {} cases; histories capped at {} events)",
        path.display(),
        queries.len(),
        seen.len(),
        history_cap(rec)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 30 titles "T LIGHT HOLDER k": `t`, `light` and `holder` (and `t light`) all match
    /// 30 items, so without the length rule some seeds would pick the one-letter `t`.
    #[test]
    fn proxy_queries_have_no_one_letter_word() {
        let words = Words {
            titles: (0..30)
                .map(|k| tokenize(&format!("T LIGHT HOLDER {k}")))
                .map(|t| t.into_iter().map(|t| t.text).collect())
                .collect(),
        };
        let title: Vec<String> = ["t", "light", "holder"].map(String::from).to_vec();
        assert_eq!(
            words.matches(&["t"]),
            30,
            "the one-letter word qualifies by count"
        );
        let mut picked = HashSet::new();
        for seed in 0..64 {
            let mut rng = SplitMix64::new(seed);
            let q = clean_query(&words, &title, 20, &mut rng).expect("a query qualifies");
            assert!(
                q.split(' ').all(|w| w.chars().count() >= MIN_WORD_CHARS),
                "seed {seed}: {q:?} has a word under {MIN_WORD_CHARS} characters"
            );
            picked.insert(q);
        }
        let mut picked: Vec<String> = picked.into_iter().collect();
        picked.sort();
        assert_eq!(picked, ["holder", "light", "light holder"]);
    }
}
