//! The training loop: fresh, from another run's weights, or resumed; a checkpoint after every
//! epoch and on request (Ctrl-C), metrics per epoch, the exported model at the end.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Device;
use qfx_data::{DataRef, Rng};

use super::checkpoint::{checksum, save_checkpoint, tensors_hash, Checkpoint};
use super::claim::claim_new;
use super::dir::{CheckpointDir, RunDir};
use super::eval::{calibrate, evaluate, Score};
use super::feed::{self, run_preprocess};
use super::ir::{export_ir, formats, overflow_warnings, record_bytes};
use super::lock::{ensure_dir, RunLock};
use super::meta::CheckpointMeta;
use super::metrics::{self, EpochMetrics};
use super::{init_seeded, save_ir, table_standardization, write_file};
use crate::config::RunConfig;
use crate::cost::{measure, model_cost, Controller};
use crate::data::Task;
use crate::error::TrainError;
use crate::models::Model;
use crate::optim::{load_module_tensors, load_weights, module_tensors, Optimizer};
use crate::safetensors::NamedTensor;

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
        /// Training accuracy so far this epoch (classifiers).
        accuracy: Option<f64>,
    },
    /// An epoch finished.
    Epoch(EpochMetrics),
    /// A checkpoint was written.
    Checkpoint(PathBuf),
    /// Something the user should know before or while the run trains: a format that can
    /// overflow, a `latest` that had to be recovered, a model exported again.
    Warning(String),
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
    /// Test accuracy or errors after the last epoch (None when interrupted before one
    /// finished).
    pub score: Option<Score>,
    /// False when stopped by the stop flag before finishing.
    pub finished: bool,
}

