//! The streaming architecture for networks of images: an image tensor `[c, h, w]` flows as
//! `h·w` beats in raster order, one pixel (all `c` channels) per beat; a flat tensor (after
//! `Flatten` or `GlobalAvgPool`) as one beat per inference holding all its values.
//!
//! - **Convolution**: a raster scanner walks the zero-padded grid one position per clock,
//!   taking a pixel from its input FIFO at image positions and a zero pixel at padding
//!   positions; a shift register of `(k−1)` padded rows plus `k` pixels (the line buffers)
//!   holds the window, and when a window is complete (at the stride's positions) the whole
//!   kernel window is computed in one clock by the same sum-of-products logic as the unrolled
//!   design, all output channels at once (`ops/mac.rs`). The FIFO absorbs the pixels that
//!   arrive while the scanner is on padding: it holds `(h+2p)(w+2p) − h·w` pixels, the most
//!   that can wait in one inference.
//! - **Max pooling**: the same line buffer without padding, a comparator tree per channel.
//! - **Element-wise layers** (`Quantize`, `Relu`, `Sign`, `Prelu`, `BatchNorm`) and `Dense` on a
//!   flat beat: the unrolled logic on one beat, a register after it.
//! - **`Add`** joins its two operands through a FIFO each (one inference deep), so operands of
//!   the same pixel meet whatever the branches' latencies; **`Shortcut`** passes every
//!   `stride`-th pixel of every `stride`-th row and appends zero channels; **`Flatten`** shifts
//!   an image's pixels into registers and emits them as one beat; **`GlobalAvgPool`** sums each
//!   channel exactly over the image and emits one beat.
//!
//! One pixel may enter per clock. A convolution's scanner needs `(h+2p)(w+2p)` clocks per
//! image, so inferences must start at least [`crate::Design::frame_cycles`] clocks apart (the
//! largest padded grid of the network, plus a margin); `verify` feeds them exactly so. Every
//! FIFO has a sticky overflow flag, ORed into the top module's `err` output, which `verify`
//! checks.

use std::fmt::Write as _;

use qfx_fixed::Format;
use qfx_hls::names::{layer_ident, quoted};
use qfx_ir::{window_sum_format, Graph, Node, Op};

use crate::cast::cast;
use crate::design::{element, in_layer, LayerInfo, Port, TOP};
use crate::ops::constmul::{product, style_for};
use crate::ops::elementwise::exact;
use crate::ops::mac::rows_of_products;
use crate::ops::{self, mul_format, Ctx};
use crate::verilog::{Body, Operand, Sig};
use crate::RtlError;

/// How a tensor flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// `h·w` beats of `c` values per inference.
    Image { c: usize, h: usize, w: usize },
    /// One beat of `n` values per inference.
    Flat { n: usize },
}

impl Flow {
    /// Values per beat.
    pub fn lanes(&self) -> usize {
        match *self {
            Flow::Image { c, .. } => c,
            Flow::Flat { n } => n,
        }
    }

    /// Beats per inference.
    pub fn beats(&self) -> usize {
        match *self {
            Flow::Image { h, w, .. } => h * w,
            Flow::Flat { .. } => 1,
        }
    }

    fn of(shape: &[usize], flat: bool) -> Flow {
        match (shape, flat) {
            (&[c, h, w], false) => Flow::Image { c, h, w },
            _ => Flow::Flat {
                n: shape.iter().product(),
            },
        }
    }
}

/// How each node's output flows: images stay images until `Flatten` or `GlobalAvgPool`.
pub(crate) fn flows(graph: &Graph) -> Vec<Flow> {
    let mut out: Vec<Flow> = Vec::with_capacity(graph.nodes().len());
    for node in graph.nodes() {
        let input_flat = match node.x().source {
            Some(s) => matches!(out[s], Flow::Flat { .. }),
            None => node.x().shape.len() != 3,
        };
        let flat = input_flat || matches!(node.op(), Op::Flatten | Op::GlobalAvgPool { .. });
        out.push(Flow::of(&node.shape, flat));
    }
    out
}

