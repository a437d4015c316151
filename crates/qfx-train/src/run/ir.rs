//! The quantized model as IR: exported with the run's preprocessing, the formats of its
//! tensors that checkpoints and metrics record, the run's exported file, and the range
//! analysis's warnings before training.

use std::collections::BTreeMap;

use qfx_fixed::Format;

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

/// Exports a quantized model with the run's input normalization (`preprocess`: the run's
/// `[normalize]` for images, its standardization for tables; see
/// [`CheckpointMeta::preprocess`](super::CheckpointMeta::preprocess)).
pub fn export_ir(
    model: &Model,
    preprocess: &qfx_ir::Preprocess,
    name: &str,
) -> Result<qfx_ir::Model, TrainError> {
    let mut ir = crate::export::export(model, name)?;
    ir.preprocess = Some(preprocess.clone());
    Ok(ir)
}

/// The file of a run's exported model: the document recording the hash of the checkpoint
/// tensors it was exported from. The checkpoint records the checksum of exactly these bytes
/// (`ir_hash`) and is written first; the two together make the run's model of record.
pub(super) fn record_bytes(ir: &qfx_ir::Model, model_hash: &str) -> Vec<u8> {
    (ir.to_json_with_checkpoint(Some(model_hash)) + "\n").into_bytes()
}

/// What the static range analysis (`qfx_engine::analyze`) says about a quantized model's
/// formats before training: one warning per layer whose accumulator can overflow, with the
/// bits it lacks. A wrapping accumulator that overflows turns sums into noise, and no training
/// repairs a format the configuration fixes (e.g. `quant.acc_bits` far below the products'
/// width), so it is said before the first step.
pub(super) fn overflow_warnings(ir: &qfx_ir::Model) -> Vec<String> {
    let Ok(report) = qfx_engine::analyze(ir) else {
        return Vec::new();
    };
    report
        .layers
        .iter()
        .filter_map(|layer| {
            let acc = layer.accumulator.as_ref().filter(|a| a.can_overflow())?;
            Some(format!(
                "layer `{}` ({}): its accumulator `{}` can overflow by {} bit(s) in {} of {} \
                 channels (static worst case over every input); widen it (quant.acc_bits) or \
                 expect overflows",
                layer.name, layer.op, acc.format, acc.short_bits, acc.overflowing, acc.channels
            ))
        })
        .collect()
}
