//! `qfx export verilog`, `qfx verify-rtl` and `qfx synth`: the Verilog back end (`qfx-rtl`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use qfx_rtl::{Architecture, Multipliers, RtlOptions, SynthOptions};

use crate::hls_cmd::{load_ir, preprocess_of, print_score, verify_inputs};

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
    /// auto: streaming for image networks with convolutions or pooling whose every layer
    /// streams (square convolutions with one stride and padding, no dilation or groups; square
    /// max pooling), fully unrolled otherwise; unrolled: every value at once, one inference per
    /// clock; stream: one pixel per clock.
    #[arg(long, value_enum, default_value_t = ArchitectureChoice::Auto)]
    architecture: ArchitectureChoice,
}

/// How tensors move through the design.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ArchitectureChoice {
    /// Streaming for image networks whose layers all stream, unrolled otherwise.
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
    /// The dataset (IDX folder, CIFAR-10 binary folder, image folder, a table or signals file
    /// with default options), or a run configuration file (.toml) whose `data` is used; its
    /// test split is run.
    #[arg(long, value_name = "PATH")]
    data: PathBuf,
    /// How many test samples to run.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Pixel normalization `MEAN,STD` (x = (p/255 − MEAN)/STD), for a model IR that records
    /// none; refused when it records a different one.
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
    outln!(
        "wrote {} ({} files): {} layers, {how}",
        report.dir.display(),
        report.files.len(),
        d.layers.len(),
    );
    outln!(
        "sums of products: {built} adders ({shared} shared subexpressions; {plain} as plain \
         per-weight shift-and-add, {} saved), {} multipliers",
        plain.saturating_sub(built),
        d.layers.iter().map(|l| l.multipliers).sum::<u64>()
    );
    outln!(
        "next: `qfx verify-rtl --project {0} --data <DATASET>`, `qfx synth --project {0}`",
        report.dir.display()
    );
    Ok(())
}

pub fn run_verify(args: VerifyRtl) -> Result<()> {
    let model = load_ir(&args.project.join(qfx_rtl::IR_FILE))
        .with_context(|| format!("{} is not a qfx Verilog project", args.project.display()))?;
    let preprocess = preprocess_of(&model, args.normalize.as_deref())?;
    if args.samples == 0 {
        bail!("--samples must be at least 1");
    }
    // Only the test split is used: missing training batches do not matter here.
    let config = crate::train_cmd::data_argument(&args.data)?;
    let data = crate::train_cmd::load_data_with(&config, true)
        .with_context(|| format!("cannot load the dataset {}", args.data.display()))?;
    let inputs = verify_inputs(&model, &preprocess, data.test(), args.samples)?;
    errln!(
        "qfx: building {} with Verilator ...",
        args.project.display()
    );
    let report = qfx_rtl::verify(&args.project, &inputs)?;
    outln!("{report}");
    let what = "RTL simulation";
    print_score(
        &model,
        (data.test(), config.task()),
        &inputs,
        &report.engine_codes,
        what,
    );
    if report.mismatches > 0 {
        bail!(
            "{} of {} output values differ between the RTL simulation and the integer engine",
            report.mismatches,
            report.values
        );
    }
    outln!("bit-exact: 0 mismatches");
    Ok(())
}

pub fn run_synth(args: Synth) -> Result<()> {
    let options = SynthOptions {
        family: args.family,
    };
    errln!(
        "qfx: synthesizing {} with Yosys (synth_xilinx -family {}) ...",
        args.project.display(),
        options.family
    );
    let report = qfx_rtl::synth(&args.project, &options)?;
    print!("{report}");
    outln!("saved {}", args.project.join(qfx_rtl::SYNTH_FILE).display());
    Ok(())
}
