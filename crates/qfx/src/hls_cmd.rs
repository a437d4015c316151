//! `qfx export hls` and `qfx verify-hls`: the Vitis HLS project and its bit-exact check (and the
//! `export` subcommand, whose `verilog` target lives in `rtl_cmd.rs`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use qfx_hls::{EmitOptions, VerifyOptions, IR_FILE};
use qfx_ir::{Model, Preprocess};
use qfx_train::data::Task;
use qfx_train::run::{RunDir, Score};

/// What to export.
#[derive(Subcommand)]
pub enum ExportCommand {
    /// A self-contained Vitis HLS project (C++, testbench, Tcl script, README, IR copy).
    #[command(after_help = "Examples:\n  \
        qfx export hls --checkpoint runs/cnn --out hls/cnn\n  \
        qfx export hls --checkpoint model.ir.json --out hls/net --part xc7z020clg400-1 --clock-ns 10\n\n\
        Then: cd hls/cnn && vitis_hls -f build.tcl, or check it bit for bit with `qfx verify-hls`.")]
    Hls(ExportHls),
    /// A Verilog design: one module per layer, fully unrolled (one inference per clock),
    /// bit-exact with the integer engine.
    #[command(after_help = "Examples:\n  \
        qfx export verilog --checkpoint runs/mlp --out rtl/mlp\n  \
        qfx export verilog --checkpoint model.ir.json --out rtl/net --multipliers shift-add\n\n\
        Then: `qfx verify-rtl --project rtl/mlp --data DATASET` (Verilator) and \
        `qfx synth --project rtl/mlp` (Yosys).")]
    Verilog(crate::rtl_cmd::ExportVerilog),
}

/// Arguments of `qfx export hls`.
#[derive(Args)]
pub struct ExportHls {
    /// The model IR: a `.json` file, or a run directory containing `model.ir.json`.
    #[arg(long, value_name = "PATH")]
    checkpoint: PathBuf,
    /// Folder to write the project into: new, empty, or an earlier export (whose generated
    /// files are replaced). A folder holding other files is refused unless --force.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Write into DIR even if it holds files that no export wrote (files of the same names
    /// are replaced). Symbolic links out of DIR (firmware/, tb/) are refused all the same.
    #[arg(long)]
    force: bool,
    /// FPGA part for `set_part` in build.tcl.
    #[arg(long, default_value = "xcu250-figd2104-2L-e")]
    part: String,
    /// Clock period in ns for build.tcl.
    #[arg(long, default_value_t = 5.0)]
    clock_ns: f64,
}

/// Arguments of `qfx verify-hls`.
#[derive(Args)]
#[command(after_help = "Examples:\n  \
    qfx verify-hls --project hls/cnn --data data/fashion-mnist-subset --samples 200\n  \
    qfx verify-hls --project hls/mlp --data mnist/ --samples 1000 --normalize 0.1307,0.3081\n  \
    qfx verify-hls --project hls/jets --data examples/jet_mlp/jet_mlp.toml\n\n\
    Compiles tb/testbench.cpp and firmware/model.cpp with g++ -O2 against the Xilinx ap_types \
    headers (fetched once with pip into $QFX_CACHE_DIR, $XDG_CACHE_HOME/qfx or ~/.cache/qfx), \
    runs the first N test samples, normalized as the model records, and compares every output \
    code with the integer engine running the project's model.ir.json. Exits with status 1 on any \
    mismatch.")]
pub struct VerifyHls {
    /// A project written by `qfx export hls`.
    #[arg(long, value_name = "DIR")]
    project: PathBuf,
    /// The dataset (IDX folder, CIFAR-10 binary folder, image folder, or a table file with the
    /// default options), or a run configuration file (.toml) whose `data` is used; its test
    /// split is run.
    #[arg(long, value_name = "PATH")]
    data: PathBuf,
    /// How many test samples to run.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Pixel normalization `MEAN,STD` (x = (p/255 − MEAN)/STD), for a model IR that records
    /// none; refused when it records a different one.
    #[arg(long, value_name = "MEAN,STD")]
    normalize: Option<String>,
    /// g++ optimization flag (`-O0` is what csim_design uses; slower, same numbers).
    #[arg(long, default_value = "-O2", allow_hyphen_values = true)]
    opt: String,
}

/// The model to export: a run directory's model of record, also when its `model.ir.json` is
/// named by path (refused, with the reason, when it is not the unchanged export of the run's
/// current checkpoint); any other IR file as it is.
pub(crate) fn load_ir(path: &Path) -> Result<Model> {
    let run = if path.is_dir() {
        Some(path.to_path_buf())
    } else {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let named_record = path.file_name().is_some_and(|n| n == IR_FILE)
            && RunDir::new(parent).checkpoints().is_dir();
        named_record.then(|| parent.to_path_buf())
    };
    match run {
        Some(run) => {
            let record = qfx_train::run::model_of_record(&run)?;
            if let Some(note) = record.note {
                errln!("qfx: warning: {note}");
            }
            Ok(record.ir)
        }
        None => Ok(Model::load(path)?),
    }
}

