//! `qfx import onnx`: a float model trained elsewhere becomes a qfx float run.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use qfx_train::config::Normalize;

/// What to import.
#[derive(Subcommand)]
pub enum ImportCommand {
    /// An ONNX model (torch.onnx.export, tf2onnx; opset 13 and later) as a float run.
    #[command(after_help = "Examples:\n  \
        qfx import onnx cnn.onnx --run runs/cnn-float --normalize 0.2860,0.3530\n  \
        qfx import onnx mlp.onnx --run runs/mlp-float --input-shape 1,28,28\n  \
        qfx import onnx resnet.onnx --run runs/r --normalize 0.491:0.482:0.447,0.247:0.243:0.262\n\n\
        Then: qfx eval --checkpoint runs/cnn-float, qfx ptq --from runs/cnn-float --run runs/ptq4 \
        --bits 4, qfx train --from runs/cnn-float --run runs/qat4 --bits 4 --epochs 3, qfx export \
        hls, qfx verify-hls.")]
    Onnx(ImportOnnx),
}

/// Arguments of `qfx import onnx`.
#[derive(Args)]
pub struct ImportOnnx {
    /// The ONNX file (weights stored as external data are read from beside it).
    #[arg(value_name = "MODEL.onnx")]
    model: PathBuf,
    /// The new run directory (refused where a run already is).
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// The pixel normalization the model was trained with, `MEAN,STD`: x = (p/255 − MEAN)/STD.
    /// Per channel: `M1:M2:M3,S1:S2:S3`. Default 0,1 (x = p/255).
    #[arg(long, value_name = "MEAN,STD")]
    normalize: Option<String>,
    /// The shape of one image, `C,H,W`, for a model whose ONNX input is another shape of the
    /// same values (an MLP reading [N, 784] takes 1,28,28 images).
    #[arg(long, value_name = "C,H,W")]
    input_shape: Option<String>,
}

pub fn run(cmd: ImportCommand) -> Result<()> {
    let ImportCommand::Onnx(args) = cmd;
    let normalize = match &args.normalize {
        Some(s) => parse_normalize(s)?,
        None => Normalize {
            mean: vec![0.0],
            std: vec![1.0],
        },
    };
    let input_shape = args
        .input_shape
        .as_deref()
        .map(|s| {
            s.split(',')
                .map(|d| d.trim().parse::<usize>())
                .collect::<Result<Vec<usize>, _>>()
                .with_context(|| format!("--input-shape wants sizes C,H,W, got {s:?}"))
        })
        .transpose()?;
    let options = qfx_onnx::Options { input_shape };
    let imported = qfx_onnx::import_file(&args.model, &options)
        .with_context(|| format!("cannot import {}", args.model.display()))?;
    let checkpoint = imported
        .write_run(&args.run, normalize.clone())
        .with_context(|| format!("cannot write the run {}", args.run.display()))?;
    let params: usize = imported.weights.iter().map(|t| t.data.len()).sum();
    outln!(
        "imported {} (opset {}{}): {} layers, {params} weights, input {:?}, output {}",
        args.model.display(),
        imported.opset,
        if imported.producer.is_empty() {
            String::new()
        } else {
            format!(", written by {}", imported.producer)
        },
        imported.spec.layers.len(),
        imported.spec.input,
        imported
            .spec
            .resolve()
            .map(|g| format!("{:?}", g.output_shape()))
            .unwrap_or_default()
    );
    for note in &imported.notes {
        outln!("  {note}");
    }
    outln!(
        "wrote the float run {} (checkpoint {}; normalization mean {:?}, std {:?})",
        args.run.display(),
        checkpoint.display(),
        normalize.mean,
        normalize.std
    );
    outln!(
        "next: `qfx eval --checkpoint {run}`, `qfx ptq --from {run} --run <DIR> --bits 4`, `qfx \
         train --from {run} --run <DIR> --bits 4 --epochs 3`",
        run = args.run.display()
    );
    Ok(())
}

/// `MEAN,STD`, each one number or one per channel separated by `:`.
fn parse_normalize(s: &str) -> Result<Normalize> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [m, d] = parts[..] else {
        bail!("--normalize wants MEAN,STD (per channel: M1:M2:M3,S1:S2:S3), got {s:?}");
    };
    let list = |what: &str, text: &str| -> Result<Vec<f32>> {
        text.split(':')
            .map(|v| {
                v.trim()
                    .parse::<f32>()
                    .with_context(|| format!("--normalize {what} {v:?} is not a number"))
            })
            .collect()
    };
    let normalize = Normalize {
        mean: list("mean", m)?,
        std: list("std", d)?,
    };
    if normalize.mean.iter().any(|v| !v.is_finite())
        || normalize.std.iter().any(|v| !(v.is_finite() && *v > 0.0))
    {
        bail!("--normalize: means must be finite and standard deviations positive, got {s:?}");
    }
    Ok(normalize)
}
