//! A network whose weights come from elsewhere (a model trained in another framework and
//! translated into a layer graph): the model with those weights, its forward pass on host
//! values, and a new float run that starts from them. Nothing here knows the file format the
//! weights came from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

use super::checkpoint::save_checkpoint;
use super::claim::claim_new;
use super::dir::RunDir;
use super::meta::CheckpointMeta;
use super::{init_seeded, write_file};
use crate::config::RunConfig;
use crate::error::TrainError;
use crate::host::HostValues;
use crate::models::Model;
use crate::optim::{load_module_tensors, module_tensors};
use crate::safetensors::NamedTensor;

/// The configured network for samples of shape `input`, built as a new run would build it
/// (seeded, its size checked), with every tensor named in `weights` (by module path, as
/// checkpoints name them: [`crate::graph::GraphModel::module_path`]) set to the value given.
/// Tensors not named keep their initial values (binary points, say). A name that is not a
/// tensor of the network, a shape that differs, a non-finite value, or a name given twice is
/// an error listing every such tensor.
pub fn model_with_weights(
    config: &RunConfig,
    input: &[usize],
    weights: Vec<NamedTensor>,
) -> Result<Model, TrainError> {
    config.validate()?;
    let model = init_seeded(config, input, &Device::flex())?;
    let mut given: BTreeMap<String, NamedTensor> = BTreeMap::new();
    let mut problems = Vec::new();
    for t in weights {
        if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
            problems.push(format!("`{}`[{i}] is {}", t.name, t.data[i]));
        }
        if t.shape.iter().product::<usize>() != t.data.len() {
            problems.push(format!(
                "`{}` has {} values for shape {:?}",
                t.name,
                t.data.len(),
                t.shape
            ));
        }
        if let Some(t) = given.insert(t.name.clone(), t) {
            problems.push(format!("`{}` is given twice", t.name));
        }
    }
    let mut tensors = module_tensors(&model);
    let known: BTreeSet<String> = tensors.iter().map(|t| t.name.clone()).collect();
    for t in &mut tensors {
        if let Some(w) = given.remove(&t.name) {
            if w.shape != t.shape {
                problems.push(format!(
                    "`{}` has shape {:?}, the network needs {:?}",
                    w.name, w.shape, t.shape
                ));
            } else {
                *t = w;
            }
        }
    }
    for name in given.keys() {
        problems.push(format!(
            "`{name}` is not a tensor of the network (it has {})",
            known.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if !problems.is_empty() {
        return Err(TrainError::Shape(format!(
            "the weights do not fit the network: {}",
            problems.join("; ")
        )));
    }
    load_module_tensors(model, tensors)
}

/// The forward pass of `model` in inference mode on host values: `x` holds `batch` samples of
/// the network's input shape, row-major; the result is `[batch, outputs]`, row-major.
pub fn infer(model: &Model, x: &[f32], batch: usize) -> Result<Vec<f32>, TrainError> {
    let input = &model.graph.input;
    let n: usize = input.iter().product();
    if x.len() != batch * n {
        return Err(TrainError::Shape(format!(
            "{} values are not {batch} samples of {input:?}",
            x.len()
        )));
    }
    let x = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [batch, n]), &Device::flex());
    Ok(model.valid().forward(x).host_f32())
}

/// Starts a new float run in `run` (refused where a run is, as `qfx train` refuses) whose
/// weights are `weights` ([`model_with_weights`]): writes `config.toml`, an empty
/// `metrics.jsonl` and a checkpoint at step 0 (no epoch done, no optimizer state), so that
/// `qfx eval`, `qfx ptq --from`, `qfx train --from` and `qfx train --resume` (float training
/// from these weights) take it like any float run. `config` must have quantization off.
/// Returns the checkpoint's directory.
pub fn create_float_run(
    run: &Path,
    config: &RunConfig,
    input_shape: [usize; 3],
    weights: Vec<NamedTensor>,
) -> Result<PathBuf, TrainError> {
    if config.quant.enabled {
        return Err(TrainError::Config(
            "a run started from given weights is a float run (quant.enabled = false)".into(),
        ));
    }
    let config = &config.with_absolute_data()?;
    // Everything that can fail on the weights fails before the directory is touched.
    let model = model_with_weights(config, &input_shape, weights)?;
    let tensors = module_tensors(&model);
    let run = RunDir::new(run);
    let _lock = claim_new(&run)?;
    write_file(&run.config(), config.to_toml().as_bytes())?;
    write_file(&run.metrics(), b"")?;
    let meta = CheckpointMeta::fresh(config, &input_shape);
    save_checkpoint(&run, &meta, &tensors, &[])
}
