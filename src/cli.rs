//! Subcommands of the `vitrine` CLI: `train`, `eval`, `recommend`, `search`,
//! `search-eval` ([`search`]), `scenario-eval` ([`scenarios`]), `basket-eval`
//! ([`basket`]), `prepare`, `param-table`, `score` ([`torch`]), `inspect`, `memory`, `quantize`, `bench`, `synth`. Errors are `anyhow` here and
//! only here.
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use vitrine::baselines;
use vitrine::config::{BlockKind, MAX_DIM};
use vitrine::data::{self, Dataset, ItemRecord, LoadOptions};
use vitrine::eval::{
    self, EvalCase, EvalOptions, MetricReport, ModelRanker, Protocol, Ranker, Segments, Split,
    FREQUENCY_EDGES,
};
use vitrine::features::{self, FeatureConfig};
use vitrine::format::{Quantization, WeightFile, FORMAT_VERSION, SEARCH_INDEX_TENSOR};
use vitrine::history::{EventKind, HistoryEvent};
use vitrine::kernels::scorer::{BackendChoice, Hooks, Scorer};
use vitrine::kernels::{CpuKernel, ItemRows, ItemVectors};
use vitrine::model::layers::dot;
use vitrine::model::memory::{Memory, MemoryParams};
use vitrine::model::{Model, ModelConfig};
use vitrine::recommend::page::PageRequest;
use vitrine::recommend::search::attach_index;
use vitrine::recommend::{score, Reason, RecommendOptions, Recommender};
use vitrine::rng::SplitMix64;
use vitrine::train::blend::{self, BlendGrid};
use vitrine::train::kinds::{self as kinds, KindChoice, SplitRule};
use vitrine::train::{self, TrainConfig};

mod basket;
mod onnx;
mod scenarios;
mod search;
mod torch;

/// Default dataset shipped in the repository.
const DEFAULT_DATA: &str = "data/online-retail/online_retail.csv.gz";

