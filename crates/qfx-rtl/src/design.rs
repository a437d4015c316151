//! The whole design: one Verilog module per layer, walked from the resolved `qfx_ir::Graph`,
//! and the top module `qfx_top` that wires them, balances delays and carries the valid bit.
//!
//! # Architecture
//! Fully unrolled, initiation interval 1: every output element of every layer has its own
//! logic, and a new inference may enter on every clock. A register stage follows the input and
//! every layer that computes; `Flatten` and `Shortcut` only rename wires and add none. Where a
//! layer reads two operands produced at different stages (a residual `Add`), the earlier one is
//! delayed by registers so both belong to the same inference. The latency is the output
//! layer's stage, stated in the generated header and measured by [`crate::verify`].
//!
//! # Ports of `qfx_top`
//! `clk`; `rst` (synchronous, clears the valid pipeline only); `in_valid` and `in_data`: for
//! every layer that reads the raw network input (`Quantize`, `Flatten`), all input values
//! already converted to that layer's format, element `i` at bits `[i·W, (i+1)·W)`, those layers
//! in model order. The conversion from `f32` is the host's (the verifier does it as the
//! `ap_fixed` float constructor does, like the engine). `out_valid` and `out_data`: the last
//! layer's codes, packed the same way.

use std::fmt::Write as _;

use qfx_fixed::Format;
use qfx_hls::names::{layer_ident, quoted};
use qfx_ir::{Graph, Model, Node, Op};

use crate::cast::CastLogic;
use crate::ops::{self, Ctx};
use crate::verilog::{Body, Sig};
use crate::{ErrorKind, RtlError};

/// The top module's name.
pub const TOP: &str = "qfx_top";

/// Widest format (value, constant or accumulator) the back end builds: wider values would
/// make exact intermediate sums leave the 128-bit arithmetic the generator sizes adders with.
pub const MAX_FORMAT_BITS: u32 = 64;

/// How constant products are built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Multipliers {
    /// Every constant product as shifts and adds on the constant's canonical signed digits.
    ShiftAdd,
    /// Shifts and adds, except a product of a constant of a tensor not declared K-hot where
    /// both operands are wider than `fabric_max_bits`: a `*` that synthesis maps to DSP
    /// slices. This is the cost model's DSP rule (`qfx_hls::cost`, default 10 bits), so the
    /// measured design has the structure the estimate assumes, and K-hot tensors show what
    /// they save.
    DspRule {
        /// Operand width up to which a product stays in fabric.
        fabric_max_bits: u32,
    },
}

impl Default for Multipliers {
    fn default() -> Multipliers {
        Multipliers::DspRule {
            fabric_max_bits: 10,
        }
    }
}

/// How tensors move through the design.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// Streaming for networks with image layers (convolutions, pooling, shortcuts), fully
    /// unrolled otherwise.
    #[default]
    Auto,
    /// Every value of every tensor at once, one inference per clock (this module's docs).
    Unrolled,
    /// Images as pixel streams, one pixel per clock (`stream.rs`).
    Stream,
}

/// Generator options.
#[derive(Clone, Debug, PartialEq)]
pub struct RtlOptions {
    /// Unrolled or streaming.
    pub architecture: Architecture,
    /// How constant products are built.
    pub multipliers: Multipliers,
    /// Share common subexpressions across each layer's weight matrix where rows are
    /// reassociated (see `ops/mac.rs`); `false` gives plain per-weight shift-and-add.
    pub cse: bool,
    /// How assignments are built.
    pub cast_logic: CastLogic,
}

impl Default for RtlOptions {
    fn default() -> RtlOptions {
        RtlOptions {
            architecture: Architecture::Auto,
            multipliers: Multipliers::default(),
            cse: true,
            cast_logic: CastLogic::Auto,
        }
    }
}

