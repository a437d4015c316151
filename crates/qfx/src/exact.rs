//! Evaluation with the bit-exact integer engine: what the generated HLS code computes.

use anyhow::{Context, Result};
use qfx_data::Split;
use qfx_train::data::Task;
use qfx_train::run::{Accuracy, Score, Tally};

/// Accuracy (or errors) and overflow counts of the integer engine on a dataset.
pub struct ExactReport {
    /// The engine's accuracy (classifiers: the argmax of the output codes, the first maximum
    /// on ties, as the generated C++ decides) or errors (values).
    pub score: Score,
    /// Overflow events per layer: (layer name, events, values assigned).
    pub overflows: Vec<(String, u64, u64)>,
    /// "images" or "samples".
    pub noun: &'static str,
}

/// The network inputs (normalized `f32`) of samples `indices` of `data`, as the model's
/// recorded normalization says.
pub fn inputs_of(ir: &qfx_ir::Model, data: Split<'_>, indices: &[usize]) -> Result<Vec<f32>> {
    let Some(p) = &ir.preprocess else {
        anyhow::bail!(
            "the model has no input normalization recorded; it was not exported from a qfx run"
        );
    };
    Ok(qfx_train::run::sample_inputs(data, indices, p)?)
}

/// The network inputs of sample `i` of `data`.
pub fn input_of(ir: &qfx_ir::Model, data: Split<'_>, i: usize) -> Result<Vec<f32>> {
    inputs_of(ir, data, &[i])
}

/// The value of each output code of the model's last layer.
pub fn output_values(ir: &qfx_ir::Model, codes: &[i64]) -> Vec<f64> {
    let Some(last) = ir.layers.last() else {
        return Vec::new();
    };
    codes
        .iter()
        .map(|&c| {
            qfx_fixed::Fixed::from_code(c as i128, last.output)
                .map(|v| v.to_f64())
                .unwrap_or(f64::NAN)
        })
        .collect()
}

/// Scores the engine's output codes of the first samples of `data` for `task`; `inputs` are
/// the network inputs the codes came from (an autoencoder's targets).
pub fn score_codes(
    ir: &qfx_ir::Model,
    data: Split<'_>,
    task: Task,
    inputs: &[f32],
    codes: &[Vec<i64>],
) -> Score {
    let n = codes.len();
    match task {
        Task::Classification => {
            let correct = codes
                .iter()
                .enumerate()
                .filter(|(i, c)| {
                    data.label(*i).is_some() && qfx_engine::argmax(c) == data.label(*i)
                })
                .count();
            Score::Accuracy(Accuracy {
                images: n,
                top1: correct as f64 / n.max(1) as f64,
                top5: None,
            })
        }
        Task::Regression | Task::Autoencoder => {
            let mut tally = Tally::default();
            let len = inputs.len() / n.max(1);
            for (i, c) in codes.iter().enumerate() {
                let values = output_values(ir, c);
                let target = match task {
                    Task::Autoencoder => &inputs[i * len..(i + 1) * len],
                    _ => data.values(i).unwrap_or_default(),
                };
                tally.values(&values, target);
            }
            tally.score(task, codes.first().map_or(0, Vec::len))
        }
    }
}

/// Runs the engine on the first `limit` samples (0: all) and scores it for `task`.
pub fn evaluate(
    ir: &qfx_ir::Model,
    data: Split<'_>,
    task: Task,
    limit: usize,
) -> Result<ExactReport> {
    let graph = ir.resolve()?;
    let engine = qfx_engine::Engine::new(ir)?;
    let n = if limit == 0 {
        data.len()
    } else {
        limit.min(data.len())
    };
    let indices: Vec<usize> = (0..n).collect();
    let inputs = inputs_of(ir, data, &indices)?;
    let outputs = engine.run_batch(&inputs, 0)?;
    let mut overflows = vec![0u64; ir.layers.len()];
    let mut codes = Vec::with_capacity(n);
    for out in &outputs {
        codes.push(out.output.codes.clone());
        for (o, e) in overflows.iter_mut().zip(&out.overflows) {
            *o += e;
        }
    }
    let score = score_codes(ir, data, task, &inputs, &codes);
    let overflows = graph
        .nodes()
        .iter()
        .zip(overflows)
        .map(|(node, e)| (node.layer.name.clone(), e, (node.len() * n) as u64))
        .collect();
    Ok(ExactReport {
        score,
        overflows,
        noun: data.noun(),
    })
}

impl ExactReport {
    /// Prints the accuracy (or errors) and the layers that overflowed.
    pub fn print(&self) {
        match &self.score {
            Score::Accuracy(a) => outln!(
                "{} {}, bit-exact integer engine: top-1 {:.2}%",
                a.images,
                self.noun,
                a.top1 * 100.0
            ),
            Score::Errors(e) => outln!(
                "{} {}, bit-exact integer engine: MSE {:.6}, MAE {:.6}",
                e.samples,
                self.noun,
                e.mse,
                e.mae
            ),
        }
        let hit: Vec<_> = self.overflows.iter().filter(|(_, e, _)| *e > 0).collect();
        if hit.is_empty() {
            outln!(
                "no overflow (saturation or wrap) in any layer on these {}",
                self.noun
            );
        } else {
            outln!("overflows (saturations or wraps) on these {}:", self.noun);
            for (name, e, total) in hit {
                outln!(
                    "  {name:<24} {e:>10} events ({:.4} per output value)",
                    *e as f64 / *total as f64
                );
            }
        }
    }

    /// The top-1 accuracy, for a classifier (0 otherwise).
    pub fn top1(&self) -> f64 {
        self.score.accuracy().map_or(0.0, |a| a.top1)
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
    /// Samples run.
    pub images: usize,
    /// By layer name.
    pub layers: std::collections::BTreeMap<String, LayerStats>,
}

/// Runs the engine on the first `limit` samples, recording each layer's value range and
/// overflows.
pub fn layer_stats(ir: &qfx_ir::Model, data: Split<'_>, limit: usize) -> Result<Stats> {
    let engine = qfx_engine::Engine::new(ir)?;
    let n = if limit == 0 {
        data.len()
    } else {
        limit.min(data.len())
    };
    let mut layers: std::collections::BTreeMap<String, LayerStats> = Default::default();
    for i in 0..n {
        let x = input_of(ir, data, i)?;
        let trace = engine.run_traced(&x).with_context(|| data.describe(i))?;
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