#[derive(Parser)]
#[command(
    name = "vitrine",
    version,
    about = "Train, evaluate and serve vitrine's on-device recommender"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the model (and tune the baselines) on a dataset, evaluate, write the weight file.
    Train(TrainArgs),
    /// Evaluate a weight file (and, with --baselines, the tuned baselines) on a dataset.
    Eval(EvalArgs),
    /// Recommend for a history with the same scoring code the browser runs.
    Recommend(RecommendArgs),
    /// Search the catalogue (personalised by a history), as the browser's `search()`.
    Search(search::SearchArgs),
    /// Offline quality of search: held-out purchases as queries (MRR, HR@10, NDCG@10).
    SearchEval(search::SearchEvalArgs),
    /// Scenario evaluation: cold-start items, cross-category, the diversity curve
    /// (writes artifacts/scenarios.md, .json and diversity-curve.svg).
    ScenarioEval(scenarios::ScenarioArgs),
    /// "Frequently bought together" on held-out invoice lines: the basket section, the
    /// model, a tuned item-kNN and their blend (writes artifacts/basket.md).
    BasketEval(basket::BasketEvalArgs),
    /// Write the prepared data the PyTorch trainer (python/) consumes: the training split
    /// as Parquet, the validation sample, the initialised model file and the plan.
    Prepare(torch::PrepareArgs),
    /// Print a weight file's model config and parameter table (names, shapes) as JSON.
    ParamTable {
        /// The weight file.
        #[arg(long)]
        model: PathBuf,
    },
    /// User vectors, every item's logit and recommend()'s top-k for histories, as JSON.
    Score(torch::ScoreArgs),
    /// Export the model as ONNX (the scoring head, and encoder + head + top-k) with its
    /// tensors and a reference result, for the benchmark against other engines.
    ExportOnnx(onnx::ExportOnnxArgs),
    /// Print a weight file's tensors and metadata.
    Inspect {
        /// The weight file.
        model: PathBuf,
    },
    /// Load a weight file as `recommend()` does and print where the engine's memory
    /// goes (heap bytes of each resident structure).
    Memory {
        /// The weight file.
        model: PathBuf,
    },
    /// Re-write a weight file with f16 or int8 tensors.
    Quantize {
        /// Input weight file.
        #[arg(long)]
        model: PathBuf,
        /// Storage type of float matrices.
        #[arg(long, value_enum)]
        to: QuantArg,
        /// Output weight file.
        #[arg(long)]
        out: PathBuf,
        /// Weight-file format version to write: 2 (the catalogue as a binary section) or
        /// 1 (the catalogue in the metadata JSON, for a runtime from before version 2).
        #[arg(long, default_value_t = vitrine::format::FORMAT_VERSION)]
        format_version: u32,
    },
    /// Benchmark training throughput and native scoring latency.
    Bench(BenchArgs),
    /// Load a dataset and print the ingest report only (no training): for checking an
    /// export and measuring ingest speed and memory.
    Ingest {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Write a synthetic Parquet event log (Zipf item popularity, sessions) for the
    /// ingest benchmark: `part-NNNNN.parquet` files of up to 10M rows, 1M-row row groups.
    SynthLog {
        /// Events in total.
        #[arg(long)]
        events: u64,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Random seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Write a randomly initialised default-shape model over a synthetic catalog (for
    /// benchmarks, e.g. the browser bench page at 100,000 items).
    Synth {
        /// Catalog size.
        #[arg(long)]
        items: usize,
        /// Output weight file.
        #[arg(long)]
        out: PathBuf,
        /// Storage type of float matrices (int8 keeps a 1,000,000-item file near 100 MB).
        #[arg(long, value_enum, default_value = "f32")]
        quantize: QuantArg,
        /// The scoring head's hidden widths, as `vitrine train --mlp-hidden` (default:
        /// `vitrine train`'s).
        #[arg(long, value_delimiter = ',', value_parser = parse_width)]
        mlp_hidden: Option<Vec<usize>>,
        /// The encoder's blocks, as `vitrine train --blocks` (default: `vitrine train`'s).
        #[arg(long, value_enum)]
        blocks: Option<BlocksArg>,
    },
}

/// Where the interactions come from.
#[derive(Args, Clone, Default)]
struct DataArgs {
    /// UCI Online Retail CSV (.csv or .csv.gz). Default when no other source is given.
    #[arg(long)]
    online_retail: Option<PathBuf>,
    /// Generic events CSV `user_id,item_id,timestamp[,event_type][,quantity]`.
    #[arg(long)]
    events: Option<PathBuf>,
    /// Items CSV `item_id,title[,category][,price]` (with --events or --events-parquet).
    #[arg(long)]
    items: Option<PathBuf>,
    /// Parquet events: a file or a directory of `*.parquet` files (Spark, DuckDB, pandas)
    /// with user id, item id, timestamp[, event type][, quantity] columns.
    #[arg(long)]
    events_parquet: Option<PathBuf>,
    /// User id column of --events-parquet (default: user_id or user).
    #[arg(long)]
    user_col: Option<String>,
    /// Item id column of --events-parquet (default: item_id or item).
    #[arg(long)]
    item_col: Option<String>,
    /// Timestamp column of --events-parquet (default: timestamp or time).
    #[arg(long)]
    time_col: Option<String>,
    /// Event type column of --events-parquet (default: event_type or event, if present).
    #[arg(long)]
    event_col: Option<String>,
    /// Quantity column of --events-parquet (default: quantity or qty, if present).
    #[arg(long)]
    qty_col: Option<String>,
    /// Sequence file (`user item item ...` or `user item` lines, as SASRec/BERT4Rec use).
    #[arg(long)]
    sequences: Option<PathBuf>,
    /// Item → attributes JSON for --sequences.
    #[arg(long)]
    attrs: Option<PathBuf>,
    /// Stop at the first bad row instead of counting and skipping it.
    #[arg(long)]
    strict: bool,
    /// Split: per-user leave-last-out, or one global time split (test: after the time by
    /// which 90% of the events happened; validation: the window of the same length before).
    #[arg(long, value_enum, default_value_t = SplitArg::LeaveLastOut)]
    split: SplitArg,
    /// Drop each user's last N events before the split: with N = 1 and leave-last-out
    /// the test reads the validation targets of the full data and validation moves one
    /// event back, so a choice validation cannot make (the refit's epochs) is measured
    /// without reading a test target (README "Public benchmarks", "The refit")
    #[arg(long, default_value_t = 0)]
    drop_last_events: usize,
}

#[derive(Clone, Copy, Default, ValueEnum)]
enum SplitArg {
    #[default]
    LeaveLastOut,
    Time,
}

/// Validation cases `vitrine train` reads by default (`--val-cases`).
pub(crate) const VAL_CASES: usize = 5000;

/// `--val-seen`: the history's items in validation's ranking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum ValSeen {
    /// Chosen from the training data (their repeat rate).
    #[default]
    Auto,
    /// Kept as candidates.
    Keep,
    /// Excluded.
    Exclude,
}

impl ValSeen {
    /// The full-ranking protocol validation reads for these training sequences; says
    /// which on stderr, with the repeat rate behind an `auto` choice.
    pub(crate) fn protocol(self, train: &[Vec<HistoryEvent>]) -> Protocol {
        let rate = eval::repeat_rate(train);
        let exclude_seen = match self {
            ValSeen::Auto => {
                eval::validation_protocol(rate) == Protocol::Full { exclude_seen: true }
            }
            ValSeen::Keep => false,
            ValSeen::Exclude => true,
        };
        eprintln!(
            "validation: full ranking, seen items {} ({:.2}% of training events return to an earlier item of the same user{})",
            if exclude_seen { "excluded" } else { "kept" },
            100.0 * rate,
            match self {
                ValSeen::Auto => format!("; --val-seen auto: excluded below {}%", 100.0 * eval::REPEAT_RATE_KEEP_SEEN),
                _ => String::new(),
            }
        );
        Protocol::Full { exclude_seen }
    }
}

/// `--blocks`: the user encoder's block variant ([`BlockKind`]).
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum BlocksArg {
    /// SASRec's blocks: plain residuals, ReLU feed-forward layers.
    Plain,
    /// Gated residuals, ReLU feed-forward layers.
    Gated,
    /// eSASRec's LiGR layers: gated residuals, SwiGLU feed-forward layers.
    Ligr,
}

impl From<BlocksArg> for BlockKind {
    fn from(b: BlocksArg) -> Self {
        match b {
            BlocksArg::Plain => BlockKind::Plain,
            BlocksArg::Gated => BlockKind::Gated,
            BlocksArg::Ligr => BlockKind::Ligr,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum QuantArg {
    F32,
    F16,
    Int8,
}

impl From<QuantArg> for Quantization {
    fn from(q: QuantArg) -> Self {
        match q {
            QuantArg::F32 => Quantization::F32,
            QuantArg::F16 => Quantization::F16,
            QuantArg::Int8 => Quantization::Int8,
        }
    }
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Train even with fewer than 10 users, 10 items, 10 validation or 10 test cases
    /// (otherwise refused: the metrics would be meaningless).
    #[arg(long)]
    force: bool,
    /// Output weight file.
    #[arg(long, default_value = "www/models/online-retail.vitrine")]
    out: PathBuf,
    /// Directory for the training curve, metrics JSON and results table.
    #[arg(long, default_value = "artifacts")]
    artifacts: PathBuf,
    /// Random seed (training is deterministic under it).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Maximum epochs (early stopping on validation NDCG@10 may stop sooner).
    #[arg(long)]
    epochs: Option<usize>,
    /// Embedding width.
    #[arg(long)]
    dim: Option<usize>,
    /// Hidden widths of the scoring head's MLP, comma-separated, each in 1..=4096
    /// [default: 64,32]. The browser's work per item is `dim·(h₁+1)` plus the further
    /// layers' products: `--mlp-hidden 32` is a third of the default's (README "Public
    /// benchmarks": equal on validation, 1–4% lower on the benchmarks' test).
    #[arg(long, value_delimiter = ',', value_parser = parse_width)]
    mlp_hidden: Option<Vec<usize>>,
    /// The user encoder's blocks: `plain` (SASRec's), `gated` (gated residuals) or
    /// `ligr` (eSASRec's: gated residuals, SwiGLU feed-forward layers) [default: plain]
    /// (README "Public benchmarks", "LiGR blocks")
    #[arg(long, value_enum)]
    blocks: Option<BlocksArg>,
    /// Storage type of float matrices in the weight file.
    #[arg(long, value_enum, default_value_t = QuantArg::F32)]
    quantize: QuantArg,
    /// Skip baseline tuning and the final baseline comparison (faster).
    #[arg(long)]
    no_baselines: bool,
    /// Evaluate on a deterministic sample of at most this many test users (default: all).
    #[arg(long)]
    max_eval_users: Option<usize>,
    /// Validation cases that every choice reads (early stopping, the blend, the
    /// baselines' tuning: a deterministic sample of the validation split; README "Public
    /// benchmarks" on why more matter).
    #[arg(long, default_value_t = VAL_CASES, value_parser = parse_val_cases)]
    val_cases: usize,
    /// Whether validation's full ranking keeps the history's items as candidates: `auto`
    /// excludes them when under 1% of training events return to an earlier item of the
    /// same user (reviews, the Amazon benchmarks) and keeps them otherwise (rebuys).
    #[arg(long, value_enum, default_value_t = ValSeen::Auto)]
    val_seen: ValSeen,
    /// A small, fast model (d = 32, 4 epochs, no baselines, 500 test users): for smoke
    /// tests and the end-to-end browser test, not for the README's numbers.
    #[arg(long)]
    quick: bool,
    /// Sampled negatives per batch for the dot-product loss (0 = full softmax).
    #[arg(long)]
    negatives: Option<usize>,
    /// Adam learning rate.
    #[arg(long)]
    lr: Option<f32>,
    /// Training windows per batch.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Early-stopping patience (epochs without a better validation NDCG@10).
    #[arg(long)]
    patience: Option<usize>,
    /// Dropout probability of the encoder (embeddings, attention and feed-forward
    /// outputs), in [0, 0.9]
    #[arg(long, value_parser = parse_dropout)]
    dropout: Option<f32>,
    /// L2 weight decay on the dense weights (not embeddings, norms or biases), ≥ 0
    #[arg(long, value_parser = parse_weight_decay)]
    weight_decay: Option<f32>,
    /// Decay of the moving average of the parameters that validation reads and the run
    /// keeps, in [0, 1); 0 = off
    #[arg(long, value_parser = parse_ema)]
    ema: Option<f32>,
    /// Probability, per item and batch, that the item's ID embedding is left out of its
    /// vector (content part alone), in [0, 1); trains the content-only vectors of new
    /// items at some cost to the others (README "Scenarios"); 0 = off
    #[arg(long, value_parser = parse_id_dropout)]
    id_dropout: Option<f32>,
    /// Neighbour mixing of the ID rows while training, ≥ 0: each item's ID part adds
    /// this times the weighted mean of its 20 strongest co-occurring items' rows
    /// (README "Public benchmarks"); folded into the rows at the end; 0 = off
    /// [default: 0.5]
    #[arg(long, value_parser = parse_weight_decay)]
    neighbour_mix: Option<f32>,
    /// Epochs of the refit once early stopping has chosen its epoch: training goes on
    /// over the training sequences with the validation targets appended, and the
    /// memory and the baselines are fitted on those too before the test (README "Public
    /// benchmarks"); 0 = off [default: 1]
    #[arg(long)]
    refit_epochs: Option<usize>,
    /// Zero the ID rows of items without training events after every epoch, so early
    /// stopping validates the model as shipped (README "Public benchmarks"); `false`
    /// lets them move as sampled negatives until the end
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    zero_cold_rows: bool,
    /// Keep only the first this many users of the dataset (training, validation and
    /// test; for quick experiments).
    #[arg(long)]
    max_users: Option<usize>,
    /// On a log with several event kinds: the loss weights tried for targets that are not
    /// of the target kind (purchase), each in [0, 1]; the best on validation is kept.
    #[arg(long, value_delimiter = ',', default_values_t = kinds::DEFAULT_GRID)]
    kind_weight_grid: Vec<f32>,
}

#[derive(Args)]
struct EvalArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The weight file to evaluate.
    #[arg(long, default_value = "www/models/online-retail.vitrine")]
    model: PathBuf,
    /// Protocol(s) to report.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Both)]
    protocol: ProtocolArg,
    /// Under the full protocol, remove items already in the history from the ranking.
    #[arg(long)]
    exclude_seen: bool,
    /// Also tune and report the baselines.
    #[arg(long)]
    baselines: bool,
    /// Write each test user's top-100 (and sampled candidates) as JSON lines.
    #[arg(long)]
    dump: Option<PathBuf>,
    /// Random seed of the sampled protocol (and of BPR tuning, with --baselines).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Negatives per test case under the sampled protocol, drawn from the items the user
    /// never interacted with before the target (100: SASRec's paper; 99: the S3-Rec
    /// release's "target against 99").
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    negatives: u32,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum ProtocolArg {
    Full,
    Sampled,
    Both,
}

#[derive(Args)]
struct RecommendArgs {
    /// The weight file.
    #[arg(long, default_value = "www/models/online-retail.vitrine")]
    model: PathBuf,
    /// Comma-separated item ids viewed, oldest first.
    #[arg(long, value_delimiter = ',', default_value = "")]
    history: Vec<String>,
    /// A context item ("similar to this item").
    #[arg(long)]
    context: Option<String>,
    /// How many results.
    #[arg(short, long, default_value_t = 10)]
    k: usize,
    /// Full options as JSON (same object the browser's `recommend()` takes).
    #[arg(long)]
    options: Option<String>,
    /// A page of shelves as JSON (the browser's `page()` request: `{"shelves":[{…},…]}`),
    /// no product on two shelves; scored with the fastest CPU kernel.
    #[arg(long, conflicts_with_all = ["options", "context"])]
    page: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Where the scoring head runs: the fastest CPU kernel, the scalar reference, the GPU
    /// (wgpu; falls back to the CPU), or the faster of GPU and CPU timed once.
    #[arg(long, value_enum, default_value_t = BackendArg::Cpu)]
    backend: BackendArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    Cpu,
    Scalar,
    Gpu,
    Auto,
}

impl From<BackendArg> for BackendChoice {
    fn from(b: BackendArg) -> BackendChoice {
        match b {
            BackendArg::Cpu => BackendChoice::Cpu(CpuKernel::best()),
            BackendArg::Scalar => BackendChoice::Cpu(CpuKernel::Scalar),
            BackendArg::Gpu => BackendChoice::Gpu,
            BackendArg::Auto => BackendChoice::Auto,
        }
    }
}

#[derive(Args)]
struct BenchArgs {
    /// Synthetic catalog sizes to score, in addition to the default dataset's catalog.
    #[arg(long, value_delimiter = ',', default_value = "100000")]
    items: Vec<usize>,
    /// The weight file (default catalog).
    #[arg(long, default_value = "www/models/online-retail.vitrine")]
    model: PathBuf,
    /// Requests per measurement.
    #[arg(long, default_value_t = 50)]
    requests: usize,
    /// Users in the training-throughput epoch.
    #[arg(long, default_value_t = 1000)]
    train_users: usize,
}

/// Parses the command line and runs the subcommand.
pub fn run() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Train(a) => cmd_train(a),
        Command::Eval(a) => cmd_eval(a),
        Command::Recommend(a) => cmd_recommend(a),
        Command::Search(a) => search::cmd_search(a),
        Command::SearchEval(a) => search::cmd_search_eval(a),
        Command::ScenarioEval(a) => scenarios::cmd_scenario_eval(a),
        Command::BasketEval(a) => basket::cmd_basket_eval(a),
        Command::Prepare(a) => torch::cmd_prepare(a),
        Command::ParamTable { model } => torch::cmd_param_table(&model),
        Command::Score(a) => torch::cmd_score(a),
        Command::ExportOnnx(a) => onnx::cmd_export_onnx(a),
        Command::Inspect { model } => cmd_inspect(&model),
        Command::Memory { model } => cmd_memory(&model),
        Command::Quantize {
            model,
            to,
            out,
            format_version,
        } => cmd_quantize(&model, to.into(), &out, format_version),
        Command::Bench(a) => cmd_bench(a),
        Command::Ingest { data } => cmd_ingest(&data),
        Command::SynthLog { events, out, seed } => cmd_synth_log(events, &out, seed),
        Command::Synth {
            items,
            out,
            quantize,
            mlp_hidden,
            blocks,
        } => cmd_synth(items, &out, quantize.into(), mlp_hidden, blocks),
    }
}

fn spinner(msg: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("static template"),
    );
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

/// Runs `work` behind a spinner showing `msg`, cleared when it is done.
fn with_spinner<T>(msg: &str, work: impl FnOnce() -> T) -> T {
    let pb = spinner(msg);
    let out = work();
    pb.finish_and_clear();
    out
}

fn bar(len: u64, msg: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>14} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_message(msg.to_string());
    pb
}

fn read_weights(path: &Path) -> Result<WeightFile> {
    Ok(read_weights_and_bytes(path)?.0)
}

/// A weight file and its raw bytes (for digests and sizes).
fn read_weights_and_bytes(path: &Path) -> Result<(WeightFile, Vec<u8>)> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let wf = WeightFile::from_bytes(&bytes)
        .with_context(|| format!("loading weight file {}", path.display()))?;
    Ok((wf, bytes))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// `vitrine ingest`: loads the dataset, prints the report and the load's speed.
fn cmd_ingest(a: &DataArgs) -> Result<()> {
    let t0 = std::time::Instant::now();
    let ds = load_data(a)?;
    let secs = t0.elapsed().as_secs_f64();
    let n = ds.n_interactions();
    eprintln!(
        "ingest took {secs:.2} s ({:.0} kept events/s)",
        n as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// `vitrine synth-log`: writes a synthetic Parquet event log.
fn cmd_synth_log(events: u64, out: &Path, seed: u64) -> Result<()> {
    let spec = data::SynthLogSpec::new(events, seed);
    let t0 = std::time::Instant::now();
    let files = data::write_synthetic_log(out, &spec)?;
    eprintln!(
        "wrote {} events ({} users, {} items) in {} files under {} in {:.1} s",
        spec.events,
        spec.users,
        spec.items,
        files.len(),
        out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Loads the dataset named by the arguments and prints the ingest report.
fn load_data(a: &DataArgs) -> Result<Dataset> {
    let opts = LoadOptions {
        strict: a.strict,
        ..LoadOptions::default()
    };
    let pb = spinner("loading data");
    let (ds, report) = if let Some(ev) = &a.events {
        data::load_events_csv(ev, a.items.as_deref(), &opts)?
    } else if let Some(ev) = &a.events_parquet {
        let cols = data::ParquetColumns {
            user: a.user_col.clone(),
            item: a.item_col.clone(),
            timestamp: a.time_col.clone(),
            event_type: a.event_col.clone(),
            quantity: a.qty_col.clone(),
        };
        data::load_events_parquet(ev, &cols, a.items.as_deref(), &opts)?
    } else if let Some(seq) = &a.sequences {
        data::load_sequence_file(seq, a.attrs.as_deref(), &opts)?
    } else {
        let path = a
            .online_retail
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA));
        data::load_online_retail(&path, &opts)?
    };
    pb.finish_and_clear();
    eprintln!("{report}");
    let mut ds = ds;
    if a.drop_last_events > 0 {
        let mut dropped = 0;
        for s in &mut ds.sequences {
            let keep = s.len().saturating_sub(a.drop_last_events);
            dropped += s.len() - keep;
            s.truncate(keep);
        }
        eprintln!(
            "--drop-last-events {}: {dropped} events dropped (each user's last)",
            a.drop_last_events
        );
    }
    if ds.items.is_empty() || ds.sequences.iter().all(Vec::is_empty) {
        bail!("the dataset has no usable interactions");
    }
    Ok(ds)
}

/// The split of the dataset; validation and test targets are of the log's target kind
/// (purchase when it has purchases; a one-kind log splits as it always did; see
/// [`kinds`]).
fn make_split(ds: &Dataset, a: &DataArgs) -> Split {
    let target = target_kind_of(ds);
    let rule = match a.split {
        SplitArg::LeaveLastOut => SplitRule::LeaveLastOut,
        SplitArg::Time => SplitRule::Time {
            // The last 10% of the time span's events are held out (validation, then test).
            cutoff: eval::cutoff_quantile(&ds.sequences, 0.9).unwrap_or(f64::INFINITY),
        },
    };
    kinds::split(&ds.sequences, rule, target)
}

/// Popularity counts over the training sequences (the browser's empty-history fallback).
fn popularity(train: &[Vec<HistoryEvent>], n_items: usize) -> Vec<f32> {
    let mut pop = vec![0f32; n_items];
    for seq in train {
        for e in seq {
            if let Some(p) = pop.get_mut(e.item as usize) {
                *p += 1.0;
            }
        }
    }
    pop
}

fn evaluate_with_bar(
    ranker: &dyn Ranker,
    cases: &[EvalCase],
    n_items: usize,
    protocols: &[Protocol],
    segments: Option<&Segments>,
) -> Vec<MetricReport> {
    let pb = bar(cases.len() as u64, &ranker.name());
    let inc = |n: usize| pb.inc(n as u64);
    let opts = EvalOptions {
        progress: Some(&inc),
        segments,
        ..EvalOptions::default()
    };
    let reports = eval::evaluate_protocols(ranker, cases, n_items, protocols, &opts);
    pb.finish_and_clear();
    reports
}

/// The model and its deep part alone (memory not added), named for the results table.
fn model_rankers(model: &Model) -> [ModelRanker<'_>; 2] {
    [
        ModelRanker::new(model).with_name("model (deep + memory)"),
        ModelRanker::new(model)
            .without_memory()
            .with_name("deep part only (SASRec + MLP head)"),
    ]
}

/// The model's dot-product term alone (`u · v_i`, no MLP): shows what the MLP adds.
struct DotRanker<'a> {
    model: &'a Model,
    item_vectors: &'a ItemVectors,
}

impl Ranker for DotRanker<'_> {
    fn name(&self) -> String {
        "deep part, dot product only".into()
    }

    fn score_all(&self, history: &[HistoryEvent], _now: f64, out: &mut [f32]) {
        let d = self.model.config.dim;
        let u = self.model.encode_user(self.item_vectors, history).u;
        let mut v = vec![0.0; d];
        for (i, o) in out.iter_mut().enumerate() {
            self.item_vectors.copy_row(i, &mut v);
            *o = dot(&u, &v);
        }
    }
}

/// Item-kNN tuned on validation NDCG@10 (full ranking), with a spinner and a summary line.
fn tune_knn_logged(split: &Split, n_items: usize, proto: Protocol) -> KnnTuned {
    let t = Instant::now();
    let knn = with_spinner("tuning item-kNN on validation", || {
        baselines::tune_knn(&split.train, &split.valid, n_items, proto)
    });
    eprintln!(
        "tuned item-kNN: {} (valid NDCG@10 {:.4}, {} trials, {:.0} s)",
        knn.params,
        knn.valid_ndcg10,
        knn.trials.len(),
        t.elapsed().as_secs_f64()
    );
    knn
}

/// A tuned item-kNN.
type KnnTuned = baselines::Tuned<baselines::ItemKnn, baselines::KnnParams>;

/// The tuned baselines (on validation NDCG@10 under `proto`, full ranking); with
/// `refit`, each is fitted again on those sequences with the settings chosen.
fn tune_baselines(
    split: &Split,
    n_items: usize,
    seed: u64,
    knn: Option<KnnTuned>,
    proto: Protocol,
    refit: Option<&[Vec<HistoryEvent>]>,
) -> Vec<Box<dyn Ranker>> {
    let t = Instant::now();
    let pop = with_spinner("tuning popularity on validation", || {
        baselines::tune_popularity(&split.train, &split.valid, n_items, proto)
    });
    eprintln!(
        "tuned popularity: half-life {:?} days (valid NDCG@10 {:.4}, {:.0} s)",
        pop.params,
        pop.valid_ndcg10,
        t.elapsed().as_secs_f64()
    );
    let knn = knn.unwrap_or_else(|| tune_knn_logged(split, n_items, proto));
    let t = Instant::now();
    let bpr = with_spinner("tuning BPR on validation", || {
        baselines::tune_bpr(&split.train, &split.valid, n_items, proto, seed)
    });
    eprintln!(
        "tuned BPR: {} (valid NDCG@10 {:.4}, {} trials, {:.0} s)",
        bpr.params,
        bpr.valid_ndcg10,
        bpr.trials.len(),
        t.elapsed().as_secs_f64()
    );
    let Some(seqs) = refit else {
        return vec![
            Box::new(pop.ranker),
            Box::new(knn.ranker),
            Box::new(bpr.ranker),
        ];
    };
    let t = Instant::now();
    let refitted = with_spinner("fitting the baselines again for the refit", || {
        let pop: Box<dyn Ranker> = Box::new(baselines::Popularity::fit(seqs, n_items, pop.params));
        let knn: Box<dyn Ranker> = Box::new(baselines::ItemKnn::fit(seqs, n_items, knn.params));
        let bpr: Box<dyn Ranker> = Box::new(baselines::Bpr::fit(seqs, n_items, bpr.params));
        vec![pop, knn, bpr]
    });
    eprintln!(
        "baselines fitted again on the refit's sequences with the settings chosen ({:.0} s)",
        t.elapsed().as_secs_f64()
    );
    refitted
}

/// Every ranker's report under one protocol, in ranker order (the model first).
struct Comparison {
    rows: Vec<(String, MetricReport)>,
}

impl Comparison {
    /// The markdown table of the reports.
    fn table(&self) -> String {
        eval::table(
            &self
                .rows
                .iter()
                .map(|(n, r)| (n.as_str(), r))
                .collect::<Vec<_>>(),
        )
    }

    /// The markdown table of NDCG@10 per segment ([`MetricReport::segments`]): one row
    /// per ranker, one column per segment with its number of cases; empty when the
    /// reports have no segments.
    fn segment_table(&self) -> String {
        let Some((_, first)) = self.rows.first() else {
            return String::new();
        };
        if first.segments.is_empty() {
            return String::new();
        }
        let mut s = String::from("| ranker |");
        for (name, r) in &first.segments {
            s.push_str(&format!(" {name} ({} cases) |", r.n_cases));
        }
        s.push_str("\n|---|");
        s.push_str(&"---:|".repeat(first.segments.len()));
        s.push('\n');
        for (name, r) in &self.rows {
            s.push_str(&format!("| {name} |"));
            for (_, seg) in &r.segments {
                match seg.get("NDCG@10") {
                    Some(v) if seg.n_cases > 0 => s.push_str(&format!(" {v:.4} |")),
                    _ => s.push_str(" – |"),
                }
            }
            s.push('\n');
        }
        s
    }

    /// Prints the model's NDCG@10 against every other ranker's; returns the lines as a
    /// markdown list.
    fn versus_model(&self) -> String {
        let mut md = String::new();
        let Some(((_, model), others)) = self.rows.split_first() else {
            return md;
        };
        let model_ndcg = model.get("NDCG@10").unwrap_or(0.0);
        for (name, r) in others {
            let b = r.get("NDCG@10").unwrap_or(0.0);
            let gain = if b > 0.0 {
                (model_ndcg / b - 1.0) * 100.0
            } else {
                f64::INFINITY
            };
            let line = format!("model NDCG@10 {model_ndcg:.4} vs {name} {b:.4}: {gain:+.1}%");
            println!("{line}");
            md.push_str(&format!("- {line}\n"));
        }
        md.push('\n');
        md
    }
}

/// Evaluates the model and (optionally) the tuned baselines under each of `protocols`:
/// one comparison per protocol, in order; each ranker scores each case once for all.
fn compare(
    rankers: &[&dyn Ranker],
    cases: &[EvalCase],
    n_items: usize,
    protocols: &[Protocol],
    segments: Option<&Segments>,
) -> Vec<Comparison> {
    let mut cmps: Vec<Comparison> = protocols
        .iter()
        .map(|_| Comparison { rows: Vec::new() })
        .collect();
    for r in rankers {
        let reports = evaluate_with_bar(*r, cases, n_items, protocols, segments);
        for (cmp, report) in cmps.iter_mut().zip(reports) {
            cmp.rows.push((r.name(), report));
        }
    }
    cmps
}

/// What `vitrine train` runs with, after `--quick` and the individual flags.
struct TrainPlan {
    config: ModelConfig,
    tcfg: TrainConfig,
    no_baselines: bool,
    max_eval: Option<usize>,
}

/// The loaded data: the dataset (`--max-users` applied), its item features and split.
struct Prepared {
    ds: Dataset,
    feats: features::Features,
    split: Split,
}

fn cmd_train(a: TrainArgs) -> Result<()> {
    let t0 = Instant::now();
    let prep = prepare_training_data(&a)?;
    let n_items = prep.ds.items.len();
    let plan = train_plan(&a, n_items, &prep.feats);
    // Validation: NDCG@10 on (a sample of) the validation cases, full ranking.
    let valid: Vec<EvalCase> = sample_cases(&prep.split.valid, a.val_cases, a.seed);
    let val_proto = a.val_seen.protocol(&prep.split.train);
    // The refit's sequences (none when it is off): every event but the test targets.
    let refit = if plan.tcfg.refit_epochs > 0 {
        prep.split.refit_sequences(target_kind_of(&prep.ds))
    } else {
        Vec::new()
    };
    let ((mut model, mut chosen), report, kind_choice) =
        train_kinds(&a, &plan, &prep, &refit, &valid, val_proto)?;
    let Prepared { ds, feats, split } = prep;
    model.set_trained_kinds(&report.trained_kinds);
    if let Some(c) = &mut chosen {
        c.set_trained_kinds(&report.trained_kinds);
    }
    print_kinds(&model, &kind_choice);
    // With a refit, the memory's blend and the basket's are chosen with the chosen
    // epoch's model (the refit trained on the validation targets); then everything
    // fitted from data is fitted again on the refit's sequences: the memory's lists, the
    // basket section's counts, the popularity prior and the baselines the test compares
    // with.
    let refit = chosen.is_some().then_some(refit);
    let knn = (!plan.no_baselines).then(|| tune_knn_logged(&split, n_items, val_proto));
    let tuned = chosen.as_mut().unwrap_or(&mut model);
    let source = tune_memory_blend(tuned, &split, knn.as_ref(), &valid, n_items, val_proto);
    let mut basket = basket::tune_basket_logged(Some(tuned), &split, n_items);
    if let (Some(c), Some(seqs)) = (chosen, refit.as_deref()) {
        model.memory = c
            .memory
            .map(|m| refit_memory(&m, source, knn.as_ref(), seqs, n_items));
        if let Some(t) = &mut basket {
            basket::refit_basket_logged(t, seqs, n_items);
        }
    }
    let curve_path = write_curve(&a.artifacts, &report)?;

    // Test evaluation: model and tuned baselines.
    let test: Vec<EvalCase> = match plan.max_eval {
        Some(n) => sample_cases(&split.test, n, a.seed),
        None => split.test.clone(),
    };
    let baselines = if plan.no_baselines {
        Vec::new()
    } else {
        tune_baselines(&split, n_items, a.seed, knn, val_proto, refit.as_deref())
    };
    let metrics = evaluate_on_test(&model, &baselines, &split.train, &test, n_items, a.seed)?;
    write_results(&a.artifacts, &metrics)?;

    let training = serde_json::json!({
        "users": ds.users.len(),
        "items": n_items,
        "train_events": split.train.iter().map(Vec::len).sum::<usize>(),
        "refit_events": refit.as_ref().map(|r| r.iter().map(Vec::len).sum::<usize>()),
        "epochs": report.epochs,
        "best_epoch": report.best_epoch,
        "examples_per_sec": report.examples_per_sec,
        "cold_items": report.cold_items,
        "kinds": kinds_json(&report, &kind_choice),
        "config": TrainConfig {
            kind_weights: kind_choice.weights,
            ..plan.tcfg.clone()
        },
        "seconds": t0.elapsed().as_secs_f64(),
    });
    let mut wf = model.to_weight_file(
        data::catalog(&ds.items, feats.table.category.clone()),
        feats.categories.clone(),
        popularity(refit.as_deref().unwrap_or(&split.train), n_items),
        feats.settings.clone(),
        training,
        serde_json::to_value(&metrics.json)?,
    );
    if let Some(t) = &basket {
        t.basket.write_into(&mut wf);
    }
    let index_bytes = attach_index(&mut wf).context("building the search index")?;
    eprintln!(
        "search index: {index_bytes} bytes ({} titles and categories)",
        wf.metadata.items.titles.len()
    );
    let quant: Quantization = a.quantize.into();
    let bytes = weight_file_bytes(wf, quant, FORMAT_VERSION)?;
    write_file(&a.out, &bytes)?;
    println!(
        "\nwrote {} ({:.1} MiB, {:?}); curve {}; results {}; {:.0}s in all",
        a.out.display(),
        bytes.len() as f64 / (1 << 20) as f64,
        quant,
        curve_path.display(),
        a.artifacts.join("results.md").display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Trains the deep part: once with every kind weight 1 when the training sequences hold
/// one event kind; else once per weight of `--kind-weight-grid`, keeping the best on
/// validation ([`kinds::search_kind_weights`]); each run is refit on `refit` (none when
/// empty). Returns the model (with, when it was refit, the chosen epoch's model:
/// [`train::train_refit`]), its report and the weights chosen. Every trial refits, the
/// ones not kept too: the refit goes on from the trial's optimiser state, so refitting
/// the winner alone would mean keeping every trial's trainer until the choice (three
/// times the parameters each) or training it again, while a refit costs one epoch
/// (`--refit-epochs`) against a trial's up to `--epochs`.
fn train_kinds(
    a: &TrainArgs,
    plan: &TrainPlan,
    prep: &Prepared,
    refit: &[Vec<HistoryEvent>],
    valid: &[EvalCase],
    val_proto: Protocol,
) -> Result<((Model, Option<Model>), train::TrainReport, KindChoice)> {
    let split = &prep.split;
    let target = target_kind_of(&prep.ds);
    let in_training = kinds::kinds_in(&split.train);
    let fresh = || {
        Model::new(plan.config.clone(), prep.feats.table.clone(), a.seed)
            .context("building the model")
    };
    if let Some(w) = a
        .kind_weight_grid
        .iter()
        .find(|w| !(w.is_finite() && (0.0..=1.0).contains(*w)))
    {
        bail!("--kind-weight-grid: {w} is not a weight in [0, 1]");
    }
    if in_training.len() <= 1 {
        let mut model = fresh()?;
        let (report, chosen) = train_deep(&mut model, split, refit, &plan.tcfg, valid, val_proto);
        let choice = KindChoice {
            target,
            weights: plan.tcfg.kind_weights,
            trials: Vec::new(),
        };
        return Ok(((model, chosen), report, choice));
    }
    eprintln!(
        "event kinds in training: {}; validation and test targets: {}; weight of the other kinds' targets chosen on validation among {:?}",
        kind_names(&in_training),
        kind_name(target),
        a.kind_weight_grid
    );
    let mut train_one = |weights: [f32; 3]| -> Result<_> {
        let tcfg = TrainConfig {
            kind_weights: weights,
            ..plan.tcfg.clone()
        };
        let mut model = fresh()?;
        let (report, chosen) = train_deep(&mut model, split, refit, &tcfg, valid, val_proto);
        eprintln!(
            "  kind weights view {} cart {} purchase {}: val NDCG@10 {:.4} (epoch {})",
            weights[0], weights[1], weights[2], report.best_val_ndcg10, report.best_epoch
        );
        Ok(((model, chosen), report))
    };
    kinds::search_kind_weights(&a.kind_weight_grid, target, &mut train_one)?
        .context("--kind-weight-grid is empty")
}

/// The kind validation and test targets are drawn from (purchase when the log has any).
fn target_kind_of(ds: &Dataset) -> EventKind {
    kinds::target_kind(&kinds::kinds_in(&ds.sequences))
}

/// The refit's sequences of `split` ([`Split::refit_sequences`]) when the weight file's
/// model was refit (its recorded `refit_epochs` above 0), else `None`: what the file's
/// data-fitted parts counted, so what a rival measured beside them is fitted on.
fn refit_sequences_of(
    wf: &WeightFile,
    split: &Split,
    ds: &Dataset,
) -> Option<Vec<Vec<HistoryEvent>>> {
    let refit_epochs = wf.metadata.training["config"]["refit_epochs"].as_u64();
    (refit_epochs.unwrap_or(0) > 0).then(|| split.refit_sequences(target_kind_of(ds)))
}

/// A kind's lowercase name.
fn kind_name(k: EventKind) -> String {
    format!("{k:?}").to_lowercase()
}

/// Kinds' names, comma-separated.
fn kind_names(ks: &[EventKind]) -> String {
    ks.iter()
        .map(|&k| kind_name(k))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints the kinds the model was trained on, the weights kept and what each untrained
/// kind reads.
fn print_kinds(model: &Model, choice: &KindChoice) {
    let w = &choice.weights;
    eprintln!(
        "event kinds: trained {}; targets {}; kind weights view {} cart {} purchase {}{}",
        kind_names(model.trained_kinds.as_deref().unwrap_or(&[])),
        kind_name(choice.target),
        w[0],
        w[1],
        w[2],
        if choice.trials.is_empty() {
            String::new()
        } else {
            " (chosen on validation)".into()
        }
    );
    for (k, r) in model.kind_map().mapped() {
        eprintln!(
            "  {} never occurred in training: it reads the {} row",
            kind_name(k),
            kind_name(r)
        );
    }
}

/// The kind section of the weight file's training metadata.
fn kinds_json(report: &train::TrainReport, choice: &KindChoice) -> serde_json::Value {
    let by_kind = |w: &[f32; 3]| {
        EventKind::ALL
            .iter()
            .map(|&k| (kind_name(k), serde_json::json!(w[k.index()])))
            .collect::<serde_json::Map<_, _>>()
    };
    serde_json::json!({
        "trained": report.trained_kinds,
        "target": choice.target,
        "weights": by_kind(&choice.weights),
        "grid": choice.trials,
    })
}

/// Loads the data, applies `--max-users`, builds the item features and the split, and
/// prints the split's sizes.
fn prepare_training_data(a: &TrainArgs) -> Result<Prepared> {
    let mut ds = load_data(&a.data)?;
    if let Some(m) = a.max_users {
        ds.sequences.truncate(m);
        ds.users.truncate(m);
    }
    let feats = features::build_features(&ds.items, &FeatureConfig::default());
    let split = make_split(&ds, &a.data);
    eprintln!(
        "{} items, {} users, {} training events, {} validation / {} test cases",
        ds.items.len(),
        ds.users.len(),
        split.train.iter().map(Vec::len).sum::<usize>(),
        split.valid.len(),
        split.test.len()
    );
    if let Err(e) = split.check_minimums() {
        if !a.force {
            bail!("{e} (--force trains anyway; the metrics will not mean anything)");
        }
        eprintln!("warning: {e}; training anyway (--force)");
    }
    Ok(Prepared { ds, feats, split })
}

/// The model and training configuration: defaults, then `--quick`, then each flag.
/// `--dropout`: a number in [0, 0.9].
fn parse_dropout(s: &str) -> Result<f32, String> {
    let p: f32 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=0.9).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not in [0, 0.9]"))
    }
}

/// `--weight-decay`: a finite number ≥ 0.
fn parse_weight_decay(s: &str) -> Result<f32, String> {
    let w: f32 = s.parse().map_err(|e| format!("{e}"))?;
    if w.is_finite() && w >= 0.0 {
        Ok(w)
    } else {
        Err(format!("{w} is not a finite number ≥ 0"))
    }
}

/// `--ema`: a number in [0, 1).
fn parse_ema(s: &str) -> Result<f32, String> {
    let d: f32 = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    if (0.0..1.0).contains(&d) {
        Ok(d)
    } else {
        Err(format!("{d} is not in [0, 1)"))
    }
}

/// `--mlp-hidden`: one width, in 1..=[`MAX_DIM`] (the model config's limit).
pub(crate) fn parse_width(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_DIM).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{n} is not a width in 1..={MAX_DIM}")),
        Err(e) => Err(format!("{s:?}: {e}")),
    }
}