/// Trains `config` on `data` in run directory `run`. `stop` is polled after every step: when set,
/// a checkpoint is saved and the run returns unfinished (Ctrl-C). A non-finite loss stops the run
/// with an error naming the step; the last good checkpoint stays in place.
///
/// The run directory is locked for the whole run ([`RunLock`]); a fresh run (or one from
/// another run's weights) is refused where a run already is. Everything that can be checked is
/// checked before the first step: the configuration, the data, the run directory's folders
/// and files, the model's export; warnings (formats that can overflow, a recovered `latest`)
/// go to `on_event` before training starts.
pub fn train<'a>(
    run: &Path,
    config: &RunConfig,
    data: impl Into<DataRef<'a>>,
    start: Start,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(&Event),
) -> Result<Outcome, TrainError> {
    let data = data.into();
    let config = &config.with_absolute_data()?;
    config.validate()?;
    config.check_data(data.train, "training")?;
    config.check_data(data.test, "test")?;
    let task = config.task();
    let run_dir = RunDir::new(run);
    let _lock = match start {
        Start::Resume if !run.is_dir() => {
            return Err(TrainError::Checkpoint(format!(
                "cannot resume {}: no such run directory",
                run.display()
            )))
        }
        Start::Resume => RunLock::acquire(&run_dir)?,
        Start::Fresh | Start::From(_) => claim_new(&run_dir)?,
    };
    preflight(&run_dir)?;
    let shape = data.train.shape();
    let t = &config.train;
    // With `train_limit`, the first samples only: every epoch's order is a permutation of them.
    let train_len = match t.train_limit {
        0 => data.train.len(),
        limit => limit.min(data.train.len()),
    };
    let steps = train_len.div_ceil(t.batch_size);
    let total = steps * t.epochs;
    let device = Device::flex().autodiff();
    let mut model = init_seeded(config, &shape, &device)?;
    let mut optim = Optimizer::new(t.optimizer, t.weight_decay);
    if config.cost.has_budget() {
        optim.set_width_lr(Some(t.lr));
    }
    let mut preprocess = run_preprocess(config, data, None)?;
    let mut meta = CheckpointMeta::fresh(config, &shape);
    let mut last_checkpoint = None;
    match &start {
        Start::Resume => {
            let ckpt = Checkpoint::load(run)?;
            if let Some(note) = &ckpt.recovered {
                on_event(&Event::Warning(note.clone()));
            }
            let differences = ckpt.meta.config.with_absolute_data()?.differences(config);
            if !differences.is_empty() {
                return Err(TrainError::Checkpoint(format!(
                    "cannot resume {}: the checkpoint's configuration differs from the one \
                     given in {} (checkpoint → given: {}); resume with the run's own {} and no \
                     other settings, or start a new run directory",
                    run.display(),
                    if differences.len() == 1 {
                        "one setting"
                    } else {
                        "these settings"
                    },
                    differences.join("; "),
                    run_dir.config().display()
                )));
            }
            if ckpt.meta.finished {
                return finished_again(&run_dir, ckpt, model, config, on_event);
            }
            preprocess = run_preprocess(config, data, ckpt.meta.standardize.as_ref())?;
            let m = &ckpt.meta;
            if m.global_step != m.epoch * steps + m.step_in_epoch || m.step_in_epoch >= steps {
                return Err(TrainError::Checkpoint(format!(
                    "cannot resume from {}: it is {} steps into the run at epoch {}, step {}, \
                     which does not fit the {steps} steps per epoch of this data (did the \
                     dataset or train.train_limit change?)",
                    ckpt.dir.display(),
                    m.global_step,
                    m.epoch + 1,
                    m.step_in_epoch
                )));
            }
            model = load_module_tensors(model, ckpt.model)?;
            let params = module_tensors(&model);
            optim.load_state(ckpt.optimizer, ckpt.meta.optimizer_steps, &params, &device)?;
            meta = ckpt.meta;
            meta.checksum = None;
            meta.checksums.clear();
            meta.ir_hash = None;
            meta.parent = checkpoint_name(&ckpt.dir);
            metrics::truncate(&run_dir, meta.epoch)?;
            last_checkpoint = Some(ckpt.dir);
        }
        Start::From(path) => {
            let ckpt = Checkpoint::load(path)?;
            ckpt.check_model(config)?;
            // The weights were trained on inputs standardized as that run's: keep it.
            preprocess = run_preprocess(config, data, ckpt.meta.standardize.as_ref())?;
            model = load_weights(model, ckpt.model)?;
            if config.quant.enabled {
                model = calibrate(model, data.train, config, &preprocess)?;
            }
        }
        Start::Fresh => {
            if config.quant.enabled {
                model = calibrate(model, data.train, config, &preprocess)?;
            }
        }
    }
    meta.standardize = table_standardization(data, &preprocess);
    if config.quant.enabled {
        // Exported now, before any step: an export error (or a format that overflows) is
        // reported before an epoch of training, not after it.
        let ir = export_ir(&model, &preprocess, "model")?;
        for warning in overflow_warnings(&ir) {
            on_event(&Event::Warning(warning));
        }
        if !matches!(start, Start::Resume) {
            save_ir(&ir, &run_dir.init_ir())?;
        }
    }
    if !matches!(start, Start::Resume) {
        write_file(&run_dir.config(), config.to_toml().as_bytes())?;
        write_file(&run_dir.metrics(), b"")?;
    } else if std::fs::symlink_metadata(run_dir.config()).is_err() {
        // Resumed with the checkpoint's configuration: the run's copy comes back.
        write_file(&run_dir.config(), config.to_toml().as_bytes())?;
    }

    let cost_model = qfx_hls::cost::CostModel::default();
    let cost_of = |model: &Model| model_cost(model, config.cost.kind, &cost_model);
    if config.cost.active() && meta.controller.is_none() {
        let start = cost_of(&model).into_scalar::<f32>() as f64;
        meta.controller = Some(Controller::start(&config.cost, start));
    }
    let augment = qfx_data::Augment {
        pad: t.crop_padding,
        flip: t.flip,
    };
    let mut rng = Rng::from_state(meta.rng)
        .ok_or_else(|| TrainError::Checkpoint("invalid RNG state".to_string()))?;
    let mut score = None;
    let save =
        |tensors: &[NamedTensor], optim: &Optimizer, meta: &mut CheckpointMeta, rng: &Rng| {
            let (state, steps) = optim.state();
            meta.optimizer_steps = steps;
            meta.rng = rng.state();
            let dir = save_checkpoint(&run_dir, meta, tensors, &state)?;
            // The next checkpoint continues this one.
            meta.parent = checkpoint_name(&dir);
            Ok::<PathBuf, TrainError>(dir)
        };
    while meta.epoch < t.epochs {
        let epoch = meta.epoch;
        let began = Instant::now();
        let order = qfx_data::epoch_order(t.seed, epoch as u64, train_len);
        let (mut loss_sum, mut correct, mut seen) = meta.epoch_sums;
        let mut lr = t.lr;
        for step in meta.step_in_epoch..steps {
            let idx = &order[step * t.batch_size..((step + 1) * t.batch_size).min(order.len())];
            let x = feed::inputs(data.train, idx, &augment, &mut rng, &preprocess)?;
            let targets = feed::targets(data.train, idx, task, &x)?;
            let logits = feed::forward(&model, x, idx.len(), &shape, &device);
            let task_loss = feed::loss(logits.clone(), &targets);
            let loss_value = task_loss.clone().into_scalar::<f32>() as f64;
            let loss = match &meta.controller {
                // Within the budget the weight is 0: the cost's graph is not even built.
                Some(c) if c.weight() > 0.0 => task_loss + cost_of(&model) * c.weight(),
                _ => task_loss,
            };
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
            if let feed::Targets::Labels(labels) = &targets {
                correct += crate::train::correct_of(logits.detach(), labels.iter().copied());
            }
            seen += idx.len();
            loss_sum += loss_value * idx.len() as f64;
            lr = t.schedule.rate(t.lr, meta.global_step, total, steps);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            meta.global_step += 1;
            if let Some(c) = &mut meta.controller {
                let settling = meta.global_step >= config.cost.settle_from(total);
                if settling {
                    optim.set_width_lr(Some(0.0));
                } else if config.cost.has_budget()
                    && meta.global_step.is_multiple_of(config.cost.every())
                {
                    let ir = export_ir(&model, &preprocess, "model")?;
                    let was_on = c.weight() > 0.0;
                    c.update(&config.cost, &measure(&ir)?);
                    if was_on && c.weight() == 0.0 {
                        optim.clear_width_momentum();
                    }
                }
            }
            meta.step_in_epoch = step + 1;
            meta.epoch_sums = (loss_sum, correct, seen);
            on_event(&Event::Step {
                epoch,
                step: step + 1,
                steps,
                loss: loss_sum / seen as f64,
                accuracy: (task == Task::Classification).then(|| correct as f64 / seen as f64),
            });
            if stop.load(Ordering::SeqCst) && step + 1 < steps {
                let dir = save(&snapshot(&model), &optim, &mut meta, &rng)?;
                on_event(&Event::Checkpoint(dir.clone()));
                return Ok(Outcome {
                    model,
                    checkpoint: dir,
                    score,
                    finished: false,
                });
            }
        }
        let test = evaluate(&model, data.test, config, &preprocess, t.test_limit)?;
        let tensors = snapshot(&model);
        let ir = if config.quant.enabled {
            Some(export_ir(&model, &preprocess, "model")?)
        } else {
            None
        };
        let formats = ir.as_ref().map(formats).unwrap_or_default();
        let epoch_metrics = EpochMetrics {
            epoch: epoch + 1,
            lr,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: (task == Task::Classification)
                .then(|| correct as f64 / seen.max(1) as f64),
            test,
            formats: formats.clone(),
            seconds: began.elapsed().as_secs_f64(),
            cost: ir.as_ref().map(measure).transpose()?,
            beta: meta.controller.map(|c| c.beta),
        };
        metrics::append(&run_dir, &epoch_metrics)?;
        on_event(&Event::Epoch(epoch_metrics));
        score = Some(test);
        meta.epoch += 1;
        meta.step_in_epoch = 0;
        meta.epoch_sums = (0.0, 0, 0);
        meta.finished = meta.epoch == t.epochs;
        meta.test_accuracy = test.accuracy().map(|a| a.top1);
        meta.test_mse = test.errors().map(|e| e.mse);
        meta.formats = formats;
        // The model of record of a finished quantized run: its checksum goes into the last
        // checkpoint, written first, so `model.ir.json` exists only beside the checkpoint that
        // vouches for it; a crash in between leaves a finished run without it, which
        // `--resume` exports again.
        let record = match (meta.finished, &ir) {
            (true, Some(ir)) => Some(record_bytes(ir, &tensors_hash(&tensors))),
            _ => None,
        };
        meta.ir_hash = record.as_deref().map(checksum);
        let dir = save(&tensors, &optim, &mut meta, &rng)?;
        if let Some(bytes) = &record {
            write_file(&run_dir.ir(), bytes)?;
        }
        on_event(&Event::Checkpoint(dir.clone()));
        last_checkpoint = Some(dir);
        if stop.load(Ordering::SeqCst) && !meta.finished {
            break;
        }
    }
    let checkpoint = last_checkpoint
        .ok_or_else(|| TrainError::Checkpoint("the run ended without a checkpoint".to_string()))?;
    Ok(Outcome {
        model,
        checkpoint,
        score,
        finished: meta.finished,
    })
}

