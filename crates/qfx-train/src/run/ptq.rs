//! Post-training quantization: a float checkpoint's weights with calibrated binary points, no
//! training.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::Device;
use qfx_data::Rng;

use super::checkpoint::{checksum, save_checkpoint, tensors_hash, Checkpoint};
use super::claim::claim_new;
use super::dir::RunDir;
use super::eval::{calibrate, evaluate, Accuracy};
use super::ir::{export_ir, formats, record_bytes};
use super::meta::{CheckpointMeta, CHECKPOINT_VERSION};
use super::{init_seeded, write_file};
use crate::config::RunConfig;
use crate::error::TrainError;
use crate::models::Model;
use crate::optim::{load_module_tensors, module_tensors};

/// Post-training quantization: the float checkpoint's weights, binary points calibrated on
/// training data with `config`'s formats, no training. Writes a checkpoint and `model.ir.json`
/// into `run`, which must not hold a run already (the float run itself included); the
/// directory is locked while it is written.
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
    let config = &config.with_absolute_data()?;
    config.validate()?;
    config.check_data(&data.train, "training")?;
    config.check_data(&data.test, "test")?;
    let ckpt = Checkpoint::load(float_checkpoint)?;
    ckpt.check_model(config)?;
    let run = RunDir::new(run);
    let _lock = claim_new(&run)?;
    let device = Device::flex();
    let model = init_seeded(config, &data.train.shape, &device)?;
    let model = load_module_tensors(model, ckpt.model)?;
    let model = calibrate(model, &data.train, config)?;
    let accuracy = evaluate(&model, &data.test, config, config.train.test_limit);
    let shape = data.train.shape;
    let ir = export_ir(&model, config, "model")?;
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
        test_accuracy: Some(accuracy.top1),
        formats: formats(&ir),
        checksums: BTreeMap::new(),
        parent: None,
        model_hash: None,
        ir_hash: Some(checksum(&record)),
    };
    save_checkpoint(&run, &meta, &tensors, &[])?;
    write_file(&run.ir(), &record)?;
    Ok((model, accuracy))
}
