//! Post-training quantization: a float checkpoint's weights with calibrated binary points, no
//! training.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::Device;
use qfx_data::{DataRef, Rng};

use super::checkpoint::{checksum, save_checkpoint, tensors_hash, Checkpoint};
use super::claim::claim_new;
use super::dir::RunDir;
use super::eval::{calibrate, evaluate, Score};
use super::feed::run_preprocess;
use super::ir::{export_ir, formats, record_bytes};
use super::meta::{CheckpointMeta, CHECKPOINT_VERSION};
use super::{init_seeded, table_standardization, write_file};
use crate::config::RunConfig;
use crate::error::TrainError;
use crate::models::Model;
use crate::optim::{load_weights, module_tensors};

/// Post-training quantization: the float checkpoint's weights, binary points calibrated on
/// training data with `config`'s formats, no training. Writes a checkpoint and `model.ir.json`
/// into `run`, which must not hold a run already (the float run itself included); the
/// directory is locked while it is written. A table's standardization is the float run's.
pub fn ptq<'a>(
    run: &Path,
    float_checkpoint: &Path,
    config: &RunConfig,
    data: impl Into<DataRef<'a>>,
) -> Result<(Model, Score), TrainError> {
    let data = data.into();
    if !config.quant.enabled {
        return Err(TrainError::Config(
            "PTQ needs quantization enabled (quant.enabled = true)".to_string(),
        ));
    }
    let config = &config.with_absolute_data()?;
    config.validate()?;
    config.check_data(data.train, "training")?;
    config.check_data(data.test, "test")?;
    let ckpt = Checkpoint::load(float_checkpoint)?;
    ckpt.check_model(config)?;
    let preprocess = run_preprocess(config, data, ckpt.meta.standardize.as_ref())?;
    let run = RunDir::new(run);
    let _lock = claim_new(&run)?;
    let device = Device::flex();
    let shape = data.train.shape();
    let model = init_seeded(config, &shape, &device)?;
    let model = load_weights(model, ckpt.model)?;
    let model = calibrate(model, data.train, config, &preprocess)?;
    let score = evaluate(
        &model,
        data.test,
        config,
        &preprocess,
        config.train.test_limit,
    )?;
    let ir = export_ir(&model, &preprocess, "model")?;
    let tensors = module_tensors(&model);
    let mut ptq_config = config.clone();
    ptq_config.train.epochs = 0;
    write_file(&run.config(), ptq_config.to_toml().as_bytes())?;
    // The checkpoint that records the model's checksum first, then the model of record.
    let record = record_bytes(&ir, &tensors_hash(&tensors));
    let meta = CheckpointMeta {
        checksum: None,
        version: CHECKPOINT_VERSION,
        config: ptq_config,
        input_shape: shape,
        epoch: 0,
        step_in_epoch: 0,
        global_step: 0,
        epoch_sums: (0.0, 0, 0),
        optimizer_steps: 0,
        rng: Rng::seed(0).state(),
        finished: true,
        test_accuracy: score.accuracy().map(|a| a.top1),
        test_mse: score.errors().map(|e| e.mse),
        standardize: table_standardization(data, &preprocess),
        formats: formats(&ir),
        checksums: BTreeMap::new(),
        parent: None,
        model_hash: None,
        ir_hash: Some(checksum(&record)),
        controller: None,
    };
    save_checkpoint(&run, &meta, &tensors, &[])?;
    write_file(&run.ir(), &record)?;
    Ok((model, score))
}
