//! `qfx`: the command-line front end. Every error funnels into one message and exit code here.

mod demo;
mod fixed_cmd;

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
    /// A short tour of the fixed-point core: rounding, overflow, result types, kernel speed.
    Demo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Fixed(cmd) => fixed_cmd::run(cmd),
        Command::Demo => demo::run(),
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
            eprintln!("qfx: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
