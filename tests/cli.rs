#![cfg(not(target_arch = "wasm32"))]
//! The `vitrine` binary end to end on small inputs: training refuses data too small to
//! train and evaluate on (unless forced), with the reason and a non-zero status.
use std::path::Path;
use std::process::Command;

use vitrine::eval::{leave_last_out, MIN_EVAL_CASES, MIN_TRAIN_ITEMS, MIN_TRAIN_USERS};
use vitrine::history::{EventKind, HistoryEvent};

fn vitrine(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vitrine"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run vitrine");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn training_on_one_surviving_row_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("events.csv"),
        "user_id,item_id,timestamp\nu1,A,2021-01-01T00:00:00\nu1,,not-a-time\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("items.csv"), "item_id,title\nA,Red mug\n").unwrap();
    let args = [
        "train",
        "--events",
        "events.csv",
        "--items",
        "items.csv",
        "--out",
        "m.vitrine",
        "--artifacts",
        "art",
        "--no-baselines",
        "--epochs",
        "1",
    ];
    let (ok, err) = vitrine(&args, dir.path());
    assert!(!ok, "training on one event must fail; stderr:\n{err}");
    assert!(
        err.contains("too little data"),
        "the reason is stated: {err}"
    );
    assert!(err.contains("--force"), "the way out is named: {err}");
    assert!(
        !dir.path().join("m.vitrine").exists(),
        "no weight file is written"
    );
}

fn seq(user: u32, len: u32) -> Vec<HistoryEvent> {
    (0..len)
        .map(|i| HistoryEvent {
            item: (user * 7 + i) % 40,
            kind: EventKind::Purchase,
            at: f64::from(i),
        })
        .collect()
}

#[test]
fn split_minimums_name_what_is_short() {
    // Enough users, items and cases: accepted.
    let ok: Vec<Vec<HistoryEvent>> = (0..MIN_EVAL_CASES as u32 + 2).map(|u| seq(u, 6)).collect();
    assert_eq!(leave_last_out(&ok).check_minimums(), Ok(()));
    // Users with fewer than three events give no evaluation case: too few validation cases.
    let mut short = ok.clone();
    short.iter_mut().skip(3).for_each(|s| s.truncate(2));
    let e = leave_last_out(&short).check_minimums().unwrap_err();
    assert_eq!(
        (e.what, e.found, e.min),
        ("the number of validation cases", 3, MIN_EVAL_CASES)
    );
    // Few users.
    let few: Vec<Vec<HistoryEvent>> = ok.iter().take(MIN_TRAIN_USERS - 1).cloned().collect();
    let e = leave_last_out(&few).check_minimums().unwrap_err();
    assert_eq!(e.found, MIN_TRAIN_USERS - 1);
    assert!(e.what.contains("users"));
    // Many users on few items.
    let narrow: Vec<Vec<HistoryEvent>> = (0..20)
        .map(|_| {
            (0..5)
                .map(|i| HistoryEvent {
                    item: i % 3,
                    kind: EventKind::View,
                    at: f64::from(i),
                })
                .collect()
        })
        .collect();
    let e = leave_last_out(&narrow).check_minimums().unwrap_err();
    assert_eq!((e.found, e.min), (3, MIN_TRAIN_ITEMS));
}

/// `vitrine train --quick --epochs 1` on `events.csv` into `m.vitrine` and `art/`, with
/// one more flag and its value.
fn quick_train_args<'a>(flag: &'a str, value: &'a str) -> [&'a str; 12] {
    [
        "train",
        "--events",
        "events.csv",
        "--out",
        "m.vitrine",
        "--artifacts",
        "art",
        "--quick",
        "--epochs",
        "1",
        flag,
        value,
    ]
}

/// A log of views and purchases: `vitrine train` runs its kind-weight grid, records the
/// trained kinds and the grid in the weight file, and refuses a weight outside [0, 1].
#[test]
fn a_multi_kind_log_trains_with_a_weight_grid_and_records_its_kinds() {
    let dir = tempfile::tempdir().unwrap();
    // Each step a view of item a, then a minute later a purchase of a ^ 1.
    write_log(dir.path(), 4, |u, s| {
        let a = (u * 7 + s * 3) % 20;
        vec![(a, 0, "view"), (a ^ 1, 60, "purchase")]
    });
    let args = |grid: &'static str| quick_train_args("--kind-weight-grid", grid);
    let (ok, err) = vitrine(&args("2"), dir.path());
    assert!(!ok && err.contains("--kind-weight-grid: 2"), "{err}");
    let (ok, err) = vitrine(&args("0,1"), dir.path());
    assert!(ok, "training fails: {err}");
    assert!(err.contains("chosen on validation"), "{err}");
    let bytes = std::fs::read(dir.path().join("m.vitrine")).unwrap();
    let meta = vitrine::format::peek_metadata(&bytes).unwrap();
    assert_eq!(
        meta.trained_kinds,
        Some(vec![EventKind::View, EventKind::Purchase])
    );
    let kinds = &meta.training["kinds"];
    assert_eq!(kinds["target"], "purchase");
    assert_eq!(kinds["grid"].as_array().map(Vec::len), Some(2));
    assert_eq!(kinds["weights"]["purchase"], 1.0);
}