fn parse_val_cases(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("at least 1 validation case".into()),
        Err(e) => Err(format!("{s:?}: {e}")),
    }
}

pub(crate) fn parse_id_dropout(s: &str) -> Result<f32, String> {
    parse_ema(s)
}

fn train_plan(a: &TrainArgs, n_items: usize, feats: &features::Features) -> TrainPlan {
    let buckets = FeatureConfig::default().token_buckets;
    let mut config = ModelConfig::default_for(n_items, feats.categories.len(), buckets);
    let mut tcfg = TrainConfig {
        seed: a.seed,
        ..TrainConfig::default()
    };
    let (mut no_baselines, mut max_eval) = (a.no_baselines, a.max_eval_users);
    if a.quick {
        config.dim = 32;
        config.ffn_dim = 64;
        config.mlp_hidden = vec![32, 16];
        tcfg.epochs = 4;
        no_baselines = true;
        max_eval = Some(max_eval.unwrap_or(500));
    }
    config.dim = a.dim.unwrap_or(config.dim);
    config.mlp_hidden = a.mlp_hidden.clone().unwrap_or(config.mlp_hidden);
    if let Some(b) = a.blocks {
        config.set_blocks(b.into());
    }
    tcfg.epochs = a.epochs.unwrap_or(tcfg.epochs);
    tcfg.negatives = a.negatives.unwrap_or(tcfg.negatives);
    tcfg.lr = a.lr.unwrap_or(tcfg.lr);
    tcfg.batch_size = a.batch_size.unwrap_or(tcfg.batch_size);
    tcfg.patience = a.patience.unwrap_or(tcfg.patience);
    tcfg.dropout = a.dropout.unwrap_or(tcfg.dropout);
    tcfg.weight_decay = a.weight_decay.unwrap_or(tcfg.weight_decay);
    tcfg.ema = a.ema.unwrap_or(tcfg.ema);
    tcfg.id_dropout = a.id_dropout.unwrap_or(tcfg.id_dropout);
    tcfg.neighbour_mix = a.neighbour_mix.unwrap_or(tcfg.neighbour_mix);
    tcfg.zero_cold_rows = a.zero_cold_rows;
    tcfg.refit_epochs = a.refit_epochs.unwrap_or(tcfg.refit_epochs);
    TrainPlan {
        config,
        tcfg,
        no_baselines,
        max_eval,
    }
}

