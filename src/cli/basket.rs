//! "Frequently bought together": the trainer's step that builds the weight file's
//! `basket.*` section ([`tune_basket_logged`], called by `vitrine train`) and
//! `vitrine basket-eval`, which measures basket requests on held-out order lines.
//!
//! # The protocol (`basket-eval`)
//! The split is the trainer's leave-last-out split. A test case is a test user's last
//! line whose invoice has other lines: the last line is hidden, the other lines of its
//! invoice are the basket (cart events at the invoice's time, as `recommend({ basket })`
//! reads them) and the user's earlier lines are the history
//! ([`vitrine::eval::basket_cases`]). Validation cases (every choice: the basket
//! section's parameters, its blend weight, the item-kNN rival's parameters) are built the
//! same way from the second-to-last line. The ranking is over the whole catalogue
//! without the basket's items ([`Protocol::Basket`]; earlier purchases stay candidates).
//! Rows: (a) the co-occurrence model alone, (b) the model with the basket as cart events
//! (the ranking before the section existed), (c) item-kNN tuned on the validation cases,
//! (d) the blend (the model + `α`·evidence, what `recommend({ basket })` serves).
//!
//! A refit model (its file records `refit_epochs` above 0; `vitrine train` tuned its
//! section with the epoch early stopping kept, then counted the refit's sequences) has
//! trained on the validation lines, so no blend is chosen on them with it: row (d) is the
//! file's own section, and (a) and (c), tuned on validation from the training orders,
//! are counted again on the refit's sequences ([`BasketTuning::refit`]) as it was.
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::{bar, evaluate_with_bar, load_data, make_split, read_weights, with_spinner};
use super::{refit_sequences_of, write_file, DataArgs, SplitArg};
use vitrine::baselines;
use vitrine::basket::Basket;
use vitrine::eval::{self, EvalCase, MetricReport, ModelRanker, Protocol, Ranker, Split};
use vitrine::history::HistoryEvent;
use vitrine::model::Model;
use vitrine::train::basket::{self as tb, BasketRanker, BasketTuning, BlendRanker};

#[derive(Args)]
pub(super) struct BasketEvalArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The weight file whose model is measured (and whose basket section is compared
    /// with this run's tuning, when it has one).
    #[arg(long, default_value = "www/models/online-retail.vitrine")]
    model: PathBuf,
    /// Directory for `basket.md`.
    #[arg(long, default_value = "artifacts")]
    artifacts: PathBuf,
    /// Leave out the item-kNN rival (its tuning is the slow part).
    #[arg(long)]
    no_knn: bool,
}

/// Metric columns of the table.
const COLUMNS: [&str; 8] = [
    "HR@5",
    "NDCG@5",
    "HR@10",
    "NDCG@10",
    "HR@20",
    "NDCG@20",
    "MRR",
    "Coverage@10",
];

/// Tunes the basket section on the validation basket cases of `split` (see
/// [`vitrine::train::basket`]; the blend with `model` when one is given) with a progress
/// bar, and logs what it chose; `None` (and a note) when the data has no order of two
/// items among the validation cases.
pub(super) fn tune_basket_logged(
    model: Option<&Model>,
    split: &Split,
    n_items: usize,
) -> Option<BasketTuning> {
    let valid = eval::basket_cases(&split.valid);
    if valid.is_empty() {
        eprintln!(
            "basket section: no validation line shares its order with another line; not written"
        );
        return None;
    }
    let pb = bar(model.map_or(0, |_| valid.len()) as u64, "basket tuning");
    let inc = |n: usize| pb.inc(n as u64);
    let tuning = tb::tune(model, &split.train, &valid, n_items, &tb::GRID, &inc);
    pb.finish_and_clear();
    match &tuning {
        Some(t) => match (t.valid_model, t.valid_blend) {
            (Some(model), Some(blend)) => {
                let p = t.basket.params();
                eprintln!(
                    "basket section: {} training orders, {} pairs kept (M = {}), {} bytes; decay {} beta {} shrink {} {:?}, blend alpha {} (valid NDCG@10 {:.4}; model alone {model:.4}, co-occurrence alone {:.4}; {} cases)",
                    t.n_orders,
                    t.basket.n_pairs(),
                    t.top_m.0,
                    t.basket.size_bytes(),
                    p.decay,
                    p.beta,
                    p.shrink,
                    p.aggregate,
                    p.alpha,
                    blend.max(model),
                    t.valid_alone,
                    t.n_valid
                );
            }
            _ => {
                let q = t.alone.params();
                eprintln!(
                    "basket co-occurrence alone: {} training orders, M = {}; decay {} beta {} shrink {} {:?} (valid NDCG@10 {:.4}; {} cases); no blend chosen without a model",
                    t.n_orders, t.top_m.1, q.decay, q.beta, q.shrink, q.aggregate, t.valid_alone, t.n_valid
                );
            }
        },
        None => eprintln!("basket section: no training order has two items; not written"),
    }
    tuning
}