/// The model's tensors as a checkpoint stores them. burn keeps a BatchNorm running statistic's
/// newest update pending until the next forward (or `valid()`) folds it in, and reading the
/// module skips the pending one: fold it in first, or a mid-epoch checkpoint would hold
/// statistics one step old.
fn snapshot(model: &Model) -> Vec<NamedTensor> {
    let _ = model.valid();
    module_tensors(model)
}

/// A checkpoint directory's name (what `parent` and `latest` record).
fn checkpoint_name(dir: &Path) -> Option<String> {
    dir.file_name().map(|n| n.to_string_lossy().to_string())
}

/// Checks the run directory's layout before the first step, so a run cannot fail after an
/// epoch of training for a reason it could have seen at the start: `checkpoints/` must be (or
/// become) a folder that takes new folders, and every file the run writes must be absent or a
/// regular file.
fn preflight(run: &RunDir) -> Result<(), TrainError> {
    ensure_dir(&run.checkpoints())?;
    // A checkpoint is assembled in a folder of its own there: one that cannot be made now
    // (a read-only folder) would fail the first save, an epoch later.
    let probe = run.staging_dir("step-probe");
    let _ = std::fs::remove_dir(&probe);
    std::fs::create_dir(&probe).map_err(|e| {
        TrainError::Io(format!(
            "cannot write checkpoints into {}: {e}",
            run.checkpoints().display()
        ))
    })?;
    let _ = std::fs::remove_dir(&probe);
    for path in [
        run.config(),
        run.metrics(),
        run.ir(),
        run.init_ir(),
        run.latest(),
    ] {
        if let Ok(m) = std::fs::metadata(&path) {
            if !m.is_file() {
                return Err(TrainError::Io(format!(
                    "{} is {}, not a regular file: the run could not write it",
                    path.display(),
                    qfx_fs::file_kind(&m)
                )));
            }
        }
    }
    Ok(())
}

