//! `vitrine scenario-eval`: the storefront scenarios beyond next-item prediction —
//! cold-start items (a model trained with 10% of the items held out), cross-category and
//! the diversity curve (the real `Recommender` pipeline on a trained weight file). The
//! protocols are [`vitrine::scenarios`]' module docs and `docs/scenarios.md`; this file
//! only orchestrates, prints and writes `scenarios.md`, `scenarios.json` and
//! `diversity-curve.svg` into the artifacts directory.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use super::{
    bar, load_data, make_split, read_weights, sample_cases, train_deep, with_spinner, write_file,
    DataArgs, ValSeen, VAL_CASES,
};
use vitrine::eval::{EvalCase, ModelRanker, Split};
use vitrine::features::{self, FeatureConfig};
use vitrine::model::{Model, ModelConfig};
use vitrine::recommend::{RecommendOptions, Recommender};
use vitrine::scenarios::{
    self, best_trial, category_popularity, choose_held_out, cold_split, evaluate_cold, shelf_lists,
    shelf_report, CandidateScorer, CategoryShare, CategoryShareParams, ColdResult, ColdTraining,
    DiversityPoint, RandomOrder, RankerScorer, ScenarioReport, Shelf, CUTOFF, DIVERSITY_GRID,
    HOLDOUT_FRACTION,
};
use vitrine::train::TrainConfig;

/// The parts of the evaluation.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Part {
    /// Cold-start items (trains a model with items held out).
    Cold,
    /// Cross-category shelves (needs `--model`).
    Cross,
    /// The diversity curve (needs `--model`).
    Diversity,
}

#[derive(Args)]
pub(super) struct ScenarioArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The weight file for the cross-category and diversity parts (trained on the same
    /// data); also the "trained with the items' events" reference row of the cold part.
    #[arg(long, default_value = "www/models/online-retail.vitrine")]
    model: PathBuf,
    /// Directory for scenarios.md, scenarios.json and diversity-curve.svg.
    #[arg(long, default_value = "artifacts")]
    artifacts: PathBuf,
    /// Seed of the hold-out, the cold model's training and the case samples.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Which parts to run (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "cold,cross,diversity"
    )]
    parts: Vec<Part>,
    /// Share of the catalogue held out as cold items.
    #[arg(long, default_value_t = HOLDOUT_FRACTION)]
    holdout: f64,
    /// Most epochs of the cold model (default: as `vitrine train`).
    #[arg(long)]
    epochs: Option<usize>,
    /// Embedding width of the cold model (default: as `vitrine train`).
    #[arg(long)]
    dim: Option<usize>,
    /// ID dropout of the cold model, in [0, 1) (`vitrine train --id-dropout`; default:
    /// as `vitrine train`, off).
    #[arg(long, value_parser = super::parse_id_dropout)]
    id_dropout: Option<f32>,
    /// The cold model's scoring-head widths, as `vitrine train --mlp-hidden`.
    #[arg(long, value_delimiter = ',', value_parser = super::parse_width)]
    mlp_hidden: Option<Vec<usize>>,
    /// The cold model's encoder blocks, as `vitrine train --blocks`.
    #[arg(long, value_enum)]
    blocks: Option<super::BlocksArg>,
    /// Small and fast, for smoke tests: the cold model as `vitrine train --quick` (d = 32,
    /// 4 epochs) and at most 500 test cases in the cross-category and diversity parts.
    #[arg(long)]
    quick: bool,
    /// Evaluate the cross-category and diversity parts on a deterministic sample of at
    /// most this many test cases (default: all).
    #[arg(long)]
    max_eval_users: Option<usize>,
    /// Keep only the first this many users of the dataset.
    #[arg(long)]
    max_users: Option<usize>,
}

