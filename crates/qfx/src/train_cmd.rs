//! `qfx train`, `qfx ptq` and `qfx eval`: the training workflow over run directories.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use qfx_data::Data;
use qfx_train::config::RunConfig;
use qfx_train::data::DataSpec;
use qfx_train::models::ModelConfig;
use qfx_train::run::{self, Checkpoint, CheckpointDir, Event, RunDir, Start};

/// Where the configuration comes from, and the flags that override it.
#[derive(Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// TOML configuration file (every key optional; see the README for all keys).
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Dataset: an IDX directory (MNIST/Fashion-MNIST), a CIFAR-10 binary directory, an image
    /// folder, or a table file (.csv with a `label` column, .npz with arrays x and y; other
    /// options in the configuration's `data` table). Default: the embedded Fashion-MNIST
    /// subset.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// A built-in network (`model`): `cnn` (the small CNN, 28×28), `bnn` (the binarized
    /// residual network, 28×28), `resnet20` (32×32×3), `mlp` (784–256–10).
    #[arg(long, value_parser = ["cnn", "bnn", "resnet20", "mlp"])]
    pub model: Option<String>,
    /// Word width of every quantized tensor (`quant.bits`; implies quantization on).
    #[arg(long)]
    pub bits: Option<u32>,
    /// Train in float: quantizers off (`quant.enabled = false`).
    #[arg(long)]
    pub float: bool,
    /// Freeze binary points at their calibrated values (`quant.learn_binary_points = false`).
    #[arg(long)]
    pub fixed_points: bool,
    /// Learn every word width too, within `quant.*_width_range` (`quant.widths = "learned"`);
    /// `--bits` is then where the widths start.
    #[arg(long)]
    pub learn_widths: bool,
    /// Steer the hardware cost's weight so that the trained model's LUT estimate (`qfx
    /// report`) lands at N (`cost.budget_lut`).
    #[arg(long, value_name = "N")]
    pub budget_lut: Option<f64>,
    /// Steer the hardware cost's weight so that the trained model's DSP estimate lands at or
    /// under N (`cost.budget_dsp`).
    #[arg(long, value_name = "N")]
    pub budget_dsp: Option<f64>,
    /// The cost the loss differentiates: `lut` (qfx's cost model, the default) or `ebops`
    /// (HGQ's effective bit operations) (`cost.kind`).
    #[arg(long, value_parser = ["lut", "ebops"])]
    pub cost: Option<String>,
    /// Epochs (`train.epochs`).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Learning rate (`train.lr`).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Batch size (`train.batch_size`).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Seed (`train.seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Any other setting, `section.key=value` with a TOML value, e.g.
    /// `--set train.optimizer='{ kind = "sgd" }'`. Repeatable; applied last.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Accept a CIFAR-10 directory missing some training batches (refused by default).
    #[arg(long)]
    pub allow_partial_data: bool,
}

