//! Runs: float pre-training, QAT, PTQ and evaluation, with a run directory, checkpoints and
//! per-epoch metrics.
//!
//! A run directory holds:
//! - `config.toml`: the configuration used (a resumed run must match it);
//! - `metrics.jsonl`: one JSON object per finished epoch (loss, accuracies, learning rate, the
//!   binary point of every exported tensor, seconds);
//! - `checkpoints/step-NNNNNNNN/` with `model.safetensors`, `optimizer.safetensors` and
//!   `meta.json`, and `checkpoints/latest` naming the newest complete one. A checkpoint is
//!   written into a temporary directory and renamed into place before `latest` is switched
//!   (atomically) to it, so a crash at any moment leaves the previous checkpoint intact;
//! - `model.ir.json` (quantized runs): the exported model, what `qfx export hls` and
//!   `qfx eval --exact` read, and `model.init.ir.json`, the model as calibrated before QAT.
//!
//! Reproducibility: weights are initialized from the seed, epoch `e` visits the training set in
//! `qfx_data::epoch_order(seed, e)`, and augmentation draws from an RNG whose state is saved in
//! every checkpoint, so a resumed run reaches the same weights as an uninterrupted one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use qfx_data::{Dataset, Rng};
use qfx_fixed::Format;
use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::error::TrainError;
use crate::host::HostValues;
use crate::models::Model;
use crate::optim::{load_module_tensors, module_tensors, Optimizer};
use crate::safetensors::{self, write_atomic, NamedTensor};
use crate::train::cross_entropy;

/// Version of the checkpoint layout written here.
pub const CHECKPOINT_VERSION: u32 = 1;

/// What a checkpoint's `meta.json` records besides the tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointMeta {
    /// [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// The configuration that produced it.
    pub config: RunConfig,
    /// Image shape `[c, h, w]` the model was built for.
    pub input_shape: [usize; 3],
    /// Epochs completed.
    pub epoch: usize,
    /// Steps done within the current epoch (non-zero for an interrupted epoch).
    pub step_in_epoch: usize,
    /// Steps done in all.
    pub global_step: usize,
    /// Running sums of the interrupted epoch: loss·images, correct predictions, images.
    pub epoch_sums: (f64, usize, usize),
    /// Optimizer updates done.
    pub optimizer_steps: u64,
    /// State of the augmentation RNG.
    pub rng: [u64; 4],
    /// The run finished all its epochs.
    pub finished: bool,
    /// Test accuracy after the last finished epoch, if evaluated.
    pub test_accuracy: Option<f64>,
    /// Each exported tensor's format (quantized runs): the learned binary points.
    pub formats: BTreeMap<String, Vec<Format>>,
    /// Checksums (FNV-1a, hex) of the two tensor files, to catch corruption.
    pub checksums: BTreeMap<String, String>,
}

/// A loaded checkpoint.
pub struct Checkpoint {
    /// Its directory.
    pub dir: PathBuf,
    /// Metadata.
    pub meta: CheckpointMeta,
    /// Model parameters and running statistics.
    pub model: Vec<NamedTensor>,
    /// Optimizer state.
    pub optimizer: Vec<NamedTensor>,
}