/// Trains the deep part with a progress bar (early stopping on `valid`), then refits it
/// on `refit` ([`train::train_refit`]; none when empty or `tcfg.refit_epochs` is 0), and
/// logs the epochs.
fn train_deep(
    model: &mut Model,
    split: &Split,
    refit: &[Vec<HistoryEvent>],
    tcfg: &TrainConfig,
    valid: &[EvalCase],
    proto: Protocol,
) -> (train::TrainReport, Option<Model>) {
    let n_items = model.config.n_items;
    let mut validate = |m: &Model| val_ndcg10(m, valid, n_items, proto);
    let refits = if refit.is_empty() {
        0
    } else {
        tcfg.refit_epochs
    };
    let n_batches = train::batches_per_epoch(&split.train, tcfg) as u64;
    let pb = bar(n_batches * (tcfg.epochs + refits) as u64, "training");
    let mut progress = |p: &train::TrainProgress| {
        pb.inc(1);
        pb.set_message(format!("ep {} loss {:.3}", p.epoch, p.loss));
    };
    let (report, chosen) = train::train_refit(
        model,
        &split.train,
        refit,
        tcfg,
        &mut validate,
        &mut progress,
    );
    pb.finish_and_clear();
    for s in &report.epochs {
        eprintln!(
            "epoch {:>2}: loss {:.4}  val NDCG@10 {:.4}  {:.1}s  {:.0} examples/s",
            s.epoch,
            s.loss,
            s.val_ndcg10,
            s.seconds,
            s.examples as f64 / s.seconds.max(1e-9)
        );
    }
    eprintln!(
        "kept epoch {} (val NDCG@10 {:.4})",
        report.best_epoch, report.best_val_ndcg10
    );
    for s in &report.refit {
        eprintln!(
            "refit epoch {:>2} (validation targets trained on, no validation): loss {:.4}  {:.1}s  {:.0} examples/s",
            s.epoch,
            s.loss,
            s.seconds,
            s.examples as f64 / s.seconds.max(1e-9)
        );
    }
    eprintln!("{} cold items get content-only vectors", report.cold_items);
    (report, chosen)
}