pub fn run_export(cmd: ExportCommand) -> Result<()> {
    match cmd {
        ExportCommand::Verilog(args) => crate::rtl_cmd::run_export(args),
        ExportCommand::Hls(args) => {
            // Not even with --force: the project's own model.ir.json would replace the run's
            // model of record, and its files would sit among the run's.
            let out = RunDir::new(&args.out);
            if out.lock_file().exists() || out.checkpoints().is_dir() {
                bail!(
                    "{} is a qfx run directory: an HLS project goes into a folder of its own",
                    args.out.display()
                );
            }
            let model = load_ir(&args.checkpoint)?;
            let options = EmitOptions {
                part: args.part,
                clock_ns: args.clock_ns,
            };
            let report = qfx_hls::export(&model, &args.out, &options, args.force)?;
            outln!(
                "wrote {} ({} files): top function {}, {} layers, {} typedefs, {} integer constants",
                report.dir.display(),
                report.files.len(),
                report.top,
                model.layers.len(),
                report.typedefs,
                report.constants
            );
            outln!(
                "next: `cd {} && vitis_hls -f build.tcl`, or `qfx verify-hls --project {} --data <DATASET>`",
                report.dir.display(),
                report.dir.display()
            );
            Ok(())
        }
    }
}

pub(crate) fn parse_normalize(s: &str) -> Result<Preprocess> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [m, d] = parts[..] else {
        bail!("--normalize wants MEAN,STD (two numbers), got {s:?}");
    };
    let mean: f32 = m
        .parse()
        .with_context(|| format!("--normalize mean {m:?}"))?;
    let std: f32 = d
        .parse()
        .with_context(|| format!("--normalize std {d:?}"))?;
    if !mean.is_finite() || !std.is_finite() || std <= 0.0 {
        bail!("--normalize: mean must be finite and std positive, got {s:?}");
    }
    Ok(Preprocess::uniform(mean, std))
}

/// The input normalization a project is verified with: the one its model records, or
/// `--normalize` for a model that records none (a different one over a recorded one is refused).
pub(crate) fn preprocess_of(model: &Model, normalize: Option<&str>) -> Result<Preprocess> {
    Ok(match (normalize, &model.preprocess) {
        (Some(s), Some(recorded)) => {
            // The help promises --normalize only where the model records nothing: a recorded
            // normalization is what the model was trained with, and overriding it silently
            // would verify on inputs the deployed model never sees.
            if parse_normalize(s)? != *recorded {
                bail!(
                    "the model IR records its input normalization (mean {:?}, std {:?}); \
                     --normalize applies only to a model that records none: drop it",
                    recorded.mean,
                    recorded.std
                );
            }
            recorded.clone()
        }
        (Some(s), None) => parse_normalize(s)?,
        (None, Some(p)) => p.clone(),
        (None, None) => bail!(
            "the model IR records no input normalization; pass --normalize MEAN,STD \
             (the values used in training; 0,1 means x = p/255)"
        ),
    })
}

pub fn run_verify(args: VerifyHls) -> Result<()> {
    let model = Model::load(&args.project.join(IR_FILE))
        .with_context(|| format!("{} is not a qfx HLS project", args.project.display()))?;
    let preprocess = preprocess_of(&model, args.normalize.as_deref())?;
    if args.samples == 0 {
        bail!("--samples must be at least 1");
    }
    // Only the test split is used: missing training batches do not matter here.
    let config = crate::train_cmd::data_argument(&args.data)?;
    let data = crate::train_cmd::load_data_with(&config, true)
        .with_context(|| format!("cannot load the dataset {}", args.data.display()))?;
    verify_dataset(
        &args.project,
        &model,
        &preprocess,
        (data.test(), config.task()),
        args.samples,
        &args.opt,
    )
}