/// Clocks an inference occupies: the largest padded grid a convolution scans (or the input
/// image), plus a margin for the pipeline between layers.
pub(crate) fn frame_cycles(graph: &Graph) -> u64 {
    let mut t = graph.input_len() as u64 / graph.model().input_shape[0].max(1) as u64;
    for node in graph.nodes() {
        if let (Op::Conv2d { padding, .. }, [_, h, w]) = (node.op(), &node.x().shape[..]) {
            let [top, bottom, left, right] = padding.get();
            t = t.max(((h + top + bottom) * (w + left + right)) as u64);
        }
    }
    t + 8
}

/// The ports of a streaming design: per input beat, one pixel of every input layer.
pub(crate) fn io_layout(graph: &Graph) -> (Vec<Port>, Port) {
    let flows = flows(graph);
    let mut offset = 0;
    let mut inputs = Vec::new();
    for node in graph.nodes().iter().filter(|n| n.reads_input()) {
        let lanes = Flow::of(&node.x().shape, false).lanes();
        let port = Port {
            layer: node.index,
            elements: lanes,
            format: node.format(),
            offset,
        };
        offset += port.bits();
        inputs.push(port);
    }
    let out = graph.output();
    let output = Port {
        layer: out.index,
        elements: flows[out.index].lanes(),
        format: out.format(),
        offset: 0,
    };
    (inputs, output)
}

/// The smallest width that counts to `n` (at least 1).
fn bits_for(n: u64) -> u32 {
    (64 - n.leading_zeros()).max(1)
}

/// A FIFO of `depth` beats of `bits` bits; `pop` must only be asserted when it is not empty.
/// Returns the head wire's name and the "empty" wire's name; an overflow sets the sticky
/// `<name>_ovf` register, whose name goes into `errs` (the module ORs them into `err`).
#[allow(clippy::too_many_arguments)]
fn fifo(
    b: &mut Body,
    errs: &mut Vec<String>,
    name: &str,
    bits: u64,
    depth: u64,
    push: &str,
    data: &str,
    pop: &str,
) -> (String, String) {
    let aw = bits_for(depth.saturating_sub(1));
    let cw = bits_for(depth);
    let top = depth - 1;
    b.line(&format!("reg [{}:0] {name}_mem [0:{top}];", bits - 1));
    b.line(&format!("reg [{}:0] {name}_wr, {name}_rd;", aw - 1));
    b.line(&format!("reg [{}:0] {name}_n;", cw - 1));
    b.line(&format!("reg {name}_ovf;"));
    b.line(&format!("wire {name}_empty = {name}_n == {cw}'d0;"));
    b.line(&format!(
        "wire [{}:0] {name}_head = {name}_mem[{name}_rd];",
        bits - 1
    ));
    b.line(&format!(
        "always @(posedge clk) if ({push}) {name}_mem[{name}_wr] <= {data};"
    ));
    let one = |c: &str| format!("({c} ? {cw}'d1 : {cw}'d0)");
    b.line(&format!(
        "always @(posedge clk) begin\n    if (rst) begin\n      {name}_wr <= {aw}'d0;\n      \
         {name}_rd <= {aw}'d0;\n      {name}_n <= {cw}'d0;\n      {name}_ovf <= 1'b0;\n    end else begin\n      \
         if ({push}) {name}_wr <= ({name}_wr == {aw}'d{top}) ? {aw}'d0 : {name}_wr + {aw}'d1;\n      \
         if ({pop}) {name}_rd <= ({name}_rd == {aw}'d{top}) ? {aw}'d0 : {name}_rd + {aw}'d1;\n      \
         {name}_n <= {name}_n + {} - {};\n      \
         if ({push} && !({pop}) && {name}_n == {cw}'d{depth}) {name}_ovf <= 1'b1;\n    end\n  end",
        one(push),
        one(pop),
    ));
    errs.push(format!("{name}_ovf"));
    (format!("{name}_head"), format!("{name}_empty"))
}

