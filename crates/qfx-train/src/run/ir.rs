//! The quantized model as IR: exported with the run's preprocessing, and the formats of its
//! tensors that checkpoints and metrics record.

use std::collections::BTreeMap;

use qfx_fixed::Format;

use crate::config::RunConfig;
use crate::error::TrainError;
use crate::models::Model;

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
            qfx_ir::Op::GlobalAvgPool { reciprocal } => {
                put(format!("{}.reciprocal", l.name), &reciprocal.formats);
            }
            qfx_ir::Op::Prelu { slope } => put(format!("{}.slope", l.name), &slope.formats),
            qfx_ir::Op::Quantize
            | qfx_ir::Op::Sign
            | qfx_ir::Op::Relu { .. }
            | qfx_ir::Op::Add
            | qfx_ir::Op::MaxPool2d { .. }
            | qfx_ir::Op::Flatten
            | qfx_ir::Op::Shortcut { .. } => {}
        }
    }
    out
}

/// Exports a quantized model with the run's preprocessing.
pub fn export_ir(
    model: &Model,
    config: &RunConfig,
    name: &str,
) -> Result<qfx_ir::Model, TrainError> {
    let mut ir = crate::export::export(model, name)?;
    ir.preprocess = Some(config.normalize.preprocess());
    Ok(ir)
}