pub(super) fn cmd_scenario_eval(a: ScenarioArgs) -> Result<()> {
    let t0 = Instant::now();
    let mut ds = load_data(&a.data)?;
    if let Some(m) = a.max_users {
        ds.sequences.truncate(m);
        ds.users.truncate(m);
    }
    let feats = features::build_features(&ds.items, &FeatureConfig::default());
    let split = make_split(&ds, &a.data);
    let wants = |p: Part| a.parts.contains(&p);
    let shelves_wanted = wants(Part::Cross) || wants(Part::Diversity);
    let rec = if shelves_wanted || a.model.exists() {
        Some(load_matching(&a.model, &ds)?)
    } else {
        None
    };
    let mut report = ScenarioReport {
        model: rec.as_ref().map(|_| a.model.display().to_string()),
        ..ScenarioReport::default()
    };
    if wants(Part::Cold) {
        report.cold = Some(cold_part(&a, &split, &feats, rec.as_ref())?);
    }
    if let (true, Some(rec)) = (shelves_wanted, &rec) {
        let max_eval = a.max_eval_users.or(a.quick.then_some(500));
        let test: Vec<EvalCase> = match max_eval {
            Some(n) => sample_cases(&split.test, n, a.seed),
            None => split.test.clone(),
        };
        shelf_parts(rec, &test, wants(Part::Diversity), &mut report)?;
    }
    write_report(&a, &report)?;
    println!("{}", report.markdown());
    eprintln!(
        "wrote {}; {:.0}s in all",
        a.artifacts.join("scenarios.md").display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The weight file, refused unless its catalogue is the dataset's (in order).
fn load_matching(path: &std::path::Path, ds: &vitrine::data::Dataset) -> Result<Recommender> {
    let wf = read_weights(path)?;
    let same = wf.metadata.items.ids.len() == ds.items.len()
        && wf
            .metadata
            .items
            .ids
            .iter()
            .zip(&ds.items)
            .all(|(a, b)| *a == b.id);
    if !same {
        bail!(
            "{}: the model's catalogue differs from the dataset's: pass the model trained on this data with --model (or --parts cold)",
            path.display()
        );
    }
    Recommender::from_weight_file(wf).with_context(|| format!("loading {}", path.display()))
}

/// Part 1: holds the items out, trains the cold model, evaluates it, the rivals and the
/// reference model on the held-out targets.
fn cold_part(
    a: &ScenarioArgs,
    split: &Split,
    feats: &features::Features,
    rec: Option<&Recommender>,
) -> Result<ColdResult> {
    let n_items = feats.table.len();
    if !(a.holdout > 0.0 && a.holdout < 1.0) {
        bail!("--holdout must be in (0, 1), got {}", a.holdout);
    }
    let held = choose_held_out(n_items, a.holdout, a.seed);
    let cs = cold_split(split, &held, n_items);
    eprintln!(
        "cold start: {} of {n_items} items held out, {} training events removed; {} test / {} validation cases with a held-out target, {} warm validation cases, {} cases dropped (empty history)",
        cs.held_out.len(),
        cs.removed_train_events,
        cs.test_cold.len(),
        cs.valid_cold.len(),
        cs.valid_warm.len(),
        cs.dropped_empty
    );
    if cs.test_cold.is_empty() {
        bail!("no test case has a held-out target: raise --holdout or use more data");
    }
    // The cold model: `vitrine train`'s defaults (or --quick), without the memory (a
    // held-out item is in no training transition, so the memory adds nothing to it).
    let buckets = FeatureConfig::default().token_buckets;
    let mut config = ModelConfig::default_for(n_items, feats.categories.len(), buckets);
    let mut tcfg = TrainConfig {
        seed: a.seed,
        ..TrainConfig::default()
    };
    if a.quick {
        config.dim = 32;
        config.ffn_dim = 64;
        config.mlp_hidden = vec![32, 16];
        tcfg.epochs = 4;
    }
    config.dim = a.dim.unwrap_or(config.dim);
    config.mlp_hidden = a.mlp_hidden.clone().unwrap_or(config.mlp_hidden);
    if let Some(b) = a.blocks {
        config.set_blocks(b.into());
    }
    tcfg.epochs = a.epochs.unwrap_or(tcfg.epochs);
    tcfg.id_dropout = a.id_dropout.unwrap_or(tcfg.id_dropout);
    let mut model =
        Model::new(config, feats.table.clone(), a.seed).context("building the model")?;
    let valid = sample_cases(&cs.valid_warm, VAL_CASES, a.seed);
    let val_proto = ValSeen::Auto.protocol(&cs.train);
    let train_split = Split {
        train: cs.train.clone(),
        valid: valid.clone(),
        test: Vec::new(),
    };
    let t = Instant::now();
    let (tr, _) = train_deep(&mut model, &train_split, &[], &tcfg, &valid, val_proto);
    let training = ColdTraining {
        dim: model.config.dim,
        max_epochs: tcfg.epochs,
        epochs: tr.epochs.len(),
        best_epoch: tr.best_epoch,
        best_val_ndcg10: tr.best_val_ndcg10,
        seconds: t.elapsed().as_secs_f64(),
        cold_items: tr.cold_items,
        id_dropout: tcfg.id_dropout,
    };
    eprintln!("cold model: {training}");

    let pop = category_popularity(&cs.train, &feats.table);
    let trials = with_spinner("tuning the rival on validation", || {
        scenarios::tune_category_share(&feats.table, &pop, &cs.valid_cold, &cs.held_out)
    });
    let tuned = best_trial(&trials).map_or(CategoryShareParams::PLAIN, |t| t.params);
    eprintln!(
        "rival tuned on {} validation cases: {tuned}",
        cs.valid_cold.len()
    );

    let cold_ranker = ModelRanker::new(&model).without_memory();
    let full_ranker = rec.map(|r| ModelRanker::with_plan(&r.model, r.plan.clone()));
    let mut scorers: Vec<Box<dyn CandidateScorer + '_>> = vec![Box::new(RankerScorer {
        ranker: &cold_ranker,
        n_items,
        name: "model, items held out (content-only vectors)".into(),
    })];
    scorers.push(Box::new(CategoryShare::new(
        &feats.table,
        pop.clone(),
        CategoryShareParams::PLAIN,
        "popularity within category: history share, ties by category popularity",
    )));
    scorers.push(Box::new(CategoryShare::new(
        &feats.table,
        pop.clone(),
        tuned,
        format!("popularity within category + title tokens + price, tuned ({tuned})"),
    )));
    scorers.push(Box::new(RandomOrder));
    if let Some(r) = &full_ranker {
        scorers.push(Box::new(RankerScorer {
            ranker: r,
            n_items,
            name: "reference: --model, trained with these items' events (not cold)".into(),
        }));
    }
    let rows = scorers
        .iter()
        .map(|s| {
            let pb = bar(cs.test_cold.len() as u64, "cold");
            let inc = |n: usize| pb.inc(n as u64);
            let r = evaluate_cold(s.as_ref(), &cs.test_cold, &cs.held_out, Some(&inc));
            pb.finish_and_clear();
            eprintln!("{}: NDCG@10 {:.4}, HR@10 {:.4}", r.ranker, r.ndcg10, r.hr10);
            r
        })
        .collect();
    Ok(ColdResult {
        fraction: a.holdout,
        seed: a.seed,
        held_out: cs.held_out.len(),
        removed_train_events: cs.removed_train_events,
        valid_cases: cs.valid_cold.len(),
        dropped_empty: cs.dropped_empty,
        training,
        rows,
        rival_trials: trials,
    })
}

