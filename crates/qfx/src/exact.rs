//! Evaluation with the bit-exact integer engine: what the generated HLS code computes.

use anyhow::{bail, Context, Result};
use qfx_data::Dataset;

/// Accuracy and overflow counts of the integer engine on a dataset.
pub struct ExactReport {
    /// Images run.
    pub images: usize,
    /// Top-1 accuracy.
    pub top1: f64,
    /// Overflow events per layer: (layer name, events, values assigned).
    pub overflows: Vec<(String, u64, u64)>,
}

/// The network inputs (preprocessed `f32`) of image `i` of `data`.
pub fn input_of(ir: &qfx_ir::Model, data: &Dataset, i: usize) -> Result<Vec<f32>> {
    let len = data.image_len();
    let pixels = &data.images[i * len..(i + 1) * len];
    let Some(p) = &ir.preprocess else {
        bail!("the model has no pixel preprocessing recorded; it was not exported from a qfx run");
    };
    Ok(p.apply(pixels, data.shape))
}

/// Runs the engine on the first `limit` images (0: all).
pub fn evaluate(ir: &qfx_ir::Model, data: &Dataset, limit: usize) -> Result<ExactReport> {
    let graph = ir.resolve()?;
    let engine = qfx_engine::Engine::new(ir)?;
    let n = if limit == 0 {
        data.len()
    } else {
        limit.min(data.len())
    };
    let mut inputs = Vec::with_capacity(n * engine.input_len());
    for i in 0..n {
        inputs.extend(input_of(ir, data, i)?);
    }
    let outputs = engine.run_batch(&inputs, 0)?;
    let mut correct = 0usize;
    let mut overflows = vec![0u64; ir.layers.len()];
    for (out, &label) in outputs.iter().zip(&data.labels) {
        let codes = &out.output.codes;
        correct += (qfx_engine::argmax(codes) == Some(label as usize)) as usize;
        for (o, e) in overflows.iter_mut().zip(&out.overflows) {
            *o += e;
        }
    }
    let overflows = graph
        .nodes()
        .iter()
        .zip(overflows)
        .map(|(node, e)| (node.layer.name.clone(), e, (node.len() * n) as u64))
        .collect();
    Ok(ExactReport {
        images: n,
        top1: correct as f64 / n.max(1) as f64,
        overflows,
    })
}

impl ExactReport {
    /// Prints the accuracy and the layers that overflowed.
    pub fn print(&self) {
        outln!(
            "{} images, bit-exact integer engine: top-1 {:.2}%",
            self.images,
            self.top1 * 100.0
        );
        let hit: Vec<_> = self.overflows.iter().filter(|(_, e, _)| *e > 0).collect();
        if hit.is_empty() {
            outln!("no overflow (saturation or wrap) in any layer on these images");
        } else {
            outln!("overflows (saturations or wraps) on these images:");
            for (name, e, total) in hit {
                outln!(
                    "  {name:<24} {e:>10} events ({:.4} per output value)",
                    *e as f64 / *total as f64
                );
            }
        }
    }
}

/// What one layer's output did on real data.
pub struct LayerStats {
    /// Smallest and largest output value.
    pub min: f64,
    /// Largest output value.
    pub max: f64,
    /// Overflow events (output and accumulator assignments).
    pub overflows: u64,
    /// Output values produced.
    pub values: u64,
}

/// Per-layer statistics over the first `limit` images.
pub struct Stats {
    /// Images run.
    pub images: usize,
    /// By layer name.
    pub layers: std::collections::BTreeMap<String, LayerStats>,
}

/// Runs the engine on the first `limit` images, recording each layer's value range and
/// overflows.
pub fn layer_stats(ir: &qfx_ir::Model, data: &Dataset, limit: usize) -> Result<Stats> {
    let engine = qfx_engine::Engine::new(ir)?;
    let n = if limit == 0 {
        data.len()
    } else {
        limit.min(data.len())
    };
    let mut layers: std::collections::BTreeMap<String, LayerStats> = Default::default();
    for i in 0..n {
        let x = input_of(ir, data, i)?;
        let trace = engine
            .run_traced(&x)
            .with_context(|| format!("image {i}"))?;
        for (layer, (t, overflows)) in ir.layers.iter().zip(trace) {
            let values = t.values();
            let s = layers.entry(layer.name.clone()).or_insert(LayerStats {
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                overflows: 0,
                values: 0,
            });
            for v in values {
                s.min = s.min.min(v);
                s.max = s.max.max(v);
                s.values += 1;
            }
            s.overflows += overflows;
        }
    }
    Ok(Stats { images: n, layers })
}