/// The checksum `meta.json` records for each tensor file (64-bit FNV-1a, hex): it catches
/// truncated and altered files, it is not a defence against deliberate tampering.
pub fn checksum(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn io_err(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::Io(format!("{}: {e}", path.display()))
}

/// The checkpoint directory `path` names: a checkpoint directory itself, or a run directory
/// (its latest checkpoint).
pub fn resolve_checkpoint(path: &Path) -> Result<PathBuf, TrainError> {
    if path.join("meta.json").is_file() {
        return Ok(path.to_path_buf());
    }
    let latest = path.join("checkpoints").join("latest");
    let name = std::fs::read_to_string(&latest).map_err(|_| {
        TrainError::Checkpoint(format!(
            "{} is neither a checkpoint (no meta.json) nor a run directory with checkpoints",
            path.display()
        ))
    })?;
    let dir = path.join("checkpoints").join(name.trim());
    if name.trim().is_empty() || name.contains('/') || !dir.join("meta.json").is_file() {
        return Err(TrainError::Checkpoint(format!(
            "{} names `{}`, which is not a complete checkpoint",
            latest.display(),
            name.trim()
        )));
    }
    Ok(dir)
}

impl Checkpoint {
    /// Reads and checks a checkpoint (a checkpoint directory or a run directory).
    pub fn load(path: &Path) -> Result<Checkpoint, TrainError> {
        let dir = resolve_checkpoint(path)?;
        let meta_path = dir.join("meta.json");
        let text = std::fs::read_to_string(&meta_path).map_err(|e| io_err(&meta_path, e))?;
        let meta: CheckpointMeta = serde_json::from_str(&text).map_err(|e| {
            TrainError::Checkpoint(format!(
                "{}: not a qfx checkpoint: {e}",
                meta_path.display()
            ))
        })?;
        if meta.version != CHECKPOINT_VERSION {
            return Err(TrainError::Checkpoint(format!(
                "{}: checkpoint version {} is not supported (this qfx writes {CHECKPOINT_VERSION})",
                meta_path.display(),
                meta.version
            )));
        }
        let tensors = |file: &str| -> Result<Vec<NamedTensor>, TrainError> {
            let path = dir.join(file);
            let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
            if meta.checksums.get(file) != Some(&checksum(&bytes)) {
                return Err(TrainError::Checkpoint(format!(
                    "{}: checksum does not match meta.json (corrupt or replaced file)",
                    path.display()
                )));
            }
            Ok(safetensors::from_bytes(&bytes, &path)?.0)
        };
        let model = tensors("model.safetensors")?;
        let optimizer = tensors("optimizer.safetensors")?;
        Ok(Checkpoint {
            dir,
            meta,
            model,
            optimizer,
        })
    }

    /// Checks that this checkpoint's network is the one `config` describes.
    pub fn check_model(&self, config: &RunConfig) -> Result<(), TrainError> {
        if self.meta.config.model != config.model {
            return Err(TrainError::Checkpoint(format!(
                "{} holds a different network: checkpoint model {}, configured model {}",
                self.dir.display(),
                compact(&self.meta.config.model),
                compact(&config.model)
            )));
        }
        Ok(())
    }
}

fn compact<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Writes a checkpoint into `run/checkpoints` and points `latest` at it; keeps the previous one
/// and removes older ones.
fn save_checkpoint(
    run: &Path,
    meta: &CheckpointMeta,
    model: &[NamedTensor],
    optimizer: &[NamedTensor],
) -> Result<PathBuf, TrainError> {
    // A checkpoint is only worth keeping if it can be resumed from: refuse non-finite weights
    // (or optimizer moments) rather than replace the last good checkpoint with them.
    for t in model.iter().chain(optimizer) {
        if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
            return Err(TrainError::NonFinite(format!(
                "`{}`[{i}] is {}; the checkpoint was not written",
                t.name, t.data[i]
            )));
        }
    }
    let root = run.join("checkpoints");
    std::fs::create_dir_all(&root).map_err(|e| io_err(&root, e))?;
    // A second save at the same step (Ctrl-C right after an epoch's save) gets its own name, so
    // `latest` never points at a directory that is being replaced.
    let base = format!("step-{:08}", meta.global_step);
    let name = (0..)
        .map(|i| match i {
            0 => base.clone(),
            i => format!("{base}.{i}"),
        })
        .find(|n| !root.join(n).exists())
        .expect("an unused name exists");
    let tmp = root.join(format!(".tmp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
    let mut meta = meta.clone();
    for (file, tensors) in [
        ("model.safetensors", model),
        ("optimizer.safetensors", optimizer),
    ] {
        let bytes = safetensors::to_bytes(tensors, &BTreeMap::new());
        meta.checksums.insert(file.to_string(), checksum(&bytes));
        write_atomic(&tmp.join(file), &bytes)?;
    }
    let json = serde_json::to_string_pretty(&meta).expect("metadata serializes");
    write_atomic(&tmp.join("meta.json"), json.as_bytes())?;
    let dir = root.join(&name);
    std::fs::rename(&tmp, &dir).map_err(|e| io_err(&dir, e))?;
    let previous = std::fs::read_to_string(root.join("latest")).ok();
    write_atomic(&root.join("latest"), name.as_bytes())?;
    // Keep the new checkpoint and the one before it; drop older ones.
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            let keep = n == name || previous.as_deref().map(str::trim) == Some(n.as_str());
            if n.starts_with("step-") && !keep {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(dir)
}

/// Top-1 (and top-5) accuracy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Images evaluated.
    pub images: usize,
    /// Fraction whose largest logit is the label.
    pub top1: f64,
    /// Fraction whose label is among the 5 largest logits (models with more than 5 classes).
    pub top5: Option<f64>,
}

/// Normalized `[n, c, h, w]` input for the images (bytes) given.
fn input_tensor(
    images: &[u8],
    n: usize,
    shape: [usize; 3],
    config: &RunConfig,
    device: &Device,
) -> Tensor<4> {
    let pixels = config.normalize.preprocess().apply(images, shape);
    let [c, h, w] = shape;
    Tensor::from_data(TensorData::new(pixels, [n, c, h, w]), device)
}

/// Accuracy of `model` (inference mode) on the first `limit` images of `data` (0: all).
pub fn evaluate(model: &Model, data: &Dataset, config: &RunConfig, limit: usize) -> Accuracy {
    let model = model.valid();
    let device = Device::flex();
    let n = if limit == 0 {
        data.len()
    } else {
        limit.min(data.len())
    };
    let (mut top1, mut top5) = (0usize, 0usize);
    let len = data.image_len();
    let classes = config.classes();
    for start in (0..n).step_by(256) {
        let m = 256.min(n - start);
        let x = input_tensor(
            &data.images[start * len..(start + m) * len],
            m,
            data.shape,
            config,
            &device,
        );
        let logits: Vec<f32> = model.forward(x).host_f32();
        for (row, &label) in logits.chunks(classes).zip(&data.labels[start..start + m]) {
            let rank = crate::train::label_rank(row, label as usize);
            top1 += (rank == 0) as usize;
            top5 += (rank < 5) as usize;
        }
    }
    let frac = |k: usize| k as f64 / n.max(1) as f64;
    Accuracy {
        images: n,
        top1: frac(top1),
        top5: (classes > 5).then(|| frac(top5)),
    }
}

/// Sets every binary point from `config.calibration.batches` batches of training data, in
/// inference mode (running BatchNorm statistics, as deployed).
pub fn calibrate(model: Model, data: &Dataset, config: &RunConfig) -> Result<Model, TrainError> {
    let n = (config.calibration.batches * config.train.batch_size).min(data.len());
    let order = qfx_data::epoch_order(config.train.seed, u64::MAX, data.len());
    let len = data.image_len();
    let images: Vec<u8> = order[..n]
        .iter()
        .flat_map(|&i| data.images[i * len..(i + 1) * len].iter().copied())
        .collect();
    let mut valid = model.valid();
    let x = input_tensor(&images, n, data.shape, config, &Device::flex());
    valid.calibrate(x, config.calibration.method);
    load_module_tensors(model, module_tensors(&valid))
}

/// Each exported tensor's formats (`layer`, `layer.weight`, `layer.acc`…; one per channel where
/// the tensor has per-channel formats, repeated formats collapsed) of a quantized model.
pub fn formats(ir: &qfx_ir::Model) -> BTreeMap<String, Vec<Format>> {
    let mut out = BTreeMap::new();
    let mut put = |name: String, fs: &[Format]| {
        let mut v = fs.to_vec();
        v.dedup();
        out.insert(name, v);
    };
    for l in &ir.layers {
        put(l.name.clone(), &[l.output]);
        match &l.op {
            qfx_ir::Op::Dense {
                weight,
                bias,
                accumulator,
                ..
            }
            | qfx_ir::Op::Conv2d {
                weight,
                bias,
                accumulator,
                ..
            }
            | qfx_ir::Op::Conv1d {
                weight,
                bias,
                accumulator,
                ..
            } => {
                put(format!("{}.weight", l.name), &weight.formats);
                if let Some(b) = bias {
                    put(format!("{}.bias", l.name), &b.formats);
                }
                put(format!("{}.acc", l.name), accumulator);
            }
            qfx_ir::Op::BatchNorm { scale, shift } => {
                put(format!("{}.scale", l.name), &scale.formats);
                put(format!("{}.shift", l.name), &shift.formats);
            }
            qfx_ir::Op::GlobalAvgPool { reciprocal }
            | qfx_ir::Op::AvgPool2d { reciprocal, .. }
            | qfx_ir::Op::AvgPool1d { reciprocal, .. } => {
                put(format!("{}.reciprocal", l.name), &reciprocal.formats);
            }
            qfx_ir::Op::Prelu { slope } => put(format!("{}.slope", l.name), &slope.formats),
            qfx_ir::Op::Quantize
            | qfx_ir::Op::Sign
            | qfx_ir::Op::Relu { .. }
            | qfx_ir::Op::Add
            | qfx_ir::Op::MaxPool2d { .. }
            | qfx_ir::Op::Flatten
            | qfx_ir::Op::Shortcut { .. }
            | qfx_ir::Op::HardTanh { .. }
            | qfx_ir::Op::HardSigmoid { .. }
            | qfx_ir::Op::Lookup { .. }
            | qfx_ir::Op::Multiply
            | qfx_ir::Op::Concat
            | qfx_ir::Op::MaxPool1d { .. }
            | qfx_ir::Op::GlobalMaxPool
            | qfx_ir::Op::Reshape { .. } => {}
        }
    }
    out
}

/// Exports a quantized model with the run's preprocessing.
pub fn export_ir(
    model: &Model,
    config: &RunConfig,
    name: &str,
    shape: [usize; 3],
) -> Result<qfx_ir::Model, TrainError> {
    let mut ir = crate::export::export(model, name, shape)?;
    ir.preprocess = Some(config.normalize.preprocess());
    Ok(ir)
}

/// Progress reported while training.
#[derive(Clone, Debug)]
pub enum Event {
    /// A step finished: running means over the epoch so far.
    Step {
        /// Epoch (0-based).
        epoch: usize,
        /// Step within the epoch (1-based).
        step: usize,
        /// Steps per epoch.
        steps: usize,
        /// Mean training loss so far this epoch.
        loss: f64,
        /// Training accuracy so far this epoch.
        accuracy: f64,
    },
    /// An epoch finished.
    Epoch(EpochMetrics),
    /// A checkpoint was written.
    Checkpoint(PathBuf),
}

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number (1-based).
    pub epoch: usize,
    /// Learning rate at the epoch's last step.
    pub lr: f64,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy (on augmented batches, quantized forward pass).
    pub train_accuracy: f64,
    /// Test accuracy.
    pub test: Accuracy,
    /// Formats of every exported tensor (quantized runs).
    pub formats: BTreeMap<String, Vec<Format>>,
    /// Seconds the epoch took.
    pub seconds: f64,
}

/// How a training run starts.
#[derive(Clone, Debug)]
pub enum Start {
    /// From the configured initialization (seeded).
    Fresh,
    /// From another run's weights (e.g. QAT from a float checkpoint); binary points are then
    /// calibrated.
    From(PathBuf),
    /// Continue the run in the run directory from its latest checkpoint.
    Resume,
}

/// How a training run ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The trained model.
    pub model: Model,
    /// The last checkpoint written.
    pub checkpoint: PathBuf,
    /// Test accuracy after the last epoch (None when interrupted before one finished).
    pub accuracy: Option<Accuracy>,
    /// False when stopped by the stop flag before finishing.
    pub finished: bool,
}

