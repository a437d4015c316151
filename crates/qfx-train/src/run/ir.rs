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
        for (role, codes) in l.op.constants() {
            put(format!("{}.{role}", l.name), &codes.formats);
        }
        if let Some(acc) = l.op.accumulator() {
            put(format!("{}.acc", l.name), acc);
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