/// An up-counter `name` over `0..n` advancing when `step`, and its "at the last value" wire.
fn counter(b: &mut Body, name: &str, n: u64, step: &str) -> String {
    let w = bits_for(n.saturating_sub(1));
    b.line(&format!("reg [{}:0] {name};", w - 1));
    b.line(&format!("wire {name}_last = {name} == {w}'d{};", n - 1));
    b.line(&format!(
        "always @(posedge clk) if (rst) {name} <= {w}'d0; else if ({step}) {name} <= {name}_last ? {w}'d0 : {name} + {w}'d1;"
    ));
    format!("{name}_last")
}

/// `value ∈ {first, first + step, …}` below `n`, as an OR of equalities (`1'b1` when all).
fn on_grid(name: &str, n: u64, first: u64, step: u64) -> String {
    if step == 1 && first == 0 {
        return "1'b1".to_string();
    }
    let w = bits_for(n.saturating_sub(1));
    if step == 1 {
        return format!("({name} >= {w}'d{first})");
    }
    let hits: Vec<String> = (first..n)
        .step_by(step as usize)
        .map(|v| format!("{name} == {w}'d{v}"))
        .collect();
    if hits.is_empty() {
        "1'b0".to_string()
    } else {
        format!("({})", hits.join(" || "))
    }
}

/// The window of a `k × k` kernel with stride `s` and zero padding `p` over a streamed image:
/// its taps (`[ky·k + kx]`, each the `c` channel codes, registered) and the register that says
/// they hold a complete window this clock.
struct Window {
    taps: Vec<Vec<Sig>>,
    /// Per tap, a flag that is 1 where the tap lies inside the image (with `flag`).
    real: Vec<Sig>,
    fire: String,
}

