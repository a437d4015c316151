//! `qfx-oracle`: run the header oracle by hand, or regenerate the committed golden vectors.
//!
//! ```text
//! cargo run -p qfx-oracle -- run [--seed N]      # the CI-sized suite (116,800 cases)
//! cargo run -p qfx-oracle -- golden [--seed N]   # rewrite crates/qfx-oracle/golden/vectors.txt
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use qfx_oracle::{compare, generate, golden_text, headers, run_suite, SuiteSize};

/// Seed of the committed golden vectors.
const GOLDEN_SEED: u64 = 20_261_128;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("qfx-oracle: {e}");
            ExitCode::from(2)
        }
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn run() -> Result<ExitCode, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str).unwrap_or("");
    let seed = match args.iter().position(|a| a == "--seed") {
        Some(i) => args
            .get(i + 1)
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or("--seed needs a non-negative integer")?,
        None if command == "golden" => GOLDEN_SEED,
        None => qfx_oracle::rng::time_seed(),
    };
    let size = match command {
        "run" => SuiteSize::CI,
        "golden" => SuiteSize::GOLDEN,
        _ => return Err("usage: qfx-oracle run|golden [--seed N]".to_string()),
    };
    let compiler = qfx_cpp::Compiler::find().map_err(|e| e.to_string())?;
    let cache = target_dir().join("qfx-oracle");
    let headers = headers::ensure_headers(&cache).map_err(|e| e.to_string())?;
    eprintln!("seed {seed}: generating and compiling...");
    let suite = generate(seed, size);
    let outcomes = run_suite(
        &compiler,
        &headers,
        &cache.join(format!("work-{command}")),
        &suite,
    )?;
    let report = compare(&suite, &outcomes);
    println!(
        "seed {seed}: {} cases compared, {} mismatches",
        report.cases, report.mismatches
    );
    for e in &report.examples {
        println!("  {e}");
    }
    if command == "golden" {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/vectors.txt");
        let tmp = path.with_extension("txt.tmp");
        std::fs::write(&tmp, golden_text(&suite, &outcomes, seed)).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &path).map_err(|e| e.to_string())?;
        println!("wrote {} cases to {}", suite.len(), path.display());
    }
    Ok(if report.mismatches == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
