//! The plan of a project: one pass over the resolved graph that names every tensor, writes its
//! typedef and buffer, and hands each layer to its operation family's emitter.

use std::fmt::Write as _;

use qfx_fixed::Format;
use qfx_ir::{Graph, Model, Op};

use super::gen::{Gen, Site};
use super::{elementwise, mac, pool};
use crate::names::{layer_ident, quoted, top_ident};
use crate::{ErrorKind, HlsError};

/// A tensor as the top function sees it.
#[derive(Clone, Debug)]
pub(super) struct Tensor {
    /// The array's name.
    pub buffer: String,
    /// Its element type's name.
    pub type_name: String,
}

/// Everything the project's files are rendered from.
pub(super) struct Plan {
    pub top: String,
    pub input_type: Format,
    pub n_in: usize,
    pub n_out: usize,
    pub output_type: Format,
    /// The README's table of layers.
    pub layer_rows: String,
    pub gen: Gen,
}

impl Plan {
    pub fn new(model: &Model) -> Result<Plan, HlsError> {
        let graph = model
            .resolve()
            .map_err(|e| HlsError::new(ErrorKind::InvalidModel, e.to_string()))?;
        let input_type = input_type(&graph)?;
        let input = Tensor {
            buffer: "input".to_string(),
            type_name: "input_t".to_string(),
        };
        let mut gen = Gen::default();
        let mut tensors: Vec<Tensor> = Vec::with_capacity(model.layers.len());
        let mut layer_rows = String::new();
        let last = graph.output().index;
        for node in graph.nodes() {
            let i = node.index;
            let layer = node.layer;
            let id = layer_ident(i, &layer.name);
            let t = format!("{id}_t");
            gen.typedef(
                &t,
                layer.output,
                &format!("output of layer {i} {}", quoted(&layer.name)),
            );
            let buffer = if i == last {
                "output".to_string()
            } else {
                let b = format!("{id}_out");
                let _ = writeln!(gen.buffers, "  static {t} {b}[{}];", node.len());
                b
            };
            let kind = layer.op.kind();
            // qfx's own spelling of a validated format: `ap_fixed<...>` needs no escaping.
            let spelling = layer.output.full_spelling();
            let _ = writeln!(
                gen.body,
                "  // layer {i} {} ({kind}) -> {spelling}",
                quoted(&layer.name)
            );
            let _ = writeln!(layer_rows, "| {i} | `{id}` | {kind} | `{spelling}` |");
            let operands = node
                .operands
                .iter()
                .map(|o| match o.source {
                    None => (input.clone(), input_type),
                    Some(j) => (tensors[j].clone(), model.layers[j].output),
                })
                .collect();
            let site = Site {
                id: &id,
                node,
                operands,
                y: Tensor {
                    buffer,
                    type_name: t,
                },
            };
            match node.op() {
                Op::Quantize
                | Op::Flatten
                | Op::Reshape { .. }
                | Op::Relu { .. }
                | Op::HardTanh { .. }
                | Op::HardSigmoid { .. }
                | Op::Lookup { .. }
                | Op::Add
                | Op::Multiply
                | Op::Concat
                | Op::Sign
                | Op::BatchNorm { .. }
                | Op::Prelu { .. } => elementwise::emit(&mut gen, &site)?,
                Op::Dense { .. } | Op::Conv2d { .. } | Op::Conv1d { .. } => {
                    mac::emit(&mut gen, &site)?
                }
                Op::MaxPool2d { .. }
                | Op::MaxPool1d { .. }
                | Op::AvgPool2d { .. }
                | Op::AvgPool1d { .. }
                | Op::GlobalMaxPool
                | Op::GlobalAvgPool { .. }
                | Op::Shortcut { .. } => pool::emit(&mut gen, &site)?,
            }
            tensors.push(site.y);
        }
        Ok(Plan {
            top: top_ident(&model.name),
            input_type,
            n_in: graph.input_len(),
            n_out: graph.output().len(),
            output_type: graph.output().format(),
            layer_rows,
            gen,
        })
    }
}

/// The top function's input type: the layers that read the raw input convert `f32` to their own
/// type, and the testbench does that conversion (exactly as the engine), so they must agree.
fn input_type(graph: &Graph) -> Result<Format, HlsError> {
    let mut input_type: Option<Format> = None;
    for node in graph.nodes().iter().filter(|n| n.reads_input()) {
        let f = node.format();
        match input_type {
            Some(t) if t != f => {
                return Err(HlsError::new(
                    ErrorKind::Unsupported,
                    format!(
                        "layer {}: reads the raw input as {f} while another layer reads it as \
                         {t}; the top function has one input type",
                        quoted(&node.layer.name)
                    ),
                ))
            }
            _ => input_type = Some(f),
        }
    }
    input_type
        .ok_or_else(|| HlsError::new(ErrorKind::Unsupported, "no layer reads the model input"))
}