#[allow(clippy::too_many_arguments)]
fn window(
    b: &mut Body,
    errs: &mut Vec<String>,
    xf: Format,
    (c, h, w): (usize, usize, usize),
    k: usize,
    s: usize,
    p: usize,
    flag: bool,
) -> Window {
    let wb = xf.width() as u64;
    // With `flag`, each pixel carries one more bit: 1 inside the image, 0 for padding.
    let flag = flag && p > 0;
    let bits = c as u64 * wb + flag as u64;
    let (ph, pw) = ((h + 2 * p) as u64, (w + 2 * p) as u64);
    let (pixel, adv) = if p == 0 {
        ("x0".to_string(), "x0_valid".to_string())
    } else {
        let depth = ph * pw - (h * w) as u64;
        let data = if flag {
            "{1'b1, x0}".to_string()
        } else {
            "x0".to_string()
        };
        // Declared before the FIFO that reads it (Verilog-2005 wants names declared first).
        b.line("wire pop;");
        let (head, empty) = fifo(b, errs, "q", bits, depth, "x0_valid", &data, "pop");
        let (yw, xw) = (bits_for(ph - 1), bits_for(pw - 1));
        b.line(&format!("reg [{}:0] py;", yw - 1));
        b.line(&format!("reg [{}:0] px;", xw - 1));
        b.line(&format!(
            "wire pad_here = (py < {yw}'d{p}) || (py >= {yw}'d{}) || (px < {xw}'d{p}) || (px >= {xw}'d{});",
            p + h,
            p + w
        ));
        b.line(&format!("wire adv = pad_here || !{empty};"));
        b.line("assign pop = adv && !pad_here;");
        b.line(&format!(
            "wire [{}:0] pixel = pad_here ? {bits}'d0 : {head};",
            bits - 1
        ));
        b.line(&format!(
            "always @(posedge clk) if (rst) begin\n    py <= {yw}'d0;\n    px <= {xw}'d0;\n  end else if (adv) begin\n    \
             px <= (px == {xw}'d{}) ? {xw}'d0 : px + {xw}'d1;\n    \
             if (px == {xw}'d{}) py <= (py == {yw}'d{}) ? {yw}'d0 : py + {yw}'d1;\n  end",
            pw - 1,
            pw - 1,
            ph - 1
        ));
        ("pixel".to_string(), "adv".to_string())
    };
    // Position of the pixel being shifted in (without padding: counted from the input beats).
    let (row, col) = if p == 0 {
        let x_last = counter(b, "cx", pw, &adv);
        counter(b, "cy", ph, &format!("{adv} && {x_last}"));
        ("cy".to_string(), "cx".to_string())
    } else {
        ("py".to_string(), "px".to_string())
    };
    let len = (k as u64 - 1) * pw + k as u64;
    let mut shift = String::new();
    for i in 0..len {
        b.line(&format!("reg [{}:0] sr_{i};", bits - 1));
        let src = if i == 0 {
            pixel.clone()
        } else {
            format!("sr_{}", i - 1)
        };
        let _ = write!(shift, "\n    sr_{i} <= {src};");
    }
    b.line(&format!(
        "always @(posedge clk) if ({adv}) begin{shift}\n  end"
    ));
    let ready = format!(
        "{adv} && {} && {}",
        on_grid(&row, ph, k as u64 - 1, s as u64),
        on_grid(&col, pw, k as u64 - 1, s as u64)
    );
    b.line("reg fire;");
    b.line(&format!(
        "always @(posedge clk) fire <= rst ? 1'b0 : ({ready});"
    ));
    let mut taps = Vec::with_capacity(k * k);
    let mut real = Vec::new();
    for ky in 0..k {
        for kx in 0..k {
            let at = (k - 1 - ky) as u64 * pw + (k - 1 - kx) as u64;
            if flag {
                let name = format!("r{ky}_{kx}");
                b.line(&format!("wire {name} = sr_{at}[{}];", bits - 1));
                real.push(Sig {
                    name,
                    width: 1,
                    signed: false,
                });
            }
            let lanes = (0..c)
                .map(|ci| {
                    let name = format!("t{ky}_{kx}_{ci}");
                    b.line(&format!(
                        "wire [{}:0] {name} = sr_{at}[{}:{}];",
                        wb - 1,
                        (ci as u64 + 1) * wb - 1,
                        ci as u64 * wb
                    ));
                    Sig {
                        name,
                        width: xf.width(),
                        signed: xf.is_signed(),
                    }
                })
                .collect();
            taps.push(lanes);
        }
    }
    Window {
        taps,
        real,
        fire: "fire".to_string(),
    }
}