/// Trains `config` on `data` in run directory `run`. `stop` is polled after every step: when set,
/// a checkpoint is saved and the run returns unfinished (Ctrl-C). A non-finite loss stops the run
/// with an error naming the step; the last good checkpoint stays in place.
pub fn train(
    run: &Path,
    config: &RunConfig,
    data: &qfx_data::Splits,
    start: Start,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(&Event),
) -> Result<Outcome, TrainError> {
    config.validate()?;
    config.check_data(&data.train, "training")?;
    config.check_data(&data.test, "test")?;
    if !matches!(start, Start::Resume) && run.join("checkpoints").join("latest").exists() {
        // Starting over in place would mix two runs' checkpoints and metrics.
        return Err(TrainError::Config(format!(
            "{} already holds a run; continue it with --resume, or use a new run directory",
            run.display()
        )));
    }
    std::fs::create_dir_all(run).map_err(|e| io_err(run, e))?;
    let shape = data.train.shape;
    let t = &config.train;
    let device = Device::flex().autodiff();
    let mut model = init_seeded(config, &device)?;
    let mut optim = Optimizer::new(t.optimizer, t.weight_decay);
    let mut meta = CheckpointMeta {
        version: CHECKPOINT_VERSION,
        config: config.clone(),
        input_shape: shape,
        epoch: 0,
        step_in_epoch: 0,
        global_step: 0,
        epoch_sums: (0.0, 0, 0),
        optimizer_steps: 0,
        rng: Rng::stream(t.seed, 1 << 32).state(),
        finished: false,
        test_accuracy: None,
        formats: BTreeMap::new(),
        checksums: BTreeMap::new(),
    };
    let config_path = run.join("config.toml");
    let metrics_path = run.join("metrics.jsonl");
    match &start {
        Start::Resume => {
            let ckpt = Checkpoint::load(run)?;
            if ckpt.meta.config != *config {
                return Err(TrainError::Checkpoint(format!(
                    "cannot resume {}: its configuration differs from the one given (resume with \
                     the run's own config.toml, or start a new run directory)",
                    run.display()
                )));
            }
            if ckpt.meta.finished {
                return Err(TrainError::Checkpoint(format!(
                    "{} already finished all {} epochs",
                    run.display(),
                    t.epochs
                )));
            }
            model = load_module_tensors(model, ckpt.model)?;
            let params = module_tensors(&model);
            optim.load_state(ckpt.optimizer, ckpt.meta.optimizer_steps, &params, &device)?;
            meta = ckpt.meta;
            meta.checksums.clear();
            truncate_metrics(&metrics_path, meta.epoch)?;
        }
        Start::From(path) => {
            let ckpt = Checkpoint::load(path)?;
            ckpt.check_model(config)?;
            model = load_module_tensors(model, ckpt.model)?;
            if config.quant.enabled {
                model = calibrate(model, &data.train, config)?;
            }
        }
        Start::Fresh => {
            if config.quant.enabled {
                model = calibrate(model, &data.train, config)?;
            }
        }
    }
    if !matches!(start, Start::Resume) {
        write_atomic(&config_path, config.to_toml().as_bytes())?;
        write_atomic(&metrics_path, b"")?;
        if config.quant.enabled {
            let ir = export_ir(&model, config, "model", shape)?;
            write_atomic(&run.join("model.init.ir.json"), ir.to_json().as_bytes())?;
        }
    }

    let train_set = if t.train_limit > 0 {
        data.train.take(t.train_limit)
    } else {
        data.train.clone()
    };
    let steps = train_set.len().div_ceil(t.batch_size);
    let total = steps * t.epochs;
    let augment = qfx_data::Augment {
        pad: t.crop_padding,
        flip: t.flip,
    };
    let mut rng = Rng::from_state(meta.rng)
        .ok_or_else(|| TrainError::Checkpoint("invalid RNG state".to_string()))?;
    let mut last_checkpoint = None;
    let mut accuracy = None;
    let save = |model: &Model, optim: &Optimizer, meta: &mut CheckpointMeta, rng: &Rng| {
        // burn keeps a BatchNorm running statistic's newest update pending until the next
        // forward (or `valid()`) folds it in, and reading the module skips the pending one:
        // fold it in first, or a mid-epoch checkpoint would hold statistics one step old.
        let _ = model.valid();
        let (state, steps) = optim.state();
        meta.optimizer_steps = steps;
        meta.rng = rng.state();
        save_checkpoint(run, meta, &module_tensors(model), &state)
    };
    while meta.epoch < t.epochs {
        let epoch = meta.epoch;
        let began = Instant::now();
        let order = qfx_data::epoch_order(t.seed, epoch as u64, train_set.len());
        let (mut loss_sum, mut correct, mut seen) = meta.epoch_sums;
        let mut lr = t.lr;
        for step in meta.step_in_epoch..steps {
            let idx = &order[step * t.batch_size..((step + 1) * t.batch_size).min(order.len())];
            let b = qfx_data::batch(&train_set, idx, &augment, &mut rng)
                .map_err(|e| TrainError::Data(e.to_string()))?;
            let x = input_tensor(&b.images, idx.len(), shape, config, &device);
            let logits = model.forward(x);
            let loss = cross_entropy(logits.clone(), &b.labels);
            let loss_value = loss.clone().into_scalar::<f32>() as f64;
            if !loss_value.is_finite() {
                return Err(TrainError::NonFinite(format!(
                    "the training loss became {loss_value} at epoch {}, step {} (step {} of the \
                     run); stopped without saving, the last good checkpoint is {}",
                    epoch + 1,
                    step + 1,
                    meta.global_step + 1,
                    last_checkpoint
                        .as_ref()
                        .map(|p: &PathBuf| p.display().to_string())
                        .unwrap_or_else(|| "(none yet)".to_string())
                )));
            }
            correct += crate::train::correct(logits.detach(), &b.labels);
            seen += idx.len();
            loss_sum += loss_value * idx.len() as f64;
            lr = t.schedule.rate(t.lr, meta.global_step, total, steps);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            meta.global_step += 1;
            meta.step_in_epoch = step + 1;
            meta.epoch_sums = (loss_sum, correct, seen);
            on_event(&Event::Step {
                epoch,
                step: step + 1,
                steps,
                loss: loss_sum / seen as f64,
                accuracy: correct as f64 / seen as f64,
            });
            if stop.load(Ordering::SeqCst) && step + 1 < steps {
                let dir = save(&model, &optim, &mut meta, &rng)?;
                on_event(&Event::Checkpoint(dir.clone()));
                return Ok(Outcome {
                    model,
                    checkpoint: dir,
                    accuracy,
                    finished: false,
                });
            }
        }
        let test = evaluate(&model, &data.test, config, t.test_limit);
        let formats = if config.quant.enabled {
            formats(&export_ir(&model, config, "model", shape)?)
        } else {
            BTreeMap::new()
        };
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            lr,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            test,
            formats: formats.clone(),
            seconds: began.elapsed().as_secs_f64(),
        };
        append_line(
            &metrics_path,
            &serde_json::to_string(&metrics).expect("serializes"),
        )?;
        on_event(&Event::Epoch(metrics));
        accuracy = Some(test);
        meta.epoch += 1;
        meta.step_in_epoch = 0;
        meta.epoch_sums = (0.0, 0, 0);
        meta.finished = meta.epoch == t.epochs;
        meta.test_accuracy = Some(test.top1);
        meta.formats = formats;
        let dir = save(&model, &optim, &mut meta, &rng)?;
        on_event(&Event::Checkpoint(dir.clone()));
        last_checkpoint = Some(dir);
        if stop.load(Ordering::SeqCst) && !meta.finished {
            break;
        }
    }
    if meta.finished && config.quant.enabled {
        let ir = export_ir(&model, config, "model", shape)?;
        write_atomic(&run.join("model.ir.json"), ir.to_json().as_bytes())?;
    }
    let checkpoint = match last_checkpoint {
        Some(c) => c,
        None => resolve_checkpoint(run)?,
    };
    Ok(Outcome {
        model,
        checkpoint,
        accuracy,
        finished: meta.finished,
    })
}

