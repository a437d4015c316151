//! `qfx export verilog`, `qfx verify-rtl` and `qfx synth`: the Verilog back end (`qfx-rtl`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use qfx_ir::Preprocess;
use qfx_rtl::{Architecture, Multipliers, RtlOptions, SynthOptions};

use crate::hls_cmd::{load_ir, parse_normalize};

/// How constant products are built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MultiplierChoice {
    /// Shifts and adds, and a `*` (DSP) where both operands exceed --fabric-max-bits and the
    /// constant is not declared K-hot: the cost model's rule.
    DspRule,
    /// Every constant product as shifts and adds (no multiplier at all).
    ShiftAdd,
}

/// Arguments of `qfx export verilog`.
#[derive(Args)]
pub struct ExportVerilog {
    /// The model IR: a `.json` file, or a run directory containing `model.ir.json`.
    #[arg(long, value_name = "PATH")]
    checkpoint: PathBuf,
    /// Folder to write the project into: new, empty, or an earlier Verilog export (whose
    /// generated files are replaced). A folder holding other files is refused unless --force.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Write into DIR even if it holds files that no export wrote.
    #[arg(long)]
    force: bool,
    /// How constant products are built.
    #[arg(long, value_enum, default_value_t = MultiplierChoice::DspRule)]
    multipliers: MultiplierChoice,
    /// Operand width up to which a product stays in fabric (with --multipliers dsp-rule).
    #[arg(long, default_value_t = 10, value_name = "BITS")]
    fabric_max_bits: u32,
    /// Do not share common subexpressions across weight matrices (plain per-weight
    /// shift-and-add, for comparison).
    #[arg(long)]
    no_cse: bool,
    /// auto: streaming for networks with convolutions or pooling, fully unrolled otherwise;
    /// unrolled: every value at once, one inference per clock; stream: one pixel per clock.
    #[arg(long, value_enum, default_value_t = ArchitectureChoice::Auto)]
    architecture: ArchitectureChoice,
}

/// How tensors move through the design.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ArchitectureChoice {
    /// Streaming for image networks, unrolled otherwise.
    Auto,
    /// Fully unrolled.
    Unrolled,
    /// Streaming.
    Stream,
}

/// Arguments of `qfx verify-rtl`.
#[derive(Args)]
#[command(after_help = "Examples:\n  \
    qfx verify-rtl --project rtl/mlp --data data/fashion-mnist-subset --samples 200\n\n\
    Builds rtl/qfx_top.v with Verilator, streams the first N test images through it (one per \
    clock, converted to the input format as the ap_fixed float constructor does), and compares \
    every output code with the integer engine running the project's model.ir.json. Prints the \
    latency and the cycles per inference. Exits with status 1 on any mismatch.")]
pub struct VerifyRtl {
    /// A project written by `qfx export verilog`.
    #[arg(long, value_name = "DIR")]
    project: PathBuf,
    /// The dataset (IDX folder, CIFAR-10 binary folder or image folder); its test split is used.
    #[arg(long, value_name = "PATH")]
    data: PathBuf,
    /// How many test images to run.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Pixel normalization `MEAN,STD` (x = (p/255 − MEAN)/STD) when the IR records none.
    #[arg(long, value_name = "MEAN,STD")]
    normalize: Option<String>,
}

/// Arguments of `qfx synth`.
#[derive(Args)]
#[command(after_help = "Examples:\n  \
    qfx synth --project rtl/mlp\n  \
    qfx synth --project rtl/mlp --family xc7\n\n\
    Runs Yosys synth_xilinx on rtl/qfx_top.v (hierarchy kept: one module per layer; no I/O \
    buffers) and prints the LUT, FF, CARRY, DSP and BRAM counts per layer and in total. The \
    result is saved as synth.json in the project; `qfx report --rtl DIR` shows it next to the \
    estimate.")]
pub struct Synth {
    /// A project written by `qfx export verilog`.
    #[arg(long, value_name = "DIR")]
    project: PathBuf,
    /// synth_xilinx -family: xcup (UltraScale+), xcu, xc7, xc6s, xc6v.
    #[arg(long, default_value = "xcup")]
    family: String,
}