/// The module of one layer in the streaming design.
pub(crate) fn layer_module(
    node: &Node,
    flows: &[Flow],
    ctx: &Ctx,
) -> Result<(String, LayerInfo), RtlError> {
    let module = layer_ident(node.index, &node.layer.name);
    let to = node.format();
    let flow = flows[node.index];
    let mut b = Body::default();
    let mut ports = vec!["  input clk".to_string(), "  input rst".to_string()];
    let mut sum = None;
    let mut errs: Vec<String> = Vec::new();
    // The output beat's values and the condition under which they are registered (`None`: the
    // module drives `y`/`y_valid` itself).
    let operand_flow = |k: usize| match node.operands[k].source {
        Some(s) => flows[s],
        None => Flow::of(&node.x().shape, false),
    };
    for k in 0..node.operands.len() {
        let f = if node.reads_input() {
            to
        } else {
            node.operand_format(k)
        };
        let lanes = operand_flow(k).lanes();
        ports.push(format!("  input x{k}_valid"));
        ports.push(format!(
            "  input [{}:0] x{k}",
            lanes as u64 * f.width() as u64 - 1
        ));
    }
    let lanes_in = |k: usize, f: Format, b: &mut Body| -> Vec<Sig> {
        let name = format!("x{k}");
        (0..operand_flow(k).lanes())
            .map(|i| element(b, &name, i, f))
            .collect()
    };
    let (outs, load): (Vec<Sig>, String) = if node.reads_input() {
        let x = lanes_in(0, to, &mut b);
        if let Flow::Flat { .. } = flow {
            let Flow::Image { c, h, w } = operand_flow(0) else {
                unreachable!("the raw input of a streaming design is an image");
            };
            deserialize(&mut b, &x, to, c, h * w)
        } else {
            (x, "x0_valid".to_string())
        }
    } else {
        match node.op() {
            Op::Conv2d { .. } => {
                let xf = node.operand_format(0);
                let Flow::Image { c, h, w } = operand_flow(0) else {
                    unreachable!("convolutions read images");
                };
                let mac = node.mac().expect("a convolution is a sum of products");
                let qfx_ir::MacGeometry::Conv(g) = mac.geometry else {
                    unreachable!("a convolution");
                };
                // `stream_refusal` admits square kernels, one stride, one padding on every side.
                let (k, stride, padding) = (g.kernel[0], g.stride[0], g.padding[0]);
                let flag = ctx.binary_input.is_some();
                let win = window(&mut b, &mut errs, xf, (c, h, w), k, stride, padding, flag);
                // Term j = (ci, ky, kx), as `Mac` orders them.
                let taps: Vec<Sig> = (0..c)
                    .flat_map(|ci| win.taps.iter().map(move |t| t[ci].clone()))
                    .collect();
                let real: Vec<Sig> = (0..c).flat_map(|_| win.real.iter().cloned()).collect();
                let real = (!real.is_empty()).then_some(real.as_slice());
                let input_of = |_: usize, _: usize, j: usize| Some(j);
                let (outs, info) =
                    rows_of_products(&mut b, &mac, 1, &input_of, &taps, real, xf, to, ctx)
                        .map_err(|e| in_layer(node, e))?;
                sum = Some(info);
                (outs, win.fire)
            }
            Op::MaxPool2d { kernel, .. } => {
                let xf = node.operand_format(0);
                let Flow::Image { c, h, w } = operand_flow(0) else {
                    unreachable!("pooling reads images");
                };
                // `stream_refusal` admits square windows with the stride of the window.
                let k = kernel.get()[0];
                let win = window(&mut b, &mut errs, xf, (c, h, w), k, k, 0, false);
                let outs = (0..c)
                    .map(|ci| {
                        let lanes: Vec<Sig> = win.taps.iter().map(|t| t[ci].clone()).collect();
                        crate::ops::pool::max_tree(&mut b, lanes)
                    })
                    .collect();
                (outs, win.fire)
            }
            Op::Shortcut {
                stride,
                pad_channels,
            } => {
                let xf = node.operand_format(0);
                let Flow::Image { h, w, .. } = operand_flow(0) else {
                    unreachable!("shortcuts read images");
                };
                let x = lanes_in(0, xf, &mut b);
                let col_last = counter(&mut b, "cx", w as u64, "x0_valid");
                counter(&mut b, "cy", h as u64, &format!("x0_valid && {col_last}"));
                let keep = format!(
                    "x0_valid && {} && {}",
                    on_grid("cy", h as u64, 0, *stride as u64),
                    on_grid("cx", w as u64, 0, *stride as u64)
                );
                let mut outs = x;
                if *pad_channels > 0 {
                    let zero = b.konst(xf.width(), xf.is_signed(), 0);
                    outs.extend(std::iter::repeat_n(zero, *pad_channels));
                }
                (outs, keep)
            }
            Op::GlobalAvgPool { reciprocal } => {
                let xf = node.operand_format(0);
                let Flow::Image { h, w, .. } = operand_flow(0) else {
                    unreachable!("pooling reads images");
                };
                let x = lanes_in(0, xf, &mut b);
                global_avg_pool(&mut b, &x, xf, to, h * w, reciprocal, ctx)
                    .map_err(|e| in_layer(node, e))?
            }
            Op::Flatten => {
                let xf = node.operand_format(0);
                let x = lanes_in(0, xf, &mut b);
                match operand_flow(0) {
                    Flow::Image { c, h, w } => deserialize(&mut b, &x, xf, c, h * w),
                    Flow::Flat { .. } => (x, "x0_valid".to_string()),
                }
            }
            Op::Add => {
                let (fa, fb) = (node.operand_format(0), node.operand_format(1));
                let depth = flow.beats() as u64 + 4;
                let (ba, bb) = (
                    flow.lanes() as u64 * fa.width() as u64,
                    flow.lanes() as u64 * fb.width() as u64,
                );
                b.line("wire both;");
                let (ha, ea) = fifo(&mut b, &mut errs, "qa", ba, depth, "x0_valid", "x0", "both");
                let (hb, eb) = fifo(&mut b, &mut errs, "qb", bb, depth, "x1_valid", "x1", "both");
                b.line(&format!("assign both = !{ea} && !{eb};"));
                let xa = fields(&mut b, &ha, flow.lanes(), fa);
                let xb = fields(&mut b, &hb, flow.lanes(), fb);
                let beat_ctx = Ctx { beat: true, ..*ctx };
                let outs = ops::emit(&mut b, node, &[xa, xb], &beat_ctx, &mut sum)
                    .map_err(|e| in_layer(node, e))?;
                (outs, "both".to_string())
            }
            _ => {
                // Element-wise layers and Dense: the unrolled logic on one beat.
                let xs: Vec<Vec<Sig>> = (0..node.operands.len())
                    .map(|k| lanes_in(k, node.operand_format(k), &mut b))
                    .collect();
                let beat_ctx = Ctx {
                    beat: matches!(flow, Flow::Image { .. }),
                    ..*ctx
                };
                let outs = ops::emit(&mut b, node, &xs, &beat_ctx, &mut sum)
                    .map_err(|e| in_layer(node, e))?;
                (outs, "x0_valid".to_string())
            }
        }
    };
    if b.too_wide {
        return Err(in_layer(
            node,
            RtlError::new(
                crate::ErrorKind::Unsupported,
                "an intermediate sum needs more than 120 bits",
            ),
        ));
    }
    let w = to.width() as u64;
    let bits = outs.len() as u64 * w;
    ports.push("  output y_valid".to_string());
    ports.push(format!("  output [{}:0] y", bits - 1));
    ports.push("  output err".to_string());
    let mut text = String::new();
    let _ = writeln!(
        text,
        "// Layer {} {} ({}): {} value(s) of {} per beat, {} beat(s) per inference.",
        node.index,
        quoted(&node.layer.name),
        node.op().kind(),
        outs.len(),
        to,
        flow.beats()
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
    let _ = writeln!(text, "  reg [{}:0] y_q;", bits - 1);
    let _ = writeln!(text, "  reg v_q;");
    let _ = writeln!(text, "  always @(posedge clk) if ({load}) y_q <= y_d;");
    let _ = writeln!(
        text,
        "  always @(posedge clk) v_q <= rst ? 1'b0 : ({load});"
    );
    let err = if errs.is_empty() {
        "1'b0".to_string()
    } else {
        errs.join(" | ")
    };
    let _ = writeln!(
        text,
        "  assign y = y_q;\n  assign y_valid = v_q;\n  assign err = {err};\nendmodule\n"
    );
    let info = LayerInfo {
        index: node.index,
        name: node.layer.name.clone(),
        kind: node.op().kind(),
        module,
        registered: true,
        stage: 0,
        elements: outs.len(),
        adders: b.adders.len() as u64,
        comparators: b.comparators.len() as u64,
        multipliers: b.multipliers.len() as u64,
        sum,
    };
    Ok((text, info))
}

/// The `n` fields of format `f` of a packed beat held in the wire `bus`.
fn fields(b: &mut Body, bus: &str, n: usize, f: Format) -> Vec<Sig> {
    (0..n).map(|i| element(b, bus, i, f)).collect()
}

/// An image's pixels shifted into registers, emitted as one beat after the last pixel, in the
/// `[c, h, w]` order `Flatten` gives.
fn deserialize(b: &mut Body, x: &[Sig], f: Format, c: usize, pixels: usize) -> (Vec<Sig>, String) {
    let last = counter(b, "cp", pixels as u64, "x0_valid");
    let wb = f.width();
    let mut outs = Vec::with_capacity(c * pixels);
    for (ci, lane) in x.iter().enumerate().take(c) {
        let mut shift = String::new();
        for t in 0..pixels {
            b.line(&format!("reg [{}:0] f{ci}_{t};", wb - 1));
            let src = if t == 0 {
                lane.name.clone()
            } else {
                format!("f{ci}_{}", t - 1)
            };
            let _ = write!(shift, "\n    f{ci}_{t} <= {src};");
        }
        b.line(&format!(
            "always @(posedge clk) if (x0_valid) begin{shift}\n  end"
        ));
        // After the last pixel, register t holds pixel (pixels − 1 − t).
        for t in 0..pixels {
            outs.push(Sig {
                name: format!("f{ci}_{}", pixels - 1 - t),
                width: wb,
                signed: f.is_signed(),
            });
        }
    }
    // The beat is complete one clock after the last pixel shifted in: `y_d` reads the
    // registers, so the module registers it on the following clock.
    b.line("reg full;");
    b.line(&format!(
        "always @(posedge clk) full <= rst ? 1'b0 : (x0_valid && {last});"
    ));
    (outs, "full".to_string())
}

/// `cast(Σ image · reciprocal)` per channel over a streamed image: exact running sums, the
/// product and the assignment computed from the last pixel's sum.
fn global_avg_pool(
    b: &mut Body,
    x: &[Sig],
    xf: Format,
    to: Format,
    pixels: usize,
    reciprocal: &qfx_ir::Codes,
    ctx: &Ctx,
) -> Result<(Vec<Sig>, String), RtlError> {
    let sum_f = window_sum_format(xf, pixels)
        .map_err(|e| RtlError::new(crate::ErrorKind::Unsupported, format!("window sum: {e}")))?;
    let rf = reciprocal.format_of(0);
    let pf = mul_format(sum_f, rf)?;
    let style = style_for(
        ctx.options.multipliers,
        reciprocal.khot.is_some(),
        rf.width(),
        sum_f.width(),
    );
    let last = counter(b, "cp", pixels as u64, "x0_valid");
    let first = "(cp == 0)";
    let sw = sum_f.width();
    let mut outs = Vec::with_capacity(x.len());
    for (ci, lane) in x.iter().enumerate() {
        let acc = format!("s{ci}");
        b.line(&format!("reg [{}:0] {acc};", sw - 1));
        let prev = b.wire("prev", sw, true, &format!("{first} ? {sw}'d0 : {acc}"));
        let terms = vec![Operand::of(prev), Operand::of(lane.clone())];
        let next = exact(b, "sum", terms, 0, sum_f);
        b.line(&format!(
            "always @(posedge clk) if (x0_valid) {acc} <= {};",
            next.name
        ));
        let y = match product(b, &next, reciprocal.codes[0] as i128, style) {
            Some(p) => exact(b, "gmul", vec![p], 0, pf),
            None => b.konst(pf.width(), pf.is_signed(), 0),
        };
        outs.push(cast(b, &y, pf, to, None, ctx.options.cast_logic));
    }
    Ok((outs, format!("x0_valid && {last}")))
}

/// `qfx_top` of a streaming design: layers wired by their valid/data pairs, `err` the OR of
/// every FIFO's overflow flag.
pub(crate) fn top_module(
    graph: &Graph,
    layers: &[LayerInfo],
    inputs: &[Port],
    output: &Port,
) -> String {
    let in_bits: u64 = inputs.iter().map(Port::bits).sum();
    let flows = flows(graph);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "module {TOP} (\n  input clk,\n  input rst,\n  input in_valid,\n  input [{}:0] in_data,\n  \
         output out_valid,\n  output [{}:0] out_data,\n  output err\n);",
        in_bits - 1,
        output.bits() - 1
    );
    let mut errs = Vec::new();
    for (node, info) in graph.nodes().iter().zip(layers) {
        let bits = flows[node.index].lanes() as u64 * node.format().width() as u64;
        let m = &info.module;
        let _ = writeln!(t, "  wire [{}:0] {m}_y;", bits - 1);
        let _ = writeln!(t, "  wire {m}_v, {m}_err;");
        let mut conns = vec!["    .clk(clk)".to_string(), "    .rst(rst)".to_string()];
        if node.reads_input() {
            let port = inputs
                .iter()
                .find(|p| p.layer == node.index)
                .expect("every input layer has a port");
            conns.push("    .x0_valid(in_valid)".to_string());
            conns.push(format!(
                "    .x0(in_data[{}:{}])",
                port.offset + port.bits() - 1,
                port.offset
            ));
        } else {
            for (k, operand) in node.operands.iter().enumerate() {
                let src = &layers[operand.source.expect("only input layers read the input")];
                conns.push(format!("    .x{k}_valid({}_v)", src.module));
                conns.push(format!("    .x{k}({}_y)", src.module));
            }
        }
        conns.push(format!("    .y_valid({m}_v)"));
        conns.push(format!("    .y({m}_y)"));
        conns.push(format!("    .err({m}_err)"));
        errs.push(format!("{m}_err"));
        let _ = writeln!(t, "  {m} u{} (\n{}\n  );", node.index, conns.join(",\n"));
    }
    let last = &layers.last().expect("at least one layer").module;
    let _ = writeln!(t, "  assign out_valid = {last}_v;");
    let _ = writeln!(t, "  assign out_data = {last}_y;");
    let _ = writeln!(t, "  assign err = {};", errs.join(" | "));
    let _ = writeln!(t, "endmodule");
    t
}

