//! An imported model as a qfx float model and as a float run.

use std::path::{Path, PathBuf};

use qfx_train::config::{Normalize, RunConfig};
use qfx_train::layers::QuantConfig;
use qfx_train::models::{Model, ModelConfig};

use crate::convert::Imported;
use crate::error::OnnxError;

impl Imported {
    /// The configuration of the float run: this network, quantization off, `normalize` for
    /// the pixels, every other setting the default.
    pub fn run_config(&self, normalize: Normalize) -> RunConfig {
        RunConfig {
            model: ModelConfig::Graph(self.spec.clone()),
            quant: QuantConfig::float(),
            normalize,
            ..RunConfig::default()
        }
    }

    /// The float model with the imported weights (what a run of it evaluates).
    pub fn model(&self) -> Result<Model, OnnxError> {
        let config = self.run_config(Normalize::default());
        Ok(qfx_train::run::model_with_weights(
            &config,
            &self.spec.input,
            self.weights.clone(),
        )?)
    }

    /// The float model's outputs on `batch` samples `x` (row-major, each of the network's
    /// input shape): `[batch, outputs]`, row-major.
    pub fn forward(&self, x: &[f32], batch: usize) -> Result<Vec<f32>, OnnxError> {
        Ok(qfx_train::run::infer(&self.model()?, x, batch)?)
    }

    /// Writes a new float run into `run` (refused where a run already is): `config.toml` with
    /// the layer graph, and a checkpoint at step 0 holding the imported weights. Runs train and
    /// evaluate on images, so the network's input must be `[channels, height, width]` (give
    /// [`crate::Options::input_shape`] for a model that reads flat vectors). Returns the
    /// checkpoint's directory.
    pub fn write_run(&self, run: &Path, normalize: Normalize) -> Result<PathBuf, OnnxError> {
        let shape: [usize; 3] = self.spec.input.clone().try_into().map_err(|_| {
            OnnxError::Graph(format!(
                "the network reads samples of shape {:?}; a run trains and evaluates on images \
                 [channels, height, width]: import with an input shape such as 1,28,28 \
                 (`--input-shape`) holding the same {} values",
                self.spec.input,
                self.spec.input.iter().product::<usize>()
            ))
        })?;
        let channels = shape[0];
        for (what, v) in [("mean", &normalize.mean), ("std", &normalize.std)] {
            if v.len() != 1 && v.len() != channels {
                return Err(OnnxError::Graph(format!(
                    "the normalization has {} {what} values for {channels}-channel images (give \
                     one, or one per channel)",
                    v.len()
                )));
            }
        }
        let config = self.run_config(normalize);
        config.validate()?;
        Ok(qfx_train::run::create_float_run(
            run,
            &config,
            shape,
            self.weights.clone(),
        )?)
    }
}