impl ConfigArgs {
    /// The configuration: `base` (a file's or a checkpoint's TOML), then the flags.
    pub fn resolve(&self, base: Option<String>) -> Result<RunConfig> {
        let text = match &self.config {
            Some(path) => qfx_fs::read_to_string_regular(path)
                .with_context(|| format!("cannot read config {}", path.display()))?,
            None => base.unwrap_or_default(),
        };
        let mut o: Vec<(String, String)> = Vec::new();
        let mut put = |k: &str, v: String| o.push((k.to_string(), v));
        if let Some(d) = &self.data {
            put("data", toml_string(&d.display().to_string()));
        }
        if let Some(m) = &self.model {
            let model = match m.as_str() {
                "bnn" => ModelConfig::small_bnn(),
                "resnet20" => ModelConfig::resnet20(),
                "mlp" => ModelConfig::Mlp {
                    inputs: 784,
                    hidden: vec![256],
                    classes: 10,
                },
                _ => ModelConfig::small_cnn(),
            };
            put("model", toml::Value::try_from(model)?.to_string());
        }
        if let Some(b) = self.bits {
            put("quant.bits", b.to_string());
            put("quant.enabled", "true".into());
        }
        if self.float {
            if self.bits.is_some() || self.fixed_points || self.learn_widths {
                bail!("--float contradicts --bits/--fixed-points/--learn-widths");
            }
            put("quant.enabled", "false".into());
        }
        if self.fixed_points {
            put("quant.learn_binary_points", "false".into());
            put("quant.enabled", "true".into());
        }
        if self.learn_widths {
            put("quant.widths", toml_string("learned"));
            put("quant.enabled", "true".into());
        }
        for (key, v) in [
            ("cost.budget_lut", self.budget_lut),
            ("cost.budget_dsp", self.budget_dsp),
        ] {
            if let Some(v) = v {
                put(key, toml::Value::Float(v).to_string());
            }
        }
        if let Some(c) = &self.cost {
            put("cost.kind", toml_string(c));
        }
        if let Some(e) = self.epochs {
            put("train.epochs", e.to_string());
        }
        if let Some(lr) = self.lr {
            // As a TOML float (`nan`, `inf` included), so the configuration's own check names
            // the problem; Rust's `NaN` would be read as a string.
            put("train.lr", toml::Value::Float(lr).to_string());
        }
        if let Some(b) = self.batch_size {
            put("train.batch_size", b.to_string());
        }
        if let Some(s) = self.seed {
            put("train.seed", s.to_string());
        }
        for s in &self.set {
            let Some((k, v)) = s.split_once('=') else {
                bail!("--set `{s}`: expected KEY=VALUE");
            };
            o.push((k.trim().to_string(), v.trim().to_string()));
        }
        let where_ = self
            .config
            .as_ref()
            .map(|p| format!(" in {}", p.display()))
            .unwrap_or_default();
        RunConfig::from_toml_with(&text, &o).with_context(|| format!("bad configuration{where_}"))
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Loads the configured dataset (the embedded subset by default); a partial dataset is
/// refused.
pub fn load_data(config: &RunConfig) -> Result<Data> {
    load_data_with(config, false)
}

/// [`load_data`], accepting a partial dataset (CIFAR-10 missing training batches) when
/// `allow_partial`, with a warning saying what is missing.
pub fn load_data_with(config: &RunConfig, allow_partial: bool) -> Result<Data> {
    let Some(spec) = &config.data else {
        return Ok(Data::Images(qfx_data::embedded_fashion_mnist()));
    };
    let path = spec.path();
    let context = || format!("cannot load data from {}", path.display());
    if let Some(options) = spec.table_options(config.task()) {
        return Ok(Data::Table(
            qfx_data::load_table(&options).with_context(context)?,
        ));
    }
    if path.is_file() {
        bail!(
            "{}: neither a dataset directory (IDX files, CIFAR-10 batches, an image folder) nor \
             a table file (.csv, .npy, .npz)",
            path.display()
        );
    }
    let source = qfx_data::detect(path).with_context(context)?;
    if let qfx_data::Source::Cifar10(files) = &source {
        if allow_partial && !files.is_complete() {
            errln!("qfx: warning: partial dataset: {files}");
        }
    }
    Ok(Data::Images(
        source
            .load_with(&qfx_data::LoadOptions { allow_partial })
            .with_context(context)?,
    ))
}

/// The data a `--data` argument of `qfx eval` or `qfx verify-hls` names: a dataset path, or a
/// run configuration file (`.toml`, e.g. an example's or a run's `config.toml`) whose `data`
/// (and loss, which says the task) is used. Relative paths in the file are read from the
/// current directory, as `qfx train` reads them.
pub fn data_argument(path: &Path) -> Result<RunConfig> {
    let is_toml = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    if !is_toml {
        return Ok(RunConfig {
            data: Some(DataSpec::Path(path.to_path_buf())),
            ..RunConfig::default()
        });
    }
    let text = qfx_fs::read_to_string_regular(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let config = RunConfig::from_toml(&text)
        .with_context(|| format!("bad configuration in {}", path.display()))?;
    if config.data.is_none() {
        bail!(
            "{} names no data (its `data` key is missing)",
            path.display()
        );
    }
    Ok(config)
}

/// `qfx train`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  qfx train --run runs/float --float --epochs 5
  qfx train --run runs/qat --from runs/float --bits 4 --epochs 3
  qfx train --run runs/qat --resume
  qfx train --config cnn.toml --run runs/cnn --set train.schedule='{ kind = \"constant\" }'")]
pub struct TrainArgs {
    /// Run directory (config, metrics, checkpoints, exported model).
    #[arg(long)]
    pub run: PathBuf,
    /// Continue the run from its latest checkpoint (its own config.toml is used).
    #[arg(long, conflicts_with = "from")]
    pub resume: bool,
    /// Start from another run's or checkpoint's weights (e.g. QAT from a float run); binary
    /// points are calibrated on training data first. Its configuration is the default base.
    #[arg(long)]
    pub from: Option<PathBuf>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

pub fn train(args: TrainArgs) -> Result<()> {
    let base = if args.resume {
        Some(resume_base(&args.run)?)
    } else if let Some(from) = &args.from {
        Some(Checkpoint::load(from)?.meta.config.to_toml())
    } else {
        None
    };
    let config = args.config.resolve(base)?;
    let data = load_data_with(&config, args.config.allow_partial_data)?;
    let start = if args.resume {
        Start::Resume
    } else if let Some(f) = args.from.clone() {
        Start::From(f)
    } else {
        Start::Fresh
    };
    let stop = stop_on_ctrl_c()?;
    let kind = if config.quant.enabled {
        format!("QAT at {} bits", config.quant.bits)
    } else {
        "float training".to_string()
    };
    let limit = config.train.train_limit;
    let train = data.train();
    let samples = if limit > 0 {
        limit.min(train.len())
    } else {
        train.len()
    };
    errln!(
        "qfx train: {kind}, {} epochs on {samples} training {} → {}",
        config.train.epochs,
        train.noun(),
        args.run.display()
    );
    let outcome = train_with_progress(&args.run, &config, &data, start, &stop)?;
    if !outcome.finished {
        errln!(
            "interrupted: checkpoint saved in {}; continue with `qfx train --run {} --resume`",
            outcome.checkpoint.display(),
            args.run.display()
        );
        std::process::exit(130);
    }
    match outcome.score {
        Some(run::Score::Accuracy(a)) => outln!("test accuracy: {}", fmt_acc(&a)),
        Some(s) => outln!("test: {}", fmt_score(&s)),
        None => {}
    }
    Ok(())
}

/// The configuration a resumed run starts from: the run's `config.toml`, or, when that is gone,
/// the configuration its checkpoint records (the run's own, which the resume checks against
/// anyway).
fn resume_base(run: &Path) -> Result<String> {
    let config = RunDir::new(run).config();
    match qfx_fs::read_to_string_regular(&config) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let ckpt = Checkpoint::load(run)
                .with_context(|| format!("cannot resume: {} is missing", config.display()))?;
            errln!(
                "qfx: warning: {} is missing; resuming with the configuration {} records",
                config.display(),
                ckpt.dir.display()
            );
            Ok(ckpt.meta.config.to_toml())
        }
        Err(e) => {
            Err(e).with_context(|| format!("cannot resume: cannot read {}", config.display()))
        }
    }
}

/// Trains with a progress line on stderr (one line per epoch when stderr is not a terminal).
pub fn train_with_progress(
    dir: &Path,
    config: &RunConfig,
    data: &Data,
    start: Start,
    stop: &AtomicBool,
) -> Result<run::Outcome> {
    let tty = std::io::stderr().is_terminal();
    let began = Instant::now();
    let epochs = config.train.epochs;
    let mut on_event = |e: &Event| match e {
        Event::Step {
            epoch,
            step,
            steps,
            loss,
            accuracy,
        } if tty => {
            let width = 24;
            let done = step * width / steps.max(&1);
            let acc = accuracy.map_or(String::new(), |a| format!("  acc {a:.3}"));
            err!(
                "\r  epoch {}/{epochs} [{}{}] {step}/{steps}  loss {loss:.4}{acc}  {:.0}s ",
                epoch + 1,
                "=".repeat(done),
                " ".repeat(width - done),
                began.elapsed().as_secs_f64()
            );
        }
        Event::Epoch(m) => {
            if tty {
                err!("\r\x1b[2K");
            }
            match m.train_accuracy {
                Some(acc) => errln!(
                    "  epoch {}/{epochs}: loss {:.4}, train acc {acc:.3}, test {} ({:.1}s)",
                    m.epoch,
                    m.train_loss,
                    fmt_score(&m.test),
                    m.seconds
                ),
                None => errln!(
                    "  epoch {}/{epochs}: loss (MSE) {:.6}, test {} ({:.1}s)",
                    m.epoch,
                    m.train_loss,
                    fmt_score(&m.test),
                    m.seconds
                ),
            }
        }
        Event::Warning(w) => {
            if tty {
                err!("\r\x1b[2K");
            }
            errln!("qfx: warning: {w}");
        }
        _ => {}
    };
    Ok(run::train(dir, config, data, start, stop, &mut on_event)?)
}

/// A flag set by the first Ctrl-C, SIGTERM (what `timeout`, `kill` and job schedulers send)
/// or SIGHUP: the run saves a checkpoint after the current step and stops. A second one exits
/// at once.
pub fn stop_on_ctrl_c() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            errln!("\nqfx: stopped without saving");
            std::process::exit(130);
        }
        errln!(
            "\nqfx: interrupted (Ctrl-C or SIGTERM): saving a checkpoint after this step \
             (interrupt again to quit now)"
        );
    })
    .context("cannot install the Ctrl-C and SIGTERM handler")?;
    Ok(stop)
}