/// Parts 2 and 3: every shelf through the pipeline, then the metrics per shelf.
fn shelf_parts(
    rec: &Recommender,
    test: &[EvalCase],
    diversity: bool,
    report: &mut ScenarioReport,
) -> Result<()> {
    let options = |d: f32, exclude_seen: bool| RecommendOptions {
        k: CUTOFF,
        diversity: d,
        exclude_seen,
        ..RecommendOptions::default()
    };
    let mut shelves = vec![
        Shelf {
            name: "for you (default request)".into(),
            options: options(0.0, true),
            exclude_history_categories: false,
        },
        Shelf {
            name: "other departments (filter.excludeCategories = the history's)".into(),
            options: options(0.0, true),
            exclude_history_categories: true,
        },
    ];
    // (index of the shelf, diversity, excludeSeen); δ = 0 with excludeSeen is shelf 0.
    let mut points = vec![(0, 0.0, true)];
    if diversity {
        for exclude_seen in [true, false] {
            for &d in &DIVERSITY_GRID {
                if d == 0.0 && exclude_seen {
                    continue;
                }
                points.push((shelves.len(), d, exclude_seen));
                shelves.push(Shelf {
                    name: format!("diversity {d}, excludeSeen {exclude_seen}"),
                    options: options(d, exclude_seen),
                    exclude_history_categories: false,
                });
            }
        }
    }
    let pb = bar(test.len() as u64, "shelves");
    let inc = |n: usize| pb.inc(n as u64);
    let lists = shelf_lists(rec, test, &shelves, Some(&inc))?;
    pb.finish_and_clear();
    let category = &rec.metadata.items.category;
    let reports: Vec<_> = (shelves.iter().zip(&lists))
        .map(|(s, l)| shelf_report(&s.name, l, category, CUTOFF))
        .collect();
    report.test_cases = test.len();
    report.cross = reports[..2].to_vec();
    if diversity {
        report.diversity = points
            .into_iter()
            .map(|(i, d, exclude_seen)| DiversityPoint {
                diversity: d,
                exclude_seen,
                report: reports[i].clone(),
            })
            .collect();
        report.diversity.sort_by(|x, y| {
            y.exclude_seen
                .cmp(&x.exclude_seen)
                .then(x.diversity.total_cmp(&y.diversity))
        });
    }
    Ok(())
}

/// Writes `scenarios.md`, `scenarios.json` and (with the diversity part)
/// `diversity-curve.svg`.
fn write_report(a: &ScenarioArgs, report: &ScenarioReport) -> Result<()> {
    write_file(
        &a.artifacts.join("scenarios.md"),
        report.markdown().as_bytes(),
    )?;
    write_file(
        &a.artifacts.join("scenarios.json"),
        serde_json::to_string_pretty(report)?.as_bytes(),
    )?;
    if !report.diversity.is_empty() {
        let mut svg = Vec::new();
        scenarios::write_diversity_svg(&report.diversity, &mut svg)?;
        write_file(&a.artifacts.join("diversity-curve.svg"), &svg)?;
    }
    Ok(())
}