/// The wide part: a transition memory, blended into the logit with a weight tuned on
/// validation NDCG@10 ([`blend::search_blend`]; no memory stays the choice unless a blend
/// beats it). Its lists: with baselines, the tuned item-kNN's neighbour lists or plain
/// transition counts, whichever validates better; without (quick runs), the counts.
/// Returns where the chosen lists came from ([`refit_memory`] builds them again).
fn tune_memory_blend(
    model: &mut Model,
    split: &Split,
    knn: Option<&KnnTuned>,
    valid: &[EvalCase],
    n_items: usize,
    proto: Protocol,
) -> MemorySource {
    let counts = BlendGrid {
        base: Memory::build(&split.train, n_items, MemoryParams::default()),
        last_ls: vec![1, 2, 3],
        decay: 0.5,
    };
    let mut grids = Vec::new();
    let mut names = Vec::new();
    if let Some(k) = knn {
        grids.push(BlendGrid {
            base: Memory::from_lists((0..n_items as u32).map(|i| k.ranker.neighbors(i).to_vec())),
            last_ls: vec![1, k.params.last_l.max(1), 3],
            decay: k.params.decay,
        });
        names.push("the tuned item-kNN's lists");
    }
    grids.push(counts);
    names.push("transition counts");
    let choice = with_spinner("tuning the memory blend on validation", || {
        blend::search_blend(model, &grids, valid, n_items, proto)
    });
    model.memory = choice.memory;
    let source = match choice.best {
        Some(b) if knn.is_some() && b.grid == 0 => MemorySource::KnnLists,
        _ => MemorySource::Counts,
    };
    let deep_val = choice.deep_val_ndcg10;
    let best_of = |g: usize| {
        choice
            .trials
            .iter()
            .filter(|t| t.grid == g)
            .map(|t| t.val_ndcg10)
            .fold(f64::NEG_INFINITY, f64::max)
    };
    if grids.len() > 1 {
        let tried: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(g, n)| format!("{n} {:.4}", best_of(g)))
            .collect();
        eprintln!(
            "memory blend, best val NDCG@10 per memory: {}",
            tried.join(", ")
        );
    }
    match choice.best {
        Some(b) => eprintln!(
            "transition memory ({}): {} entries, blend alpha {} over the last {} event(s): val NDCG@10 {:.4} (deep part alone {deep_val:.4})",
            names[b.grid],
            model.memory.as_ref().map_or(0, |m| m.items.len()),
            b.alpha,
            b.last_l,
            b.val_ndcg10
        ),
        None => eprintln!("transition memory: no blend beats the deep part alone ({deep_val:.4}); not used"),
    }
    source
}