/// Exports the IR of `run_dir` (a run directory or IR file) to `out` and verifies it on the
/// first `samples` samples of `test` (scored for `task`), normalized with the IR's
/// `preprocess`. For `qfx demo`.
pub fn export_and_verify(
    run_dir: &Path,
    out: &Path,
    test: (qfx_data::Split<'_>, Task),
    samples: usize,
) -> Result<()> {
    let model = load_ir(run_dir)?;
    // Into a new or empty folder or an earlier export only, as `qfx export hls` without --force.
    let report = qfx_hls::export(&model, out, &qfx_hls::EmitOptions::default(), false)?;
    outln!(
        "wrote {} (top function {}, {} typedefs, {} integer constants)",
        out.display(),
        report.top,
        report.typedefs,
        report.constants
    );
    let preprocess = model
        .preprocess
        .clone()
        .with_context(|| format!("{} records no input normalization", run_dir.display()))?;
    verify_dataset(out, &model, &preprocess, test, samples, "-O2")
}

/// The first `samples` samples of `test` as network inputs (normalized with `preprocess`, as
/// training and the engine normalize them), after checking they fit the model.
pub(crate) fn verify_inputs(
    model: &Model,
    preprocess: &Preprocess,
    test: qfx_data::Split<'_>,
    samples: usize,
) -> Result<Vec<Vec<f32>>> {
    let shape = test.shape();
    let n_model: usize = model.input_shape.iter().product();
    if (model.input_shape.len() == 3 && model.input_shape[..] != shape[..])
        || n_model != test.sample_len()
    {
        bail!(
            "the dataset's {} are {:?} but the model expects {:?}",
            test.noun(),
            shape,
            model.input_shape
        );
    }
    let noun = test.noun();
    let n = samples.min(test.len());
    if n == 0 {
        bail!("no test {noun} to verify on");
    }
    if n < samples {
        errln!("qfx: only {n} test {noun} available; verifying those");
    }
    let indices: Vec<usize> = (0..n).collect();
    let flat = qfx_train::run::sample_inputs(test, &indices, preprocess)?;
    let len = flat.len() / n;
    Ok(flat.chunks(len.max(1)).map(<[f32]>::to_vec).collect())
}

/// Prints the integer engine's score on the verified samples (`what` names the simulation it
/// equals): top-1 for classifiers, MSE and MAE for values.
pub(crate) fn print_score(
    model: &Model,
    (test, task): (qfx_data::Split<'_>, Task),
    inputs: &[Vec<f32>],
    engine_codes: &[i64],
    what: &str,
) {
    let (n, noun) = (inputs.len(), test.noun());
    let outputs = engine_codes.len() / n.max(1);
    let codes: Vec<Vec<i64>> = engine_codes
        .chunks(outputs.max(1))
        .map(<[i64]>::to_vec)
        .collect();
    let flat: Vec<f32> = inputs.concat();
    match crate::exact::score_codes(model, test, task, &flat, &codes) {
        Score::Accuracy(a) if outputs > 1 => outln!(
            "integer engine (= {what}) accuracy on these {n} {noun}: {:.2}%",
            100.0 * a.top1
        ),
        Score::Accuracy(_) => {}
        Score::Errors(e) => outln!(
            "integer engine (= {what}) on these {n} {noun}: MSE {:.6}, MAE {:.6}",
            e.mse,
            e.mae
        ),
    }
}

/// Verifies `project` on the first `samples` samples of `test` (scored for its task); an error
/// on any mismatch.
fn verify_dataset(
    project: &Path,
    model: &Model,
    preprocess: &Preprocess,
    (test, task): (qfx_data::Split<'_>, Task),
    samples: usize,
    opt: &str,
) -> Result<()> {
    let inputs = verify_inputs(model, preprocess, test, samples)?;
    let options = VerifyOptions {
        opt: opt.to_string(),
        ..VerifyOptions::default()
    };
    errln!(
        "qfx: compiling {} with g++ {} (headers cached in {}) ...",
        project.display(),
        options.opt,
        options.cache_dir.display()
    );
    let report = qfx_hls::verify_with(project, &inputs, &options)?;
    outln!("{report}");
    print_score(
        model,
        (test, task),
        &inputs,
        &report.engine_codes,
        "C simulation",
    );
    float_agreement(model, &inputs, &report.engine_codes)?;
    if report.mismatches > 0 {
        bail!(
            "{} of {} output values differ between the C simulation and the integer engine",
            report.mismatches,
            report.values
        );
    }
    outln!("bit-exact: 0 mismatches");
    Ok(())
}

/// How often f32 fake-quantization (what float QAT frameworks compute: f32 sums, rounding only
/// at layer ends) agrees with the exact engine: predictions and logit values.
fn float_agreement(model: &Model, inputs: &[Vec<f32>], engine_codes: &[i64]) -> Result<()> {
    let Some(last) = model.layers.last() else {
        return Ok(());
    };
    let classes = engine_codes.len() / inputs.len().max(1);
    let (mut same_prediction, mut same_values, mut values) = (0usize, 0usize, 0usize);
    for (x, codes) in inputs.iter().zip(engine_codes.chunks(classes.max(1))) {
        let emulated = qfx_engine::float_forward(model, x)?;
        let exact: Vec<f64> = codes
            .iter()
            .map(|&c| {
                qfx_fixed::Fixed::from_code(c as i128, last.output)
                    .map(|v| v.to_f64())
                    .unwrap_or(f64::NAN)
            })
            .collect();
        same_values += emulated
            .iter()
            .zip(&exact)
            .filter(|(e, x)| **e as f64 == **x)
            .count();
        values += exact.len();
        let emulated_codes: Vec<i64> = emulated
            .iter()
            .map(|&v| (v as f64 * 2f64.powi(last.output.frac_bits() as i32)).round() as i64)
            .collect();
        same_prediction +=
            (qfx_engine::argmax(&emulated_codes) == qfx_engine::argmax(codes)) as usize;
    }
    outln!(
        "f32 fake-quant emulation vs integer engine: same prediction on {same_prediction}/{} \
         samples, identical output values {same_values}/{values}",
        inputs.len()
    );
    Ok(())
}