/// What a sum-of-products layer was built from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SumInfo {
    /// Output elements summed as one exact tree (products shared across the layer).
    pub reassociated: u64,
    /// Output elements accumulated in the IR's order, an assignment after every step.
    pub in_order: u64,
    /// Non-zero products.
    pub products: u64,
    /// Adders of plain per-weight shift-and-add (no sharing): digits − 1 per product plus one
    /// per accumulation.
    pub adders_plain: u64,
    /// Adders built.
    pub adders: u64,
    /// Shared subexpressions (one adder each).
    pub shared: u64,
    /// Output channels built as XNOR and popcount (`±1` inputs times equal-magnitude weights).
    pub popcount: u64,
}

/// One layer of the design.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerInfo {
    /// Position in the model.
    pub index: usize,
    /// The layer's name in the IR.
    pub name: String,
    /// The operation, e.g. `dense`.
    pub kind: &'static str,
    /// The Verilog module computing it.
    pub module: String,
    /// Whether a register stage follows it.
    pub registered: bool,
    /// The cycle (after the input is taken) at which its output is valid.
    pub stage: u32,
    /// Output elements.
    pub elements: usize,
    /// Adders and subtractors built (comparators and assignment logic not included).
    pub adders: u64,
    /// Comparators built (max pooling).
    pub comparators: u64,
    /// `*` multipliers built.
    pub multipliers: u64,
    /// For `Dense` and `Conv2d`: how the sums were built.
    pub sum: Option<SumInfo>,
}

/// One packed bus of codes.
#[derive(Clone, Debug, PartialEq)]
pub struct Port {
    /// The layer whose codes these are.
    pub layer: usize,
    /// Values.
    pub elements: usize,
    /// Their format.
    pub format: Format,
    /// Bit offset of the first value in the bus.
    pub offset: u64,
}

impl Port {
    /// Bits the values take.
    pub fn bits(&self) -> u64 {
        self.elements as u64 * self.format.width() as u64
    }
}

/// How a design is driven: what `verify` needs besides the IR (saved in the project as
/// `design.json`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Timing {
    /// [`Architecture::Unrolled`] or [`Architecture::Stream`].
    pub architecture: Architecture,
    /// Input beats per inference (1 unrolled; `h·w` pixels streaming).
    pub input_beats: usize,
    /// Output beats per inference.
    pub output_beats: usize,
    /// Clocks between the starts of consecutive inferences (1 unrolled).
    pub frame_cycles: u64,
    /// Clocks from an input to its output, when known statically (unrolled designs).
    pub latency: Option<u32>,
}

/// A generated design.
#[derive(Clone, Debug)]
pub struct Design {
    /// The Verilog source of every module.
    pub verilog: String,
    /// How to drive it.
    pub timing: Timing,
    /// Cycles from `in_valid` to `out_valid` (unrolled designs; 0 for streams, where
    /// `verify` measures it).
    pub latency: u32,
    /// The fields of `in_data`, in order.
    pub inputs: Vec<Port>,
    /// `out_data`.
    pub output: Port,
    /// Every layer.
    pub layers: Vec<LayerInfo>,
}

/// Whether `options` build `graph` as a stream.
pub(crate) fn streams(graph: &Graph, options: &RtlOptions) -> bool {
    match options.architecture {
        Architecture::Auto => crate::stream::wants_stream(graph),
        Architecture::Unrolled => false,
        Architecture::Stream => true,
    }
}

/// The ports of a model's design: per input beat, the fields of every input layer; per output
/// beat, the last layer's values.
pub fn io_layout(graph: &Graph, architecture: Architecture) -> (Vec<Port>, Port) {
    if architecture == Architecture::Stream {
        return crate::stream::io_layout(graph);
    }
    let mut offset = 0;
    let mut inputs = Vec::new();
    for node in graph.nodes().iter().filter(|n| n.reads_input()) {
        let port = Port {
            layer: node.index,
            elements: node.len(),
            format: node.format(),
            offset,
        };
        offset += port.bits();
        inputs.push(port);
    }
    let out = graph.output();
    let output = Port {
        layer: out.index,
        elements: out.len(),
        format: out.format(),
        offset: 0,
    };
    (inputs, output)
}