/// Where the memory's neighbour lists come from ([`tune_memory_blend`]'s grids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemorySource {
    /// The tuned item-kNN's lists.
    KnnLists,
    /// Plain transition counts ([`MemoryParams::default`]).
    Counts,
}

/// `memory` with its lists built again from `seqs` (the refit's sequences) from the same
/// source with the same settings; its blend (`alpha`, `last_l`, `decay`) kept.
fn refit_memory(
    memory: &Memory,
    source: MemorySource,
    knn: Option<&KnnTuned>,
    seqs: &[Vec<HistoryEvent>],
    n_items: usize,
) -> Memory {
    let lists = match (source, knn) {
        (MemorySource::KnnLists, Some(k)) => {
            let fitted = baselines::ItemKnn::fit(seqs, n_items, k.params);
            Memory::from_lists((0..n_items as u32).map(|i| fitted.neighbors(i).to_vec()))
        }
        _ => Memory::build(seqs, n_items, MemoryParams::default()),
    };
    Memory {
        alpha: memory.alpha,
        last_l: memory.last_l,
        decay: memory.decay,
        ..lists
    }
}

/// Writes the training curve into the artifacts directory; returns its path.
fn write_curve(artifacts: &Path, report: &train::TrainReport) -> Result<PathBuf> {
    fs::create_dir_all(artifacts).with_context(|| format!("creating {}", artifacts.display()))?;
    let curve_path = artifacts.join("training-curve.svg");
    let mut svg = Vec::new();
    train::write_curve_svg(report, &mut svg)?;
    write_file(&curve_path, &svg)?;
    Ok(curve_path)
}

/// The test results: per protocol, every ranker's metrics (JSON) and the markdown tables.
struct TestResults {
    json: BTreeMap<String, serde_json::Value>,
    md: String,
}

/// Evaluates the model, its deep part, its dot product and the baselines on the test
/// cases under the three protocols, printing each table.
fn evaluate_on_test(
    model: &Model,
    baselines: &[Box<dyn Ranker>],
    train: &[Vec<HistoryEvent>],
    test: &[EvalCase],
    n_items: usize,
    seed: u64,
) -> Result<TestResults> {
    let [model_ranker, deep_ranker] = model_rankers(model);
    let dot_ranker = DotRanker {
        model,
        item_vectors: deep_ranker.item_vectors(),
    };
    let mut all: Vec<&dyn Ranker> = vec![&model_ranker, &deep_ranker, &dot_ranker];
    all.extend(baselines.iter().map(|b| b.as_ref()));
    let protocols = [
        (
            "full ranking",
            Protocol::Full {
                exclude_seen: false,
            },
        ),
        (
            "full ranking, seen items excluded",
            Protocol::Full { exclude_seen: true },
        ),
        (
            "sampled (100 negatives, SASRec protocol)",
            Protocol::Sampled {
                negatives: 100,
                seed,
            },
        ),
    ];
    let mut results = TestResults {
        json: BTreeMap::new(),
        md: String::new(),
    };
    let segments = Segments::by_target_frequency(train, test, n_items, &FREQUENCY_EDGES);
    let cmps = compare(
        &all,
        test,
        n_items,
        &protocols.map(|(_, p)| p),
        Some(&segments),
    );
    for ((title, protocol), cmp) in protocols.iter().zip(&cmps) {
        let table = cmp.table();
        println!("\n## {title} ({} test users)\n\n{table}", test.len());
        results.md.push_str(&format!(
            "### {title} ({} test users)\n\n{table}\n",
            test.len()
        ));
        if *protocol == (Protocol::Full { exclude_seen: true }) {
            let md = segment_section(title, cmp);
            print!("\n{md}");
            results.md.push_str(&md);
        }
        if *title == "full ranking" {
            results.md.push_str(&cmp.versus_model());
        }
        results
            .json
            .insert(title.to_string(), serde_json::to_value(&cmp.rows)?);
    }
    Ok(results)
}

/// The markdown section of [`Comparison::segment_table`] for the comparison titled
/// `title`: NDCG@10 by how often the test target occurs in the training sequences
/// ([`Segments::by_target_frequency`] with [`FREQUENCY_EDGES`]).
fn segment_section(title: &str, cmp: &Comparison) -> String {
    format!(
        "### {title}: NDCG@10 by the target's events in training\n\n{}\n",
        cmp.segment_table()
    )
}

/// Writes `results.md` and `metrics.json` into the artifacts directory.
fn write_results(artifacts: &Path, results: &TestResults) -> Result<()> {
    write_file(&artifacts.join("results.md"), results.md.as_bytes())?;
    write_file(
        &artifacts.join("metrics.json"),
        serde_json::to_string_pretty(&results.json)?.as_bytes(),
    )
}

/// A weight file's bytes at `quant` and format `version`; for int8 with the item content
/// folded into the `item.id` rows first ([`Model::fold_item_content`]: one rounding of
/// each item vector, and a browser load that keeps the rows as stored).
fn weight_file_bytes(mut wf: WeightFile, quant: Quantization, version: u32) -> Result<Vec<u8>> {
    if quant == Quantization::Int8 {
        Model::fold_item_content(&mut wf).context("folding the item content into item.id")?;
    }
    Ok(wf.to_bytes_as(quant, version)?)
}

fn cmd_quantize(model: &Path, to: Quantization, out: &Path, format_version: u32) -> Result<()> {
    // Every tensor is re-written, the `search.index` byte section (U8) as it is.
    let wf = read_weights(model)?;
    let search = if wf.tensors.contains_key(SEARCH_INDEX_TENSOR) {
        "search index kept"
    } else {
        "no search index"
    };
    let bytes = weight_file_bytes(wf, to, format_version)?;
    write_file(out, &bytes)?;
    println!(
        "wrote {} ({} bytes, {to:?}, format version {format_version}, {search})",
        out.display(),
        bytes.len()
    );
    Ok(())
}

/// `vitrine memory`: the loaded engine's resident structures, largest first as listed
/// by [`Recommender::memory_report`], in MiB.
fn cmd_memory(path: &Path) -> Result<()> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let t = Instant::now();
    let rec = Recommender::from_bytes(&bytes)
        .with_context(|| format!("loading weight file {}", path.display()))?;
    let secs = t.elapsed().as_secs_f64();
    let mib = |b: usize| b as f64 / 1048576.0;
    println!(
        "{}: {} items, {:?}, file {:.1} MiB, loaded in {secs:.2} s",
        path.display(),
        rec.n_items(),
        rec.metadata.quantization,
        mib(bytes.len())
    );
    drop(bytes);
    let report = rec.memory_report();
    let total: usize = report.iter().map(|(_, b)| b).sum();
    for (part, b) in &report {
        println!("  {part:<32} {:>9.1} MiB", mib(*b));
    }
    println!("  {:<32} {:>9.1} MiB", "total (heap payload)", mib(total));
    Ok(())
}