pub fn fmt_acc(a: &run::Accuracy) -> String {
    match a.top5 {
        Some(t5) => format!("top-1 {:.2}%, top-5 {:.2}%", a.top1 * 100.0, t5 * 100.0),
        None => format!("top-1 {:.2}%", a.top1 * 100.0),
    }
}

/// A score as text: the accuracy of a classifier, the errors of values.
pub fn fmt_score(s: &run::Score) -> String {
    match s {
        run::Score::Accuracy(a) => fmt_acc(a),
        run::Score::Errors(e) => format!("MSE {:.6}, MAE {:.6}", e.mse, e.mae),
    }
}

/// `qfx ptq`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  qfx ptq --from runs/float --run runs/ptq4 --bits 4
  qfx ptq --from runs/float --run runs/ptq8 --bits 8 --set calibration.batches=16")]
pub struct PtqArgs {
    /// The float run or checkpoint to quantize.
    #[arg(long)]
    pub from: PathBuf,
    /// Output run directory (checkpoint and model.ir.json).
    #[arg(long)]
    pub run: PathBuf,
    #[command(flatten)]
    pub config: ConfigArgs,
}

pub fn ptq(args: PtqArgs) -> Result<()> {
    let mut base = Checkpoint::load(&args.from)?.meta.config;
    base.quant.enabled = true;
    let config = args.config.resolve(Some(base.to_toml()))?;
    let data = load_data_with(&config, args.config.allow_partial_data)?;
    let (_, score) = run::ptq(&args.run, &args.from, &config, &data)?;
    outln!(
        "PTQ at {} bits ({} calibration batches of {}): test {}",
        config.quant.bits,
        config.calibration.batches,
        config.train.batch_size,
        fmt_score(&score)
    );
    Ok(())
}

