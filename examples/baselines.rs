//! Tunes the baselines on Online Retail (leave-last-out) and prints their test metrics.
//!
//! `cargo run --release --no-default-features --example baselines [-- CSV_GZ]`
//!
//! Uses a small private reader of the UCI Online Retail CSV (the real loader lives in
//! `vitrine::data`): drops cancellations, non-positive quantities, rows without a
//! customer and stock codes that do not start with five digits (postage, fees, ...);
//! one sequence per customer in time order (file order within an invoice), repeated lines
//! of the same item in one invoice kept once.
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::time::Instant;

use vitrine::baselines::{tune_bpr, tune_knn, tune_popularity};
use vitrine::eval::{evaluate, leave_last_out, table, EvalOptions, MetricReport, Protocol, Ranker};
use vitrine::history::{EventKind, HistoryEvent};

fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn parse_time(s: &str) -> Option<f64> {
    let (date, time) = s.split_once('T').or_else(|| s.split_once(' '))?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, mo, da) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':').map(|x| x.parse::<i64>());
    let h = t.next()?.ok()?;
    let mi = t.next()?.ok()?;
    let sec = t.next().and_then(|x| x.ok()).unwrap_or(0);
    Some((days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60 + sec) as f64)
}

fn load(path: &str) -> anyhow::Result<(Vec<Vec<HistoryEvent>>, usize)> {
    let f = std::fs::File::open(path)?;
    let r = BufReader::new(flate2::read::GzDecoder::new(f));
    let mut items: HashMap<String, u32> = HashMap::new();
    let mut users: HashMap<String, usize> = HashMap::new();
    let mut seqs: Vec<Vec<(f64, usize, u32, String)>> = Vec::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for (n, line) in r.lines().enumerate() {
        let line = line?;
        if n == 0 {
            continue;
        }
        let c = split_csv(&line);
        if c.len() < 8 {
            continue;
        }
        let (inv, code, qty, date, cust) = (&c[0], c[1].trim(), &c[3], &c[4], c[6].trim());
        if inv.starts_with('C') || cust.is_empty() {
            continue;
        }
        if qty.trim().parse::<i64>().map(|q| q <= 0).unwrap_or(true) {
            continue;
        }
        if code.len() < 5 || !code.as_bytes()[..5].iter().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Some(t) = parse_time(date) else { continue };
        let code = code.to_ascii_uppercase();
        if !seen.insert((inv.clone(), code.clone())) {
            continue;
        }
        let next = items.len() as u32;
        let item = *items.entry(code).or_insert(next);
        let nu = users.len();
        let u = *users.entry(cust.to_string()).or_insert(nu);
        if u == seqs.len() {
            seqs.push(Vec::new());
        }
        seqs[u].push((t, n, item, inv.clone()));
    }
    let sequences = seqs
        .into_iter()
        .map(|mut s| {
            s.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            s.into_iter()
                .map(|(t, _, item, _)| HistoryEvent {
                    item,
                    kind: EventKind::Purchase,
                    at: t,
                })
                .collect()
        })
        .collect();
    Ok((sequences, items.len()))
}

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/work/shared/data/online-retail/online_retail.csv.gz".to_string());
    let t0 = Instant::now();
    let (sequences, n_items) = load(&path)?;
    let n_events: usize = sequences.iter().map(|s| s.len()).sum();
    let split = leave_last_out(&sequences);
    eprintln!(
        "{} users, {} items, {} events; {} valid / {} test cases (loaded in {:.1}s)",
        sequences.len(),
        n_items,
        n_events,
        split.valid.len(),
        split.test.len(),
        t0.elapsed().as_secs_f64()
    );
    let protocols = [
        Protocol::Full {
            exclude_seen: false,
        },
        Protocol::Full { exclude_seen: true },
        Protocol::sampled(42),
    ];
    for tune_on in protocols {
        println!("\n## Tuned on validation NDCG@10, {}\n", tune_on.describe());
        let t = Instant::now();
        let pop = tune_popularity(&split.train, &split.valid, n_items, tune_on);
        eprintln!(
            "popularity: half_life_days={:?} valid NDCG@10={:.4} ({:.1}s)",
            pop.params,
            pop.valid_ndcg10,
            t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        let knn = tune_knn(&split.train, &split.valid, n_items, tune_on);
        eprintln!(
            "item-kNN: {} valid NDCG@10={:.4} ({} trials, {:.1}s)",
            knn.params,
            knn.valid_ndcg10,
            knn.trials.len(),
            t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        let bpr = tune_bpr(&split.train, &split.valid, n_items, tune_on, 42);
        eprintln!(
            "BPR: {} valid NDCG@10={:.4} ({} trials, {:.1}s)",
            bpr.params,
            bpr.valid_ndcg10,
            bpr.trials.len(),
            t.elapsed().as_secs_f64()
        );
        let rankers: [&dyn Ranker; 3] = [&pop.ranker, &knn.ranker, &bpr.ranker];
        let reports: Vec<(String, MetricReport)> = rankers
            .iter()
            .map(|r| {
                (
                    r.name(),
                    evaluate(*r, &split.test, n_items, tune_on, &EvalOptions::default()),
                )
            })
            .collect();
        let rows: Vec<(&str, &MetricReport)> =
            reports.iter().map(|(n, r)| (n.as_str(), r)).collect();
        println!("Test, {}:\n", tune_on.describe());
        println!("{}", table(&rows));
    }
    eprintln!("total {:.1}s", t0.elapsed().as_secs_f64());
    Ok(())
}
