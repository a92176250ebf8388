//! `vitrine export-onnx`: the model as ONNX graphs plus its tensors, for the benchmark
//! against ONNX Runtime Web and TensorFlow.js (`bench/engines/`). The graphs and the
//! math are [`vitrine::onnx`]'s; this file only reads the weight file and writes files.
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::{read_weights, with_spinner, write_file};
use vitrine::model::Model;

/// Arguments of `vitrine export-onnx`.
#[derive(Args)]
pub struct ExportOnnxArgs {
    /// The weight file.
    #[arg(long)]
    model: PathBuf,
    /// Output directory: `head.onnx` (input `u`, output `logits`), `model.onnx` (inputs
    /// `in.items`, `in.kinds`, `in.gaps`, `in.pos`; outputs `scores`, `indices`),
    /// `head-int8.onnx` and `model-int8.onnx` (the same over the int8 item vectors,
    /// ONNX Runtime's quantised `MatMulInteger` path), `tensors.json` + `tensors.bin`
    /// (every f32 initializer of `model.onnx`, for TF.js) and
    /// `reference.json` (vitrine's own results on a fixed history, its items by index and
    /// by id).
    #[arg(long)]
    out: PathBuf,
    /// How many items the whole model's `TopK` node returns.
    #[arg(long, default_value_t = 20)]
    k: usize,
}

/// Runs `vitrine export-onnx`.
pub fn cmd_export_onnx(a: ExportOnnxArgs) -> Result<()> {
    let file = read_weights(&a.model)?;
    let model = Model::from_weights(&file).context("building the model")?;
    let mut ex = with_spinner("building the graphs and the reference", || {
        vitrine::onnx::export(&model, a.k)
    })?;
    // The reference history's items by their store ids too, as a page records them.
    if let Some(events) = ex.reference["history"].as_array_mut() {
        for e in events {
            let id = (e["index"].as_u64())
                .and_then(|i| file.metadata.items.ids.get(i as usize))
                .context("reference history: an item outside the catalogue")?;
            e["id"] = id.into();
        }
    }
    if ex.has_memory {
        eprintln!(
            "note: the model has a transition memory; the ONNX graphs leave it out \
             (recommend() adds it to the head's logits)"
        );
    }
    let (manifest, blob) = ex.tensors();
    let files = [
        ("head.onnx", ex.head.to_bytes()?),
        ("model.onnx", ex.full.to_bytes()?),
        ("head-int8.onnx", ex.head_int8.to_bytes()?),
        ("model-int8.onnx", ex.full_int8.to_bytes()?),
        ("tensors.json", serde_json::to_vec(&manifest)?),
        ("tensors.bin", blob),
        ("reference.json", serde_json::to_vec(&ex.reference)?),
    ];
    for (name, bytes) in &files {
        write_file(&a.out.join(name), bytes)?;
    }
    eprintln!(
        "wrote {} ({} items, opset {}): {}",
        a.out.display(),
        model.config.n_items,
        vitrine::onnx::OPSET,
        files
            .iter()
            .map(|(n, b)| format!("{n} {:.1} MB", b.len() as f64 / 1e6))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