fn cmd_inspect(path: &Path) -> Result<()> {
    let (wf, bytes) = read_weights_and_bytes(path)?;
    let m = &wf.metadata;
    use sha2::Digest;
    let file_hash = vitrine::format::to_hex(&sha2::Sha256::digest(&bytes));
    println!(
        "integrity (SHA-256 of the whole file, for load(url, {{ integrity }})): sha256-{file_hash}"
    );
    println!(
        "{}: {} bytes, format v{}, {:?}, content hash {}",
        path.display(),
        bytes.len(),
        m.format_version,
        m.quantization,
        m.content_hash
    );
    println!("model: {}", serde_json::to_string(&m.model)?);
    println!(
        "catalog: {} items, {} categories",
        m.items.ids.len(),
        m.categories.len()
    );
    println!(
        "training: {}",
        serde_json::to_string(&m.training.get("best_epoch"))?
    );
    let mut params = 0usize;
    for (name, t) in &wf.tensors {
        let n: usize = t.shape.iter().product();
        params += n;
        println!("  {name:<28} {:?}", t.shape);
    }
    println!("{} tensors, {params} values", wf.tensors.len());
    let model = Model::from_weights(&wf).context("building the model")?;
    println!("model builds: ok");
    println!("{}", kinds_summary(&model));
    if let Some(w) = m.training.get("kinds").and_then(|k| k.get("weights")) {
        println!(
            "target weights by kind (training): {}",
            serde_json::to_string(w)?
        );
    }
    Ok(())
}

/// One line: the trained event kinds and the row each untrained kind reads (`vitrine
/// inspect`; the same facts as the browser's `modelInfo().kinds`).
fn kinds_summary(model: &Model) -> String {
    let map = model.kind_map();
    let Some(trained) = &map.trained else {
        return "event kinds: trained kinds not recorded (a file from before the field): every kind reads its own row, as stored".into();
    };
    let mapped = map.mapped();
    if mapped.is_empty() {
        return format!(
            "event kinds: trained {}; each reads its own row",
            kind_names(trained)
        );
    }
    let reads: Vec<String> = mapped
        .iter()
        .map(|&(k, r)| format!("{} reads {}", kind_name(k), kind_name(r)))
        .collect();
    format!(
        "event kinds: trained {}; untrained: {}",
        kind_names(trained),
        reads.join(", ")
    )
}

/// NDCG@10 of the model on validation cases under the full-ranking protocol `proto`.
fn val_ndcg10(m: &Model, valid: &[EvalCase], n_items: usize, proto: Protocol) -> f64 {
    let ranker = ModelRanker::new(m);
    let r = eval::evaluate(&ranker, valid, n_items, proto, &EvalOptions::default());
    r.get("NDCG@10").unwrap_or(0.0)
}

/// A deterministic sample of at most `n` cases (a seeded Fisher-Yates shuffle, the first
/// `n` kept in their original order).
fn sample_cases(cases: &[EvalCase], n: usize, seed: u64) -> Vec<EvalCase> {
    if cases.len() <= n {
        return cases.to_vec();
    }
    let mut idx: Vec<usize> = (0..cases.len()).collect();
    let mut rng = SplitMix64::new(seed ^ 0x9E37_79B9_7F4A_7C15);
    for i in (1..idx.len()).rev() {
        idx.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut pick: Vec<usize> = idx[..n].to_vec();
    pick.sort_unstable();
    pick.into_iter().map(|i| cases[i].clone()).collect()
}

fn cmd_eval(a: EvalArgs) -> Result<()> {
    let wf = read_weights(&a.model)?;
    let ds = load_data(&a.data)?;
    let ids: Vec<&str> = ds.items.iter().map(|i| i.id.as_str()).collect();
    if wf.metadata.items.ids != ids {
        bail!("the dataset's catalog differs from the model's: evaluate on the data the model was trained on");
    }
    let model = Model::from_weights(&wf)?;
    let split = make_split(&ds, &a.data);
    let n_items = ds.items.len();
    let [model_ranker, deep_ranker] = model_rankers(&model);
    let dot_ranker = DotRanker {
        model: &model,
        item_vectors: deep_ranker.item_vectors(),
    };
    let boxed: Vec<Box<dyn Ranker>> = if a.baselines {
        let proto = ValSeen::Auto.protocol(&split.train);
        // A refit model's baselines are refitted the same way (`vitrine train`).
        let refit = refit_sequences_of(&wf, &split, &ds);
        tune_baselines(&split, n_items, a.seed, None, proto, refit.as_deref())
    } else {
        Vec::new()
    };
    let mut all: Vec<&dyn Ranker> = vec![&model_ranker, &deep_ranker, &dot_ranker];
    all.extend(boxed.iter().map(|b| b.as_ref()));
    let mut protocols: Vec<(&str, Protocol)> = Vec::new();
    let sampled_title;
    if a.protocol != ProtocolArg::Sampled {
        protocols.push((
            if a.exclude_seen {
                "full ranking, seen items excluded"
            } else {
                "full ranking"
            },
            Protocol::Full {
                exclude_seen: a.exclude_seen,
            },
        ));
    }
    if a.protocol != ProtocolArg::Full {
        sampled_title = format!("sampled ({} negatives)", a.negatives);
        protocols.push((
            &sampled_title,
            Protocol::Sampled {
                negatives: a.negatives as usize,
                seed: a.seed,
            },
        ));
    }
    let only: Vec<Protocol> = protocols.iter().map(|(_, p)| *p).collect();
    let segments =
        Segments::by_target_frequency(&split.train, &split.test, n_items, &FREQUENCY_EDGES);
    let cmps = compare(&all, &split.test, n_items, &only, Some(&segments));
    for ((title, protocol), cmp) in protocols.iter().zip(&cmps) {
        let table = cmp.table();
        println!("\n## {title} ({} test users)\n\n{table}", split.test.len());
        if matches!(protocol, Protocol::Full { .. }) {
            print!("\n{}", segment_section(title, cmp));
        }
    }
    if let Some(path) = &a.dump {
        let f = fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = std::io::BufWriter::new(f);
        for (_, p) in &protocols {
            eval::dump_rankings(&model_ranker, &split.test, n_items, *p, &mut w)?;
        }
        w.flush()?;
        println!("rankings written to {}", path.display());
    }
    Ok(())
}

fn cmd_recommend(a: RecommendArgs) -> Result<()> {
    let rec = load_recommender(&a.model)?;
    let now = unix_now();
    let history = views_of(&rec, &a.history, now)?;
    if let Some(json) = &a.page {
        let mut req: PageRequest =
            serde_json::from_str(json).context("--page is not a valid page request")?;
        for o in &mut req.shelves {
            o.now = o.now.or(Some(now));
        }
        let shelves = rec.page(&history, &req)?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&shelves)?);
        } else {
            for (j, recs) in shelves.iter().enumerate() {
                println!("shelf {j}");
                print_recommendations(recs);
            }
        }
        return Ok(());
    }
    let mut opts: RecommendOptions = options_or_default(a.options.as_deref(), "options")?;
    if a.options.is_none() || a.k != 10 {
        opts.k = a.k;
    }
    if a.context.is_some() {
        opts.context = a.context.clone();
    }
    if opts.now.is_none() {
        opts.now = Some(now);
    }
    let scorer = pollster::block_on(Scorer::new(
        &rec.plan,
        a.backend.into(),
        None,
        Hooks::native(),
    ));
    let t = Instant::now();
    // The browser's path: prepare (encode) → the scorer's head logits → finish.
    let prepared = rec.prepare(&history, &opts)?;
    let logits = match &prepared.query {
        Some(q) => pollster::block_on(scorer.scores(&rec.plan, q))
            .context("scoring head: the plan and query disagree")?,
        None => Vec::new(),
    };
    let recs = rec.finish(&prepared, &logits);
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&recs)?);
        return Ok(());
    }
    print_recommendations(&recs);
    eprintln!(
        "scored {} items in {ms:.1} ms ({})",
        rec.n_items(),
        scorer.name()
    );
    Ok(())
}

/// A result list as a table: rank, id, title, score, reasons.
fn print_recommendations(recs: &[vitrine::recommend::Recommendation]) {
    println!(
        "{:>3}  {:<10} {:<40} {:>7}  because",
        "#", "item", "title", "score"
    );
    for (i, r) in recs.iter().enumerate() {
        let why: Vec<String> = r.reasons.iter().map(reason_text).collect();
        let title: String = r.title.chars().take(40).collect();
        println!(
            "{:>3}  {:<10} {:<40} {:>7.4}  {}",
            i + 1,
            r.item,
            title,
            r.score,
            why.join(", ")
        );
    }
}

/// `--options` JSON parsed as `T` (the browser call's options object), else `T::default()`.
fn options_or_default<T: serde::de::DeserializeOwned + Default>(
    json: Option<&str>,
    what: &str,
) -> Result<T> {
    match json {
        Some(json) => serde_json::from_str(json)
            .with_context(|| format!("--options is not a valid {what} object")),
        None => Ok(T::default()),
    }
}

/// Reads and loads a weight file for serving (`recommend`, `search`).
fn load_recommender(path: &Path) -> Result<Recommender> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Recommender::from_bytes(&bytes).with_context(|| format!("loading {}", path.display()))
}