/// Loads a checkpoint's model (inference), checking it fits `config` when given.
pub fn load_model(path: &Path) -> Result<(Model, Checkpoint), TrainError> {
    let ckpt = Checkpoint::load(path)?;
    let config = &ckpt.meta.config;
    let model = config.model.init(&config.quant, &Device::flex())?;
    let model = load_module_tensors(model, ckpt.model.clone())?;
    Ok((model, ckpt))
}

/// The configured model initialized from the configured seed. The backend's random generator
/// is process-wide, so seeding and drawing happen under one lock: two runs in one process (the
/// test harness's threads, a library user's) cannot interleave and change each other's weights.
fn init_seeded(config: &RunConfig, device: &Device) -> Result<Model, TrainError> {
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(config.train.seed);
    config.model.init(&config.quant, device)
}

/// Post-training quantization: the float checkpoint's weights, binary points calibrated on
/// training data with `config`'s formats, no training. Writes a checkpoint and `model.ir.json`
/// into `run`.
pub fn ptq(
    run: &Path,
    float_checkpoint: &Path,
    config: &RunConfig,
    data: &qfx_data::Splits,
) -> Result<(Model, Accuracy), TrainError> {
    if !config.quant.enabled {
        return Err(TrainError::Config(
            "PTQ needs quantization enabled (quant.enabled = true)".to_string(),
        ));
    }
    config.validate()?;
    config.check_data(&data.train, "training")?;
    config.check_data(&data.test, "test")?;
    let ckpt = Checkpoint::load(float_checkpoint)?;
    ckpt.check_model(config)?;
    std::fs::create_dir_all(run).map_err(|e| io_err(run, e))?;
    let device = Device::flex();
    let model = init_seeded(config, &device)?;
    let model = load_module_tensors(model, ckpt.model)?;
    let model = calibrate(model, &data.train, config)?;
    let accuracy = evaluate(&model, &data.test, config, config.train.test_limit);
    let shape = data.train.shape;
    let ir = export_ir(&model, config, "model", shape)?;
    let mut ptq_config = config.clone();
    ptq_config.train.epochs = 0;
    let meta = CheckpointMeta {
        version: CHECKPOINT_VERSION,
        config: ptq_config.clone(),
        input_shape: shape,
        epoch: 0,
        step_in_epoch: 0,
        global_step: 0,
        epoch_sums: (0.0, 0, 0),
        optimizer_steps: 0,
        rng: Rng::seed(0).state(),
        finished: true,
        test_accuracy: Some(accuracy.top1),
        formats: formats(&ir),
        checksums: BTreeMap::new(),
    };
    write_atomic(&run.join("config.toml"), ptq_config.to_toml().as_bytes())?;
    save_checkpoint(run, &meta, &module_tensors(&model), &[])?;
    write_atomic(&run.join("model.ir.json"), ir.to_json().as_bytes())?;
    Ok((model, accuracy))
}

fn append_line(path: &Path, line: &str) -> Result<(), TrainError> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    writeln!(f, "{line}").map_err(|e| io_err(path, e))
}

/// Keeps the metrics of the first `epochs` epochs (a resumed run rewrites the later ones).
fn truncate_metrics(path: &Path, epochs: usize) -> Result<(), TrainError> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let kept: String = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(epochs)
        .map(|l| format!("{l}\n"))
        .collect();
    write_atomic(path, kept.as_bytes())
}

/// Reads `metrics.jsonl`.
pub fn read_metrics(run: &Path) -> Result<Vec<EpochMetrics>, TrainError> {
    let path = run.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| io_err(&path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| TrainError::Io(format!("{} line {}: {e}", path.display(), i + 1)))
        })
        .collect()
}