pub fn run_export(args: ExportVerilog) -> Result<()> {
    let model = load_ir(&args.checkpoint)?;
    let options = RtlOptions {
        multipliers: match args.multipliers {
            MultiplierChoice::DspRule => Multipliers::DspRule {
                fabric_max_bits: args.fabric_max_bits,
            },
            MultiplierChoice::ShiftAdd => Multipliers::ShiftAdd,
        },
        cse: !args.no_cse,
        architecture: match args.architecture {
            ArchitectureChoice::Auto => Architecture::Auto,
            ArchitectureChoice::Unrolled => Architecture::Unrolled,
            ArchitectureChoice::Stream => Architecture::Stream,
        },
        ..RtlOptions::default()
    };
    let report = qfx_rtl::export(&model, &args.out, &options, args.force)?;
    let d = &report.design;
    let (plain, built, shared): (u64, u64, u64) = d
        .layers
        .iter()
        .filter_map(|l| l.sum.as_ref())
        .fold((0, 0, 0), |(p, b, s), x| {
            (p + x.adders_plain, b + x.adders, s + x.shared)
        });
    let how = match d.timing.latency {
        Some(l) => format!("fully unrolled, latency {l} cycles, one inference per clock"),
        None => format!(
            "streaming, one pixel per clock, an inference every {} clocks",
            d.timing.frame_cycles
        ),
    };
    println!(
        "wrote {} ({} files): {} layers, {how}",
        report.dir.display(),
        report.files.len(),
        d.layers.len(),
    );
    println!(
        "sums of products: {built} adders ({shared} shared subexpressions; {plain} as plain \
         per-weight shift-and-add, {} saved), {} multipliers",
        plain.saturating_sub(built),
        d.layers.iter().map(|l| l.multipliers).sum::<u64>()
    );
    println!(
        "next: `qfx verify-rtl --project {0} --data <DATASET>`, `qfx synth --project {0}`",
        report.dir.display()
    );
    Ok(())
}

pub fn run_verify(args: VerifyRtl) -> Result<()> {
    let model = load_ir(&args.project.join(qfx_rtl::IR_FILE))
        .with_context(|| format!("{} is not a qfx Verilog project", args.project.display()))?;
    let preprocess: Preprocess = match (&args.normalize, &model.preprocess) {
        (Some(s), _) => parse_normalize(s)?,
        (None, Some(p)) => p.clone(),
        (None, None) => bail!(
            "the model IR records no input normalization; pass --normalize MEAN,STD \
             (the values used in training; 0,1 means x = p/255)"
        ),
    };
    if args.samples == 0 {
        bail!("--samples must be at least 1");
    }
    let partial = qfx_data::LoadOptions {
        allow_partial: true,
    };
    let data = qfx_data::load_with(&args.data, &partial)
        .with_context(|| format!("cannot load the dataset {}", args.data.display()))?;
    let test = &data.test;
    let shape = test.shape;
    let n_model: usize = model.input_shape.iter().product();
    if (model.input_shape.len() == 3 && model.input_shape[..] != shape[..])
        || n_model != test.image_len()
    {
        bail!(
            "the dataset's images are {:?} but the model expects {:?}",
            shape,
            model.input_shape
        );
    }
    let n = args.samples.min(test.len());
    if n == 0 {
        bail!("no test images to verify on");
    }
    if n < args.samples {
        eprintln!("qfx: only {n} test images available; verifying those");
    }
    let len = test.image_len();
    let inputs: Vec<Vec<f32>> = (0..n)
        .map(|i| preprocess.apply(&test.images[i * len..(i + 1) * len], shape))
        .collect();
    eprintln!(
        "qfx: building {} with Verilator ...",
        args.project.display()
    );
    let report = qfx_rtl::verify(&args.project, &inputs)?;
    println!("{report}");
    let classes = report.engine_codes.len() / n;
    if classes > 1 {
        let correct = report
            .engine_codes
            .chunks(classes)
            .zip(&test.labels)
            .filter(|(row, &label)| qfx_engine::argmax(row) == Some(label as usize))
            .count();
        println!(
            "integer engine (= RTL) accuracy on these {n} images: {:.2}%",
            100.0 * correct as f64 / n as f64
        );
    }
    if report.mismatches > 0 {
        bail!(
            "{} of {} output values differ between the RTL simulation and the integer engine",
            report.mismatches,
            report.values
        );
    }
    println!("bit-exact: 0 mismatches");
    Ok(())
}

pub fn run_synth(args: Synth) -> Result<()> {
    let options = SynthOptions {
        family: args.family,
    };
    eprintln!(
        "qfx: synthesizing {} with Yosys (synth_xilinx -family {}) ...",
        args.project.display(),
        options.family
    );
    let report = qfx_rtl::synth(&args.project, &options)?;
    print!("{report}");
    println!("saved {}", args.project.join(qfx_rtl::SYNTH_FILE).display());
    Ok(())
}