/// The current time in Unix seconds (0 if the clock is before 1970).
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `--history`'s item ids (oldest first) as views a minute apart, ending before `now`.
fn views_of(rec: &Recommender, ids: &[String], now: f64) -> Result<Vec<HistoryEvent>> {
    let ids: Vec<&str> = ids
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    let mut history = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let item = rec
            .item_index(id)
            .with_context(|| format!("--history: unknown item id {id:?}"))?;
        history.push(HistoryEvent {
            item,
            kind: EventKind::View,
            at: now - 60.0 * (ids.len() - i) as f64,
        });
    }
    Ok(history)
}

fn reason_text(r: &Reason) -> String {
    match r {
        Reason::History {
            item,
            event,
            weight,
            ..
        } => format!(
            "{} {item} ({:.0}%)",
            format!("{event:?}").to_lowercase(),
            weight * 100.0
        ),
        Reason::Similar { item, .. } => format!("similar to {item}"),
        Reason::BoughtTogether { item, orders, .. } => {
            format!(
                "bought together with {item} in {orders} order{}",
                plural(*orders)
            )
        }
        Reason::Popular => "popular".into(),
        Reason::Promoted => "promoted".into(),
        Reason::Boosted => "boosted".into(),
        Reason::New => "new".into(),
    }
}

/// `"s"` unless `n` is 1.
fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn cmd_bench(a: BenchArgs) -> Result<()> {
    // Training throughput on the default dataset (a short run).
    let ds = load_data(&DataArgs::default())?;
    let fcfg = FeatureConfig::default();
    let feats = features::build_features(&ds.items, &fcfg);
    let config =
        ModelConfig::default_for(ds.items.len(), feats.categories.len(), fcfg.token_buckets);
    bench_training(&ds, &config, &feats.table, a.train_users)?;
    let catalogs = bench_catalogs(&a, &config, &feats.table)?;
    println!(
        "{:<40} {:>8} {:>10} {:>10} {:>10}",
        "catalog", "items", "kernel", "p50 ms", "mean ms"
    );
    for (name, model) in &catalogs {
        bench_scoring(name, model, a.requests);
    }
    Ok(())
}

/// One training epoch over the first `users` users of the default dataset: prints its
/// throughput.
fn bench_training(
    ds: &Dataset,
    config: &ModelConfig,
    table: &features::ItemFeatureTable,
    users: usize,
) -> Result<()> {
    let mut model = Model::new(config.clone(), table.clone(), 1)?;
    let split = eval::leave_last_out(&ds.sequences);
    let users: Vec<Vec<HistoryEvent>> = split.train.iter().take(users).cloned().collect();
    let tcfg = TrainConfig {
        epochs: 1,
        ..TrainConfig::default()
    };
    let pb = spinner("measuring training throughput (one epoch)");
    let rep = train::train(&mut model, &users, &tcfg, &mut |_| 0.0, &mut |_| {});
    pb.finish_and_clear();
    println!(
        "training: {:.0} examples/s (next-item positions; softmax over the target and {} sampled of {} items; {} threads, {} users)",
        rep.examples_per_sec,
        tcfg.negatives,
        ds.items.len(),
        rayon::current_num_threads(),
        users.len()
    );
    Ok(())
}

/// The catalogs to score: the default one (from the weight file if present, else an
/// untrained model) and the synthetic sizes asked for.
fn bench_catalogs(
    a: &BenchArgs,
    config: &ModelConfig,
    table: &features::ItemFeatureTable,
) -> Result<Vec<(String, Model)>> {
    let mut catalogs: Vec<(String, Model)> = Vec::new();
    if a.model.exists() {
        catalogs.push((
            format!("default ({})", a.model.display()),
            Model::from_weights(&read_weights(&a.model)?)?,
        ));
    } else {
        catalogs.push((
            "default (untrained)".into(),
            Model::new(config.clone(), table.clone(), 1)?,
        ));
    }
    for &n in &a.items {
        let table = synthetic_table(n, config);
        let cfg = ModelConfig {
            n_items: n,
            ..config.clone()
        };
        catalogs.push((format!("synthetic {n}"), Model::new(cfg, table, 2)?));
    }
    Ok(catalogs)
}

/// Scoring latency of one catalog (a 20-event history, top 10), scalar kernel and the
/// best CPU kernel: prints the median and mean over `requests` requests.
fn bench_scoring(name: &str, model: &Model, requests: usize) {
    let plan = model.head_plan(model.item_vectors());
    let hist: Vec<HistoryEvent> = (0..20)
        .map(|i| HistoryEvent {
            item: (i * 37 % model.config.n_items) as u32,
            kind: EventKind::View,
            at: i as f64,
        })
        .collect();
    for kernel in [CpuKernel::Scalar, CpuKernel::best()] {
        let mut out = vec![0f32; model.config.n_items];
        let mut times = Vec::with_capacity(requests);
        for _ in 0..requests {
            let t = Instant::now();
            let q = score::encode(model, &plan, &hist).query;
            kernel.scores(&plan, &q, &mut out);
            let top = vitrine::kernels::top_k(&out, 10);
            std::hint::black_box(top);
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        println!(
            "{:<40} {:>8} {:>10} {:>10.2} {:>10.2}",
            name,
            model.config.n_items,
            kernel.name(),
            times[times.len() / 2],
            mean
        );
        if kernel == CpuKernel::best() {
            break;
        }
    }
}

/// Category names of `vitrine synth` (16, the synthetic model's category count).
const SYNTH_CATEGORIES: [&str; 16] = [
    "kitchen",
    "garden",
    "lighting",
    "stationery",
    "toys",
    "bags",
    "jewellery",
    "bath",
    "decor",
    "party",
    "storage",
    "textiles",
    "tableware",
    "christmas",
    "gifts",
    "crafts",
];

/// A deterministic synthetic title for item `i`: three or four words drawn from word
/// lists by [`SplitMix64`] seeded with `i` (so the words vary like a real catalogue's,
/// with a Zipf-like skew from drawing the first list twice).
fn synthetic_title(i: usize) -> String {
    const ADJ: [&str; 24] = [
        "red", "blue", "green", "white", "black", "pink", "gold", "silver", "vintage", "retro",
        "rustic", "modern", "small", "large", "mini", "jumbo", "floral", "spotty", "striped",
        "heart", "star", "french", "classic", "painted",
    ];
    const MATERIAL: [&str; 12] = [
        "glass",
        "wooden",
        "ceramic",
        "paper",
        "metal",
        "enamel",
        "cotton",
        "felt",
        "tin",
        "porcelain",
        "wicker",
        "velvet",
    ];
    const NOUN: [&str; 32] = [
        "mug", "candle", "holder", "bag", "box", "lantern", "frame", "clock", "cushion", "tray",
        "bowl", "plate", "jar", "bottle", "sign", "ornament", "wreath", "garland", "notebook",
        "pencil", "tin", "basket", "doorstop", "hook", "mirror", "vase", "teapot", "coaster",
        "apron", "bunting", "card", "magnet",
    ];
    let mut rng = SplitMix64::new(i as u64 ^ 0x5eed_5eed);
    let mut pick = |n: usize| rng.below(n as u64) as usize;
    let a = pick(ADJ.len()).min(pick(ADJ.len()));
    let m = pick(MATERIAL.len());
    let n = pick(NOUN.len()).min(pick(NOUN.len()));
    let mut title = format!("{} {} {}", ADJ[a], MATERIAL[m], NOUN[n]);
    if pick(3) == 0 {
        title = format!("{} {title}", ADJ[pick(ADJ.len())]);
    }
    title.to_uppercase()
}

/// A synthetic catalog's features: categories, prices and two title tokens per item.
fn synthetic_table(n: usize, config: &ModelConfig) -> vitrine::features::ItemFeatureTable {
    vitrine::features::ItemFeatureTable {
        category: (0..n).map(|i| (i % config.n_categories) as u32).collect(),
        price: (0..n).map(|i| (i % 100) as f32 / 100.0).collect(),
        price_missing: vec![0.0; n],
        token_offsets: (0..=n as u32).map(|i| i * 2).collect(),
        tokens: (0..2 * n)
            .map(|i| (i * 7919 % config.n_token_buckets) as u32)
            .collect(),
    }
}

fn cmd_synth(
    n: usize,
    out: &Path,
    quant: Quantization,
    mlp_hidden: Option<Vec<usize>>,
    blocks: Option<BlocksArg>,
) -> Result<()> {
    if n == 0 {
        bail!("--items must be at least 1");
    }
    let categories: Vec<String> = SYNTH_CATEGORIES.iter().map(|c| c.to_string()).collect();
    let mut config = ModelConfig::default_for(n, categories.len(), 4096);
    config.mlp_hidden = mlp_hidden.unwrap_or(config.mlp_hidden);
    if let Some(b) = blocks {
        config.set_blocks(b.into());
    }
    let model = Model::new(config.clone(), synthetic_table(n, &config), 7)?;
    let items: Vec<ItemRecord> = (0..n)
        .map(|i| ItemRecord {
            id: format!("S{i}"),
            title: synthetic_title(i),
            category: None,
            price: Some(1.0 + (i % 100) as f32),
            added: Some(1.29e9 + i as f64),
        })
        .collect();
    let pop = (0..n).map(|i| 1.0 / (1.0 + i as f32)).collect();
    let mut wf = model.to_weight_file(
        data::catalog(&items, model.features.category.clone()),
        categories,
        pop,
        serde_json::json!({}),
        serde_json::json!({ "synthetic": true }),
        serde_json::json!({}),
    );
    let index_bytes = attach_index(&mut wf).context("building the search index")?;
    let bytes = weight_file_bytes(wf, quant, FORMAT_VERSION)?;
    write_file(out, &bytes)?;
    println!(
        "wrote {} ({n} synthetic items, {quant:?}, {} bytes; search index {index_bytes} bytes)",
        out.display(),
        bytes.len()
    );
    Ok(())
}