/// Builds the design of `model` (see the [module docs](self)).
pub fn generate(model: &Model, options: &RtlOptions) -> Result<Design, RtlError> {
    let graph = model
        .resolve()
        .map_err(|e| RtlError::new(ErrorKind::InvalidModel, e.to_string()))?;
    check_widths(&graph)?;
    for node in graph.nodes() {
        if let Some(e) = ops::unsupported(node.op()) {
            return Err(RtlError::new(
                ErrorKind::Unsupported,
                format!(
                    "layer {} ({}): {e}",
                    quoted(&node.layer.name),
                    node.op().kind()
                ),
            ));
        }
    }
    let analysis =
        qfx_engine::analyze(model).map_err(|e| RtlError::new(ErrorKind::InvalidModel, e.0))?;
    let stream = streams(&graph, options);
    if stream {
        check_streamable(&graph)?;
    } else {
        check_unrollable(&graph)?;
    }
    let architecture = if stream {
        Architecture::Stream
    } else {
        Architecture::Unrolled
    };
    let (inputs, output) = io_layout(&graph, architecture);
    let flows = crate::stream::flows(&graph);
    let mut modules = String::new();
    let mut layers: Vec<LayerInfo> = Vec::with_capacity(graph.nodes().len());
    for node in graph.nodes() {
        let acc_can_overflow = analysis.layers[node.index]
            .accumulator
            .as_ref()
            .is_none_or(|c| c.can_overflow());
        let ctx = Ctx {
            options,
            acc_can_overflow,
            beat: false,
            binary_input: ops::binary_input(&graph, node),
        };
        let (text, info) = if stream {
            crate::stream::layer_module(node, &flows, &ctx)?
        } else {
            layer_module(node, &ctx, &layers)?
        };
        modules.push_str(&text);
        layers.push(info);
    }
    let (latency, top, timing) = if stream {
        let out = flows[graph.output().index];
        let timing = Timing {
            architecture,
            input_beats: graph.input_len() / graph.model().input_shape[0].max(1),
            output_beats: out.beats(),
            frame_cycles: crate::stream::frame_cycles(&graph),
            latency: None,
        };
        let top = crate::stream::top_module(&graph, &layers, &inputs, &output);
        (0, top, timing)
    } else {
        let latency = layers.last().map_or(0, |l| l.stage);
        let timing = Timing {
            architecture,
            input_beats: 1,
            output_beats: 1,
            frame_cycles: 1,
            latency: Some(latency),
        };
        (
            latency,
            top_module(&graph, &layers, &inputs, &output, latency),
            timing,
        )
    };
    let header = header(model, &layers, &inputs, &output, &timing, options);
    Ok(Design {
        verilog: format!("{header}\n{modules}{top}"),
        timing,
        latency,
        inputs,
        output,
        layers,
    })
}

/// Products a fully unrolled design may hold before it is refused: beyond it the Verilog
/// reaches hundreds of megabytes and no tool finishes on it.
pub const MAX_UNROLLED_PRODUCTS: u64 = 400_000;

