//! `qfx`: the command-line front end. Every error funnels into one message and exit code here.

#[macro_use]
mod out;

mod demo;
mod exact;
mod fixed_cmd;
mod fixed_tour;
mod hls_cmd;
mod import_cmd;
mod plot;
mod report_cmd;
mod rtl_cmd;
mod train_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Trainable fixed-point quantization for FPGAs: bit-exact ap_fixed emulation.
#[derive(Parser)]
#[command(name = "qfx", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bit-exact ap_fixed arithmetic on numbers from stdin.
    #[command(subcommand)]
    Fixed(fixed_cmd::FixedCommand),
    /// The main job on the embedded data: float training, PTQ and QAT at a low bit width, a
    /// comparison table, then HLS export and bit-exact verification.
    Demo(demo::DemoArgs),
    /// Train a model in float or with quantization-aware training (QAT).
    Train(train_cmd::TrainArgs),
    /// Post-training quantization: calibrate every binary point of a float model, no training.
    Ptq(train_cmd::PtqArgs),
    /// Accuracy of a checkpoint (top-1/top-5), optionally with the bit-exact integer engine.
    Eval(train_cmd::EvalArgs),
    /// Per-layer formats, binary-point movement, value ranges and clipping, and plots of a run.
    Report(report_cmd::ReportArgs),
    /// Import a float model trained elsewhere (ONNX) as a qfx float run.
    #[command(subcommand)]
    Import(import_cmd::ImportCommand),
    /// Export a trained model (a Vitis HLS project or a Verilog design).
    #[command(subcommand)]
    Export(hls_cmd::ExportCommand),
    /// Check a generated HLS project bit for bit: C simulation (g++) vs the integer engine.
    VerifyHls(hls_cmd::VerifyHls),
    /// Check a generated Verilog design bit for bit: Verilator simulation vs the integer engine.
    VerifyRtl(rtl_cmd::VerifyRtl),
    /// Synthesize a generated Verilog design with Yosys and report LUT/FF/CARRY/DSP/BRAM.
    Synth(rtl_cmd::Synth),
}

fn main() -> ExitCode {
    qfx_train::kernels::keep_freed_buffers();
    let cli = Cli::parse();
    // `QFX_KERNELS=burn` runs burn's convolution and pooling instead of qfx's (a fallback and
    // a baseline for `bench/train_speed.sh`); anything else but `own` is refused up front.
    match qfx_train::kernels::kernels_from_env() {
        Ok(kernels) => qfx_train::kernels::set_kernels(kernels),
        Err(e) => {
            errln!("qfx: error: {e}");
            return ExitCode::FAILURE;
        }
    }
    let result = match cli.command {
        Command::Fixed(cmd) => fixed_cmd::run(cmd),
        Command::Demo(args) => demo::run(args),
        Command::Train(args) => train_cmd::train(args),
        Command::Ptq(args) => train_cmd::ptq(args),
        Command::Eval(args) => train_cmd::eval(args),
        Command::Report(args) => report_cmd::run(args),
        Command::Import(cmd) => import_cmd::run(cmd),
        Command::Export(cmd) => hls_cmd::run_export(cmd),
        Command::VerifyHls(args) => hls_cmd::run_verify(args),
        Command::VerifyRtl(args) => rtl_cmd::run_verify(args),
        Command::Synth(args) => rtl_cmd::run_synth(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (`qfx ... | head`) is not an error worth reporting.
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            errln!("qfx: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