/// `--resume` of a finished run: nothing to train. A quantized run whose `model.ir.json` is
/// missing gets it exported again from its last checkpoint (and the checkpoint's record of it
/// updated); anything else is an error saying the run is done.
fn finished_again(
    run: &RunDir,
    ckpt: Checkpoint,
    model: Model,
    config: &RunConfig,
    on_event: &mut dyn FnMut(&Event),
) -> Result<Outcome, TrainError> {
    let missing = std::fs::symlink_metadata(run.ir()).is_err();
    if !(config.quant.enabled && missing) {
        return Err(TrainError::Checkpoint(format!(
            "{} already finished all {} epochs",
            run.root().display(),
            ckpt.meta.config.train.epochs
        )));
    }
    let model = load_module_tensors(model, ckpt.model.clone())?;
    let tensors = snapshot(&model);
    let ir = export_ir(&model, &ckpt.meta.preprocess(), "model")?;
    let bytes = record_bytes(&ir, &tensors_hash(&tensors));
    let mut meta = ckpt.meta.clone();
    meta.ir_hash = Some(checksum(&bytes));
    meta.model_hash = Some(tensors_hash(&tensors));
    meta.write(&CheckpointDir::new(&ckpt.dir))?;
    write_file(&run.ir(), &bytes)?;
    on_event(&Event::Warning(format!(
        "{} was missing: exported again from {}",
        run.ir().display(),
        ckpt.dir.display()
    )));
    Ok(Outcome {
        model,
        checkpoint: ckpt.dir,
        score: None,
        finished: true,
    })
}
