//! The training loop: fresh, from another run's weights, or resumed; a checkpoint after every
//! epoch and on request (Ctrl-C), metrics per epoch, the exported model at the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Device;
use qfx_data::Rng;

use super::checkpoint::{
    resolve_checkpoint, save_checkpoint, Checkpoint, CheckpointMeta, CHECKPOINT_VERSION,
};
use super::dir::RunDir;
use super::eval::{calibrate, evaluate, input_tensor, Accuracy};
use super::ir::{export_ir, formats};
use super::metrics::{self, EpochMetrics};
use super::{init_seeded, io_err, save_ir, write_file};
use crate::config::RunConfig;
use crate::error::TrainError;
use crate::models::Model;
use crate::optim::{load_module_tensors, module_tensors, Optimizer};
use crate::train::cross_entropy;

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
    let run_dir = RunDir::new(run);
    if !matches!(start, Start::Resume) && run_dir.latest().exists() {
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
    let mut model = init_seeded(config, &shape, &device)?;
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
    match &start {
        Start::Resume => {
            let ckpt = Checkpoint::load(run)?;
            if ckpt.meta.config != *config {
                return Err(TrainError::Checkpoint(format!(
                    "cannot resume {}: its configuration differs from the one given (resume with \
                     the run's own {}, or start a new run directory)",
                    run.display(),
                    run_dir.config().display()
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
            metrics::truncate(&run_dir, meta.epoch)?;
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
        write_file(&run_dir.config(), config.to_toml().as_bytes())?;
        write_file(&run_dir.metrics(), b"")?;
        if config.quant.enabled {
            let ir = export_ir(&model, config, "model")?;
            save_ir(&ir, &run_dir.init_ir())?;
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
        save_checkpoint(&run_dir, meta, &module_tensors(model), &state)
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
            formats(&export_ir(&model, config, "model")?)
        } else {
            BTreeMap::new()
        };
        let epoch_metrics = EpochMetrics {
            epoch: epoch + 1,
            lr,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            test,
            formats: formats.clone(),
            seconds: began.elapsed().as_secs_f64(),
        };
        metrics::append(&run_dir, &epoch_metrics)?;
        on_event(&Event::Epoch(epoch_metrics));
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
        let ir = export_ir(&model, config, "model")?;
        save_ir(&ir, &run_dir.ir())?;
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