/// Whether a model is built as a stream when the architecture is left to qfx: its input is an
/// image, it has image layers (convolutions or pooling), and the streaming design builds every
/// layer (else it is unrolled).
pub(crate) fn wants_stream(graph: &Graph) -> bool {
    graph.model().input_shape.len() == 3
        && graph.nodes().iter().any(|n| {
            matches!(
                n.op(),
                Op::Conv2d { .. }
                    | Op::MaxPool2d { .. }
                    | Op::GlobalAvgPool { .. }
                    | Op::Shortcut { .. }
            )
        })
        && graph.nodes().iter().all(|n| stream_refusal(n).is_none())
}

/// Why the streaming design does not build `node`, if it does not: it streams square
/// convolutions with one stride and one padding on every side (no dilation, no groups), square
/// max pooling with the window's stride, option-A shortcuts, global average pooling, and the
/// element-wise layers and dense layers after flattening.
pub(crate) fn stream_refusal(node: &qfx_ir::Node) -> Option<String> {
    let square = |p: qfx_ir::Pair| p.get()[0] == p.get()[1];
    match node.op() {
        Op::Conv2d { .. } => {
            let Some(qfx_ir::MacGeometry::Conv(g)) = node.mac().map(|m| m.geometry) else {
                unreachable!("a convolution has a convolution's geometry");
            };
            let [t, b, l, r] = g.padding;
            let ok = g.kernel[0] == g.kernel[1]
                && g.stride[0] == g.stride[1]
                && [b, l, r] == [t; 3]
                && g.dilation == [1, 1]
                && g.groups == 1;
            (!ok).then(|| {
                "streams square convolutions with one stride and padding, no dilation or groups"
                    .to_string()
            })
        }
        Op::MaxPool2d { kernel, stride } => (!(square(*kernel)
            && stride.is_none_or(|s| s == *kernel)))
        .then(|| "streams square max pooling whose stride is its window".to_string()),
        Op::Conv1d { .. }
        | Op::MaxPool1d { .. }
        | Op::AvgPool2d { .. }
        | Op::AvgPool1d { .. }
        | Op::GlobalMaxPool
        | Op::Reshape { .. } => Some(format!("does not stream {} layers", node.op().kind())),
        // What no architecture builds is refused before the architecture is chosen.
        _ => None,
    }
}