/// The refit's step for the section ([`BasketTuning::refit`]): counts `seqs`' orders
/// again with the tuned choices, and logs the new counts.
pub(super) fn refit_basket_logged(
    t: &mut BasketTuning,
    seqs: &[Vec<HistoryEvent>],
    n_items: usize,
) {
    let before = t.n_orders;
    t.refit(seqs, n_items);
    eprintln!(
        "basket section counted again on the refit's sequences with the choices above: {} orders (training {before}), {} pairs kept, {} bytes",
        t.n_orders,
        t.basket.n_pairs(),
        t.basket.size_bytes()
    );
}

/// `vitrine basket-eval` (module docs).
pub(super) fn cmd_basket_eval(a: BasketEvalArgs) -> Result<()> {
    let t0 = Instant::now();
    if matches!(a.data.split, SplitArg::Time) {
        bail!("basket-eval uses the trainer's leave-last-out split (a time split cuts orders at the cutoff); drop --split time");
    }
    let wf = read_weights(&a.model)?;
    let ds = load_data(&a.data)?;
    if ds
        .items
        .iter()
        .map(|i| &i.id)
        .ne(wf.metadata.items.ids.iter())
    {
        bail!("the dataset's catalog differs from the model's: evaluate on the data the model was trained on");
    }
    let n_items = ds.items.len();
    let model = Model::from_weights(&wf).context("building the model")?;
    let shipped = Basket::from_weight_file(&wf, n_items).context("the file's basket section")?;
    let split = make_split(&ds, &a.data);
    let valid = eval::basket_cases(&split.valid);
    let test = eval::basket_cases(&split.test);
    if valid.is_empty() || test.is_empty() {
        bail!(
            "no basket cases ({} validation, {} test): the data has no order of two or more items (one user's events at one time)",
            valid.len(),
            test.len()
        );
    }
    eprintln!(
        "basket cases: {} validation, {} test (of {} / {} users' held-out lines)",
        valid.len(),
        test.len(),
        split.valid.len(),
        split.test.len()
    );
    // A refit model has trained on the validation lines: a blend chosen on them with it
    // would lean on the model (its validation figure inflated). Row (d) is then the
    // file's own section, which `vitrine train` chose with the kept epoch's model.
    let refit = refit_sequences_of(&wf, &split, &ds);
    let file_section = match (&refit, &shipped) {
        (None, _) => None,
        (Some(_), Some(b)) => {
            eprintln!("the model was refit on the validation lines: no blend is chosen on them with it; row (d) is the file's own section");
            Some(b)
        }
        (Some(_), None) => bail!(
            "the model was refit on the validation lines (refit_epochs above 0) and its file has no basket section: a blend cannot be chosen on validation with this model"
        ),
    };
    let tuner = file_section.is_none().then_some(&model);
    let Some(mut tuning) = tune_basket_logged(tuner, &split, n_items) else {
        bail!("no training order has two items: nothing to count");
    };
    // A refit model's file counts the refit's sequences: so do this run's sections and
    // its item-kNN, once validation has chosen their settings (`vitrine train`).
    if let Some(seqs) = &refit {
        refit_basket_logged(&mut tuning, seqs, n_items);
    }
    let knn = (!a.no_knn).then(|| {
        let mut k = with_spinner("tuning item-kNN on validation baskets", || {
            baselines::tune_knn(&split.train, &valid, n_items, Protocol::Basket)
        });
        eprintln!(
            "tuned item-kNN: {} (valid NDCG@10 {:.4}, {} trials)",
            k.params,
            k.valid_ndcg10,
            k.trials.len()
        );
        if let Some(seqs) = &refit {
            k.ranker = baselines::ItemKnn::fit(seqs, n_items, k.params);
        }
        k
    });

    let model_ranker = ModelRanker::new(&model).with_name("model");
    let alone = BasketRanker {
        basket: &tuning.alone,
    };
    let blend = BlendRanker {
        model: &model_ranker,
        basket: file_section.unwrap_or(&tuning.basket),
        name: "blend".into(),
    };
    let mut rows: Vec<(String, &dyn Ranker, Option<f64>)> = vec![
        (
            "(a) basket co-occurrence alone".into(),
            &alone,
            Some(tuning.valid_alone),
        ),
        (
            "(b) model, basket as cart events (before)".into(),
            &model_ranker,
            tuning.valid_model,
        ),
    ];
    if let Some(k) = &knn {
        rows.push((
            "(c) item-kNN, tuned on validation baskets".into(),
            &k.ranker,
            Some(k.valid_ndcg10),
        ));
    }
    let alpha = blend.basket.params().alpha;
    rows.push((
        match file_section {
            None => format!("**(d) blend: model + {alpha}·evidence (default)**"),
            Some(_) => {
                format!("**(d) blend: model + {alpha}·evidence, the file's section (default)**")
            }
        },
        &blend,
        tuning
            .valid_blend
            .zip(tuning.valid_model)
            .map(|(b, m)| b.max(m)),
    ));
    let file_blend;
    let same = shipped.as_ref() == Some(blend.basket);
    if let (Some(b), false) = (&shipped, same) {
        file_blend = BlendRanker {
            model: &model_ranker,
            basket: b,
            name: "file".into(),
        };
        rows.push((
            "(e) blend with the file's own basket section".into(),
            &file_blend,
            None,
        ));
    }
    let reports: Vec<(String, MetricReport, Option<f64>)> = rows
        .iter()
        .map(|(name, r, v)| {
            let mut rep = evaluate_with_bar(*r, &test, n_items, &[Protocol::Basket], None);
            (name.clone(), rep.remove(0), *v)
        })
        .collect();
    let md = report_markdown(
        &a,
        &split,
        &valid,
        &test,
        &tuning,
        &reports,
        knn.as_ref(),
        &shipped,
        same,
        file_section,
    );
    println!("\n{md}");
    let path = a.artifacts.join("basket.md");
    write_file(&path, md.as_bytes())?;
    println!(
        "wrote {} ({:.0}s)",
        path.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `basket.md`: the table, what was tuned, the section's size and the protocol.
#[allow(clippy::too_many_arguments)]
fn report_markdown(
    a: &BasketEvalArgs,
    split: &Split,
    valid: &[EvalCase],
    test: &[EvalCase],
    tuning: &BasketTuning,
    reports: &[(String, MetricReport, Option<f64>)],
    knn: Option<&baselines::Tuned<baselines::ItemKnn, baselines::KnnParams>>,
    shipped: &Option<Basket>,
    same: bool,
    file_section: Option<&Basket>,
) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "### Frequently bought together ({} test baskets)\n",
        test.len()
    );
    let named: Vec<(&str, &MetricReport)> =
        reports.iter().map(|(n, r, _)| (n.as_str(), r)).collect();
    md.push_str(&eval::table_with(&named, &COLUMNS));
    md.push('\n');
    let _ = writeln!(md, "Validation NDCG@10 (what each row was tuned on):");
    for (name, _, v) in reports {
        if let Some(v) = v {
            let _ = writeln!(md, "- {}: {v:.4}", name.trim_matches('*'));
        }
    }
    let p = file_section.unwrap_or(&tuning.basket).params();
    let q = tuning.alone.params();
    let mean_basket = test
        .iter()
        .map(|c| eval::basket_of(&c.history, c.now).len())
        .sum::<usize>() as f64
        / test.len().max(1) as f64;
    let _ = writeln!(
        md,
        "\nModel: `{}`. Test cases: {} (of {} test users: those whose last line shares its invoice with other lines; mean basket {:.1} lines); validation cases: {} (of {}). Orders counted: {}.",
        a.model.display(),
        test.len(),
        split.test.len(),
        mean_basket,
        valid.len(),
        split.valid.len(),
        tuning.n_orders
    );
    let (d_from, d_m) = match file_section {
        None => ("", format!(", M = {}", tuning.top_m.0)),
        Some(_) => ("the file's section, ", String::new()),
    };
    let _ = writeln!(
        md,
        "\nTuned on validation baskets: (a) decay {}, beta {}, shrink {}, {:?}, M = {}; (d) {d_from}decay {}, beta {}, shrink {}, {:?}{d_m}, alpha {}{}.",
        q.decay,
        q.beta,
        q.shrink,
        q.aggregate,
        tuning.top_m.1,
        p.decay,
        p.beta,
        p.shrink,
        p.aggregate,
        p.alpha,
        knn.map(|k| format!("; (c) {}", k.params)).unwrap_or_default()
    );
    if let Some(b) = file_section {
        let _ = writeln!(
            md,
            "\nThe model was refit on the validation lines (`refit_epochs` above 0), so no blend is chosen on them with it (its validation figures are left out: it has trained on those lines). Row (d) is the file's own section ({} pairs, {} bytes), chosen by `vitrine train` with the epoch early stopping kept and counted on the refit's sequences; rows (a) and (c) were tuned here on validation from the training orders, then counted again on the refit's sequences, as the file's section was.",
            b.n_pairs(),
            b.size_bytes()
        );
        return finish_markdown(md, a);
    }
    let _ = writeln!(
        md,
        "\nThe weight file's `basket.*` section for (d): {} pairs, {} bytes ({} trials tuned it).",
        tuning.basket.n_pairs(),
        tuning.basket.size_bytes(),
        tuning.trials.len()
    );
    let _ = writeln!(
        md,
        "{}",
        match (shipped, same) {
            (Some(_), true) => "The model file's own section is the same as this tuning (row (d) is what it serves).",
            (Some(_), false) => "The model file's own section differs from this tuning: row (e) measures it.",
            (None, _) => "The model file has no basket section (written before it existed): `recommend({ basket })` ranks as row (b) with it.",
        }
    );
    finish_markdown(md, a)
}

/// The protocol's paragraph, closing `basket.md`.
fn finish_markdown(mut md: String, a: &BasketEvalArgs) -> String {
    let _ = writeln!(
        md,
        "\nProtocol: leave-last-out; a test case hides a test user's last line and gives the rest of its invoice as the basket (cart events at the invoice time) and the user's earlier lines as the history; validation cases do the same with the second-to-last line and are the only ones any choice was made on. Full ranking without the basket's items (earlier purchases stay candidates), pessimistic ties. `vitrine basket-eval --model {}`.",
        a.model.display()
    );
    md
}