/// `qfx eval`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  qfx eval --checkpoint runs/qat
  qfx eval --checkpoint runs/qat --exact --limit 1000
  qfx eval --checkpoint runs/float --data data/fashion-mnist-full --split train")]
pub struct EvalArgs {
    /// Run directory or checkpoint directory.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Dataset (default: the one the run was trained on): a path, or a run configuration file
    /// (.toml) whose `data` is used.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Which split.
    #[arg(long, default_value = "test", value_parser = ["test", "train"])]
    pub split: String,
    /// Evaluate at most this many samples (0: all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// Also run the bit-exact integer engine (what the FPGA computes) on the exported model,
    /// and report its accuracy and every overflow it hits.
    #[arg(long)]
    pub exact: bool,
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let (model, ckpt) = run::load_model(&args.checkpoint)?;
    if let Some(note) = &ckpt.recovered {
        errln!("qfx: warning: {note}");
    }
    let mut config = ckpt.meta.config.clone();
    if let Some(d) = &args.data {
        config.data = data_argument(d)?.data;
    }
    // Evaluation trains nothing: missing training batches are only warned about.
    let data = load_data_with(&config, true)?;
    let set = if args.split == "test" {
        data.test()
    } else {
        data.train()
    };
    config.check_data(set, &args.split)?;
    let preprocess = ckpt.meta.preprocess();
    let score = run::evaluate(&model, set, &config, &preprocess, args.limit)?;
    let kind = if config.quant.enabled {
        format!("{}-bit fixed point (training emulation)", config.quant.bits)
    } else {
        "float".to_string()
    };
    outln!(
        "{} {} of the {} split, {kind}: {}",
        score.samples(),
        set.noun(),
        args.split,
        fmt_score(&score)
    );
    if args.exact {
        if !config.quant.enabled {
            bail!("--exact needs a quantized checkpoint (this one is float)");
        }
        let ir = exact_model(&args.checkpoint, &model, &ckpt)?;
        let exact = crate::exact::evaluate(&ir, set, config.task(), args.limit)?;
        exact.print();
        outln!("\nstatic worst-case range analysis (any input the input format can hold):");
        out!("{}", qfx_engine::analyze(&ir)?);
    }
    Ok(())
}

/// The model the exact engine runs. For a run directory, its model of record (what `qfx export
/// hls` ships), refused with the reason when it is not the export of the checkpoint evaluated;
/// for a checkpoint directory, or a run that has not finished, that checkpoint's own export.
fn exact_model(
    path: &Path,
    model: &qfx_train::models::Model,
    ckpt: &Checkpoint,
) -> Result<qfx_ir::Model> {
    let is_run = !CheckpointDir::new(path).has_meta();
    let has_record = std::fs::symlink_metadata(RunDir::new(path).ir()).is_ok();
    if is_run && (has_record || ckpt.meta.finished) {
        let record = run::model_of_record(path)?;
        if record.checkpoint.path() != ckpt.dir {
            bail!(
                "{} changed while it was read (its current checkpoint is now {}); try again",
                path.display(),
                record.checkpoint.path().display()
            );
        }
        if let Some(note) = record.note.filter(|n| Some(n) != ckpt.recovered.as_ref()) {
            errln!("qfx: warning: {note}");
        }
        return Ok(record.ir);
    }
    if is_run {
        errln!(
            "qfx: {} has not finished: the exact engine runs the export of its current \
             checkpoint {}",
            path.display(),
            ckpt.dir.display()
        );
    }
    Ok(run::export_ir(model, &ckpt.meta.preprocess(), "model")?)
}