/// Refuses an unrolled design too large to build, naming the layer that makes it so.
fn check_unrollable(graph: &Graph) -> Result<(), RtlError> {
    let mut total = 0u64;
    for node in graph.nodes() {
        if let Some(mac) = node.mac() {
            total += (mac.outputs() * mac.positions() * mac.terms()) as u64;
            if total > MAX_UNROLLED_PRODUCTS {
                return Err(RtlError::new(
                    ErrorKind::Unsupported,
                    format!(
                        "layer {} ({}): fully unrolled, the network needs more than \
                         {MAX_UNROLLED_PRODUCTS} products by here; build it as a stream \
                         (architecture auto or stream) or use `qfx export hls`",
                        quoted(&node.layer.name),
                        node.op().kind()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Refuses what the streaming design does not build, naming the layer and the operation.
fn check_streamable(graph: &Graph) -> Result<(), RtlError> {
    if graph.model().input_shape.len() != 3 {
        return Err(RtlError::new(
            ErrorKind::Unsupported,
            format!(
                "the streaming design reads images ([c, h, w]); this model's input is {:?}: \
                 build it unrolled",
                graph.model().input_shape
            ),
        ));
    }
    for node in graph.nodes() {
        if let Some(why) = crate::stream::stream_refusal(node) {
            return Err(RtlError::new(
                ErrorKind::Unsupported,
                format!(
                    "layer {} ({}): the streaming design {why}; build it unrolled",
                    quoted(&node.layer.name),
                    node.op().kind()
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses formats wider than [`MAX_FORMAT_BITS`], naming the layer.
fn check_widths(graph: &Graph) -> Result<(), RtlError> {
    for node in graph.nodes() {
        let mut formats = vec![node.format()];
        for (_, c) in node.op().constants() {
            formats.extend(c.formats.iter().copied());
        }
        formats.extend(node.op().accumulator().into_iter().flatten().copied());
        if let Some(f) = formats.iter().find(|f| f.width() > MAX_FORMAT_BITS) {
            return Err(RtlError::new(
                ErrorKind::Unsupported,
                format!(
                    "layer {} ({}): format {f} is wider than the {MAX_FORMAT_BITS} bits the \
                     Verilog back end builds",
                    quoted(&node.layer.name),
                    node.op().kind()
                ),
            ));
        }
    }
    Ok(())
}

/// The module of one layer and what it holds.
fn layer_module(
    node: &Node,
    ctx: &Ctx,
    done: &[LayerInfo],
) -> Result<(String, LayerInfo), RtlError> {
    let module = layer_ident(node.index, &node.layer.name);
    let to = node.format();
    let w = to.width();
    let registered = node.reads_input() || !matches!(node.op(), Op::Flatten | Op::Shortcut { .. });
    let mut b = Body::default();
    let mut ports = vec!["  input clk".to_string()];
    let mut sum = None;
    let outs: Vec<Sig> = if node.reads_input() {
        // The host converts the f32 input; this layer registers the codes.
        ports.push(format!(
            "  input [{}:0] x0",
            node.len() as u64 * w as u64 - 1
        ));
        (0..node.len())
            .map(|i| element(&mut b, "x0", i, to))
            .collect()
    } else {
        let mut xs = Vec::new();
        for (k, operand) in node.operands.iter().enumerate() {
            let f = node.operand_format(k);
            let n: usize = operand.shape.iter().product();
            ports.push(format!(
                "  input [{}:0] x{k}",
                n as u64 * f.width() as u64 - 1
            ));
            let name = format!("x{k}");
            xs.push((0..n).map(|i| element(&mut b, &name, i, f)).collect());
        }
        ops::emit(&mut b, node, &xs, ctx, &mut sum).map_err(|e| in_layer(node, e))?
    };
    if b.too_wide {
        return Err(in_layer(
            node,
            RtlError::new(
                ErrorKind::Unsupported,
                "an intermediate sum needs more than 120 bits",
            ),
        ));
    }
    let bits = outs.len() as u64 * w as u64;
    ports.push(format!("  output [{}:0] y", bits - 1));
    let stage = node
        .operands
        .iter()
        .map(|o| o.source.map_or(0, |s| done[s].stage))
        .max()
        .unwrap_or(0)
        + registered as u32;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "// Layer {} {} ({}): {} values of {}; valid {} cycle(s) after the input.",
        node.index,
        quoted(&node.layer.name),
        node.op().kind(),
        outs.len(),
        to,
        stage
    );
    let _ = writeln!(text, "module {module} (\n{}\n);", ports.join(",\n"));
    text.push_str(b.text());
    let mut cat = String::new();
    for (i, e) in outs.iter().enumerate().rev() {
        cat.push_str(&e.name);
        if i > 0 {
            cat.push_str(if i % 16 == 0 { ",\n    " } else { ", " });
        }
    }
    let _ = writeln!(text, "  wire [{}:0] y_d = {{{cat}}};", bits - 1);
    if registered {
        let _ = writeln!(text, "  reg [{}:0] y_q;", bits - 1);
        let _ = writeln!(text, "  always @(posedge clk) y_q <= y_d;");
        let _ = writeln!(text, "  assign y = y_q;");
    } else {
        let _ = writeln!(text, "  assign y = y_d;");
    }
    let _ = writeln!(text, "endmodule\n");
    let info = LayerInfo {
        index: node.index,
        name: node.layer.name.clone(),
        kind: node.op().kind(),
        module,
        registered,
        stage,
        elements: outs.len(),
        adders: b.adders.len() as u64,
        comparators: b.comparators.len() as u64,
        multipliers: b.multipliers.len() as u64,
        sum,
    };
    Ok((text, info))
}

/// Element `i` of the packed input bus `bus` as a wire of format `f`.
pub(crate) fn element(b: &mut Body, bus: &str, i: usize, f: Format) -> Sig {
    let w = f.width();
    let name = format!("{bus}_{i}");
    b.line(&format!(
        "wire [{}:0] {name} = {bus}[{}:{}];",
        w - 1,
        (i as u64 + 1) * w as u64 - 1,
        i as u64 * w as u64
    ));
    Sig {
        name,
        width: w,
        signed: f.is_signed(),
    }
}

pub(crate) fn in_layer(node: &Node, e: RtlError) -> RtlError {
    RtlError::new(
        e.kind,
        format!(
            "layer {} ({}): {}",
            quoted(&node.layer.name),
            node.op().kind(),
            e.message
        ),
    )
}

/// `qfx_top`: the layer instances, delay registers between stages, the valid pipeline.
fn top_module(
    graph: &Graph,
    layers: &[LayerInfo],
    inputs: &[Port],
    output: &Port,
    latency: u32,
) -> String {
    let in_bits: u64 = inputs.iter().map(Port::bits).sum();
    let mut t = String::new();
    let _ = writeln!(
        t,
        "module {TOP} (\n  input clk,\n  input rst,\n  input in_valid,\n  input [{}:0] in_data,\n  \
         output out_valid,\n  output [{}:0] out_data,\n  output err\n);",
        in_bits - 1,
        output.bits() - 1
    );
    let _ = writeln!(t, "  assign err = 1'b0;");
    for (node, info) in graph.nodes().iter().zip(layers) {
        let bits = info.elements as u64 * node.format().width() as u64;
        let _ = writeln!(t, "  wire [{}:0] {}_y;", bits - 1, info.module);
        let mut conns = vec!["    .clk(clk)".to_string()];
        if node.reads_input() {
            let port = inputs
                .iter()
                .find(|p| p.layer == node.index)
                .expect("every input layer has a port");
            conns.push(format!(
                "    .x0(in_data[{}:{}])",
                port.offset + port.bits() - 1,
                port.offset
            ));
        } else {
            let need = info.stage - info.registered as u32;
            for (k, operand) in node.operands.iter().enumerate() {
                let src = operand
                    .source
                    .expect("only input layers read the raw input");
                let (from, have) = (&layers[src], layers[src].stage);
                let mut wire = format!("{}_y", from.module);
                let width = from.elements as u64 * graph.nodes()[src].format().width() as u64;
                // Delay the earlier operand so both belong to the same inference.
                for d in 0..need - have {
                    let r = format!("{}_d{k}_{}", info.module, d + 1);
                    let _ = writeln!(t, "  reg [{}:0] {r};", width - 1);
                    let _ = writeln!(t, "  always @(posedge clk) {r} <= {wire};");
                    wire = r;
                }
                conns.push(format!("    .x{k}({wire})"));
            }
        }
        conns.push(format!("    .y({}_y)", info.module));
        let _ = writeln!(
            t,
            "  {} u{} (\n{}\n  );",
            info.module,
            node.index,
            conns.join(",\n")
        );
    }
    let last = layers.last().expect("at least one layer");
    let _ = writeln!(t, "  assign out_data = {}_y;", last.module);
    let _ = writeln!(t, "  reg [{}:0] valid;", latency.max(1) - 1);
    if latency > 1 {
        let _ = writeln!(
            t,
            "  always @(posedge clk) valid <= rst ? {latency}'b0 : {{valid[{}:0], in_valid}};",
            latency - 2
        );
    } else {
        let _ = writeln!(t, "  always @(posedge clk) valid <= rst ? 1'b0 : in_valid;");
    }
    let _ = writeln!(t, "  assign out_valid = valid[{}];", latency.max(1) - 1);
    let _ = writeln!(t, "endmodule");
    t
}

/// The file's header comment: what the design is and how to drive it.
fn header(
    model: &Model,
    layers: &[LayerInfo],
    inputs: &[Port],
    output: &Port,
    timing: &Timing,
    options: &RtlOptions,
) -> String {
    let mut h = String::new();
    let _ = writeln!(
        h,
        "// Generated by qfx from the model {}; do not edit (`qfx export verilog` rewrites it).",
        quoted(&model.name)
    );
    match timing.latency {
        Some(latency) => {
            let _ = writeln!(
                h,
                "// Verilog-2005. Fully unrolled: one inference per clock (initiation interval 1),"
            );
            let _ = writeln!(
                h,
                "// LATENCY = {latency} clock cycles from in_valid to out_valid (a register after \
                 the input and after every layer that computes)."
            );
        }
        None => {
            let _ = writeln!(
                h,
                "// Verilog-2005. Streaming: one input beat = one pixel (all channels), at most one \
                 per clock, {} per inference;",
                timing.input_beats
            );
            let _ = writeln!(
                h,
                "// CYCLES_PER_INFERENCE = {}: start inferences at least that many clocks apart. \
                 {} output beat(s) per inference;",
                timing.frame_cycles, timing.output_beats
            );
            let _ = writeln!(
                h,
                "// the latency is measured by `qfx verify-rtl`. err rises (and stays) if a FIFO \
                 overflowed (inputs too close)."
            );
        }
    }
    let _ = writeln!(h, "//");
    let _ = writeln!(
        h,
        "// in_data: the network input converted to fixed point by the host (as the ap_fixed float"
    );
    let _ = writeln!(
        h,
        "// constructor converts it), value i of a field at bits [i*W +: W] of that field:"
    );
    for p in inputs {
        let _ = writeln!(
            h,
            "//   bits [{}:{}]: {} values of {} for layer {}",
            p.offset + p.bits() - 1,
            p.offset,
            p.elements,
            p.format,
            quoted(&layers[p.layer].name)
        );
    }
    let _ = writeln!(
        h,
        "// out_data: {} values of {} (layer {}), packed the same way.",
        output.elements,
        output.format,
        quoted(&layers[output.layer].name)
    );
    let _ = writeln!(
        h,
        "// rst (synchronous) clears the valid bits and counters. Constant products: {}; common \
         subexpressions {}.",
        match options.multipliers {
            Multipliers::ShiftAdd => "shifts and adds".to_string(),
            Multipliers::DspRule { fabric_max_bits } => format!(
                "shifts and adds, `*` where both operands exceed {fabric_max_bits} bits \
                 (constants not declared K-hot)"
            ),
        },
        if options.cse { "shared" } else { "not shared" }
    );
    let _ = writeln!(h, "//");
    let _ = writeln!(
        h,
        "// layer  module                          stage  adders  sums"
    );
    for l in layers {
        let sums = l.sum.as_ref().map_or(String::new(), |s| {
            format!(
                "{} reassociated, {} in IR order; {} adders ({} without sharing)",
                s.reassociated, s.in_order, s.adders, s.adders_plain
            )
        });
        let _ = writeln!(
            h,
            "// {:<6} {:<31} {:>5}  {:>6}  {sums}",
            l.index, l.module, l.stage, l.adders
        );
    }
    h
}