/// A closed stdout (`vitrine memory F | head -1`) ends the program quietly with status
/// 141 (128 + SIGPIPE), not with a panic and its backtrace.
#[test]
fn a_closed_stdout_ends_quietly() {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let (ok, err) = vitrine(
        &["synth", "--items", "50", "--out", "m.vitrine"],
        dir.path(),
    );
    assert!(ok, "{err}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vitrine"))
        .args(["memory", "m.vitrine"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vitrine");
    // Close the read end before the program writes anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}

/// Writes `events.csv` into `dir`: 30 users, `per_user` steps each a day apart, step
/// `s` of user `u` at `1_300_000_000 + u·100,000 + s·86,400` seconds; its events are
/// `lines(u, s)`, each `(item, seconds after the step's time, event type)` for item
/// `I{item}`.
fn write_log(dir: &Path, per_user: u32, lines: impl Fn(u32, u32) -> Vec<(u32, u32, &'static str)>) {
    let mut csv = String::from("user_id,item_id,timestamp,event_type\n");
    for u in 0..30u32 {
        for s in 0..per_user {
            let t = 1_300_000_000 + u * 100_000 + s * 86_400;
            for (item, after, kind) in lines(u, s) {
                csv.push_str(&format!("u{u},I{item},{},{kind}\n", t + after));
            }
        }
    }
    std::fs::write(dir.join("events.csv"), csv).unwrap();
}

/// [`write_log`] with one purchase a step, of item `I{item(u, s)}`.
fn write_purchases(dir: &Path, per_user: u32, item: impl Fn(u32, u32) -> u32) {
    write_log(dir, per_user, |u, s| vec![(item(u, s), 0, "purchase")]);
}

/// `--mlp-hidden` sets the scoring head's widths (one layer or several), and the weight
/// file records them; a width of 0 is refused with the flag named.
#[test]
fn mlp_hidden_sets_the_head_widths() {
    let dir = tempfile::tempdir().unwrap();
    write_purchases(dir.path(), 5, |u, s| (u * 7 + s * 3) % 20);
    let args = |widths: &'static str| quick_train_args("--mlp-hidden", widths);
    let (ok, err) = vitrine(&args("8,0"), dir.path());
    assert!(
        !ok && err.contains("--mlp-hidden") && err.contains("0 is not a width"),
        "{err}"
    );
    for (widths, want) in [("12,6", vec![12, 6]), ("8", vec![8])] {
        let (ok, err) = vitrine(&args(widths), dir.path());
        assert!(ok, "training with --mlp-hidden {widths} fails: {err}");
        let bytes = std::fs::read(dir.path().join("m.vitrine")).unwrap();
        let meta = vitrine::format::peek_metadata(&bytes).unwrap();
        assert_eq!(meta.model.mlp_hidden, want);
    }
    let results = std::fs::read_to_string(dir.path().join("art/results.md")).unwrap();
    segment_counts_add_up(&results);
}

/// `results.md` breaks the seen-excluded full ranking down by the target's events in
/// training: its five buckets' case counts add up to that table's test users, and the
/// model, its deep part and its dot product (at least) have rows.
fn segment_counts_add_up(results: &str) {
    let title = "### full ranking, seen items excluded (";
    let at = results.find(title).expect("no seen-excluded table");
    let users: usize = results[at + title.len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("no test user count");
    let section =
        "### full ranking, seen items excluded: NDCG@10 by the target's events in training";
    let at = results
        .find(section)
        .unwrap_or_else(|| panic!("no segment table in {results}"));
    let mut lines = results[at..].lines().skip(2);
    let header = lines.next().unwrap();
    let counts: Vec<usize> = header
        .split(" cases)")
        .filter_map(|c| c.rsplit('(').next()?.parse().ok())
        .collect();
    assert_eq!(counts.len(), 5, "{header}");
    assert_eq!(counts.iter().sum::<usize>(), users, "{header}");
    assert!(
        header.contains("| 0 (") && header.contains("| 100+ ("),
        "{header}"
    );
    let rows = lines.skip(1).take_while(|l| l.starts_with("| ")).count();
    assert!(
        rows >= 3,
        "the model, its deep part and its dot product: {rows} rows"
    );
}

/// The refit (`--refit-epochs`, README "The refit"): the weight file records it, and its
/// sequences hold one event more per user than training's (the validation target, on
/// a one-kind leave-last-out log); `--drop-last-events 1` takes each user's last event
/// away first; `--refit-epochs 0` turns it off.
#[test]
fn the_refit_and_drop_last_events_are_recorded_in_the_weight_file() {
    let dir = tempfile::tempdir().unwrap();
    write_purchases(dir.path(), 8, |u, s| (u * 3 + s * 5) % 25);
    let run = |refit_epochs: &str, extra: &[&str]| {
        let mut args = quick_train_args("--refit-epochs", refit_epochs).to_vec();
        args.extend_from_slice(extra);
        let (ok, err) = vitrine(&args, dir.path());
        assert!(ok, "training fails: {err}");
        let bytes = std::fs::read(dir.path().join("m.vitrine")).unwrap();
        let t = vitrine::format::peek_metadata(&bytes).unwrap().training;
        (
            t["config"]["refit_epochs"].as_u64(),
            t["train_events"].as_u64(),
            t["refit_events"].as_u64(),
            err,
        )
    };
    let (epochs, train, refit, err) = run("1", &[]);
    assert_eq!((epochs, train, refit), (Some(1), Some(180), Some(210)));
    assert!(err.contains("refit epoch"), "{err}");
    let (_, train, refit, err) = run("1", &["--drop-last-events", "1"]);
    assert_eq!((train, refit), (Some(150), Some(180)));
    assert!(
        err.contains("--drop-last-events 1: 30 events dropped"),
        "{err}"
    );
    let (epochs, _, refit, err) = run("0", &[]);
    assert_eq!((epochs, refit), (Some(0), None));
    assert!(!err.contains("refit epoch"), "{err}");
}

/// `vitrine basket-eval` on a refit model: it chooses no blend on the validation lines
/// the model has trained on, and measures the file's own section as row (d) (counted on
/// the refit's sequences, as its rivals then are); on a model without a refit its own
/// tuning is the file's section.
#[test]
fn basket_eval_measures_a_refit_models_own_section() {
    let dir = tempfile::tempdir().unwrap();
    // 30 users, 6 orders each of one of ten triples {3m, 3m+1, 3m+2}, a day apart.
    write_log(dir.path(), 6, |u, k| {
        let m = (u * 7 + k * 3) % 10;
        (0..3).map(|j| (3 * m + j, 0, "purchase")).collect()
    });
    let eval = |refit_epochs: &str| {
        let (ok, err) = vitrine(
            &quick_train_args("--refit-epochs", refit_epochs),
            dir.path(),
        );
        assert!(ok, "training fails: {err}");
        assert!(
            err.contains("basket section: ") && err.contains("pairs kept"),
            "{err}"
        );
        let args = [
            "basket-eval",
            "--events",
            "events.csv",
            "--model",
            "m.vitrine",
            "--artifacts",
            "art",
        ];
        let (ok, err) = vitrine(&args, dir.path());
        assert!(ok, "basket-eval fails: {err}");
        (
            std::fs::read_to_string(dir.path().join("art/basket.md")).unwrap(),
            err,
        )
    };
    let (md, err) = eval("1");
    assert!(
        err.contains("basket section counted again on the refit's sequences"),
        "{err}"
    );
    assert!(md.contains("(d) blend: model + "), "{md}");
    assert!(md.contains("the file's section (default)"), "{md}");
    assert!(md.contains("Row (d) is the file's own section"), "{md}");
    assert!(!md.contains("(e) blend"), "{md}");
    assert!(
        !md.contains("- (b) model"),
        "no validation figure of the refit model: {md}"
    );
    let (md, err) = eval("0");
    assert!(!err.contains("counted again"), "{err}");
    assert!(
        md.contains("The model file's own section is the same as this tuning"),
        "{md}"
    );
    assert!(md.contains("- (b) model"), "{md}");
}

/// A data file that cannot be read: the command fails naming the file and the reason,
/// the reason once (the error's message and its source are not the same text twice).
#[test]
fn an_unreadable_data_file_names_the_file_and_the_reason_once() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, err) = vitrine(
        &["train", "--events", "missing.csv", "--out", "m.vitrine"],
        dir.path(),
    );
    assert!(!ok);
    assert!(err.contains("missing.csv"), "{err}");
    let reason = std::fs::File::open(dir.path().join("missing.csv"))
        .unwrap_err()
        .to_string();
    assert_eq!(err.matches(reason.as_str()).count(), 1, "{err}");
}
