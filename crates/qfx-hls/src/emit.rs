//! The generator: plans one typedef per tensor, accumulator and constant group, writes the
//! constants as integer codes and the top function as calls into `qfx_layers.h`.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use qfx_fixed::{Fixed, Format, Overflow, Quant};
use qfx_ir::{Codes, Model, Op, INPUT};

use crate::names::{is_safe_part, layer_ident, quoted, top_ident};
use crate::template::{Slots, Template};
use crate::{ErrorKind, HlsError};

mod khot;

/// File name of the IR copy inside a generated project.
pub const IR_FILE: &str = "model.ir.json";

macro_rules! template {
    ($path:literal) => {
        Template {
            path: $path,
            text: include_str!(concat!("../templates/", $path)),
        }
    };
}

const LAYERS_H: Template = template!("firmware/qfx_layers.h");
const MODEL_H: Template = template!("firmware/model.h");
const MODEL_TYPES_H: Template = template!("firmware/model_types.h");
const MODEL_WEIGHTS_H: Template = template!("firmware/model_weights.h");
const MODEL_CPP: Template = template!("firmware/model.cpp");
const TESTBENCH: Template = template!("tb/testbench.cpp");
const BUILD_TCL: Template = template!("build.tcl");
const README: Template = template!("README.md");

/// Choices that are not in the IR.
#[derive(Clone, Debug, PartialEq)]
pub struct EmitOptions {
    /// FPGA part for `set_part` (letters, digits, `-`, `_`, `.`).
    pub part: String,
    /// Clock period in ns.
    pub clock_ns: f64,
}

impl Default for EmitOptions {
    fn default() -> EmitOptions {
        EmitOptions {
            part: "xcu250-figd2104-2L-e".to_string(),
            clock_ns: 5.0,
        }
    }
}

/// What [`emit`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct EmitReport {
    /// The project folder.
    pub dir: PathBuf,
    /// The top function's name.
    pub top: String,
    /// Files written, relative to `dir`.
    pub files: Vec<PathBuf>,
    /// Number of typedefs in `model_types.h`.
    pub typedefs: usize,
    /// Number of integer codes in `model_weights.h`.
    pub constants: usize,
}

/// Writes the Vitis HLS project for `model` into `out_dir` (created if needed; files it writes
/// are replaced atomically), with the default part and clock.
pub fn emit(model: &Model, out_dir: &Path) -> Result<EmitReport, HlsError> {
    emit_with(model, out_dir, &EmitOptions::default())
}

/// [`emit`] with explicit options.
pub fn emit_with(
    model: &Model,
    out_dir: &Path,
    options: &EmitOptions,
) -> Result<EmitReport, HlsError> {
    if !is_safe_part(&options.part) {
        return Err(HlsError::new(
            ErrorKind::BadInput,
            format!(
                "part name {:?} must be letters, digits, `-`, `_` or `.`",
                options.part
            ),
        ));
    }
    if !(options.clock_ns.is_finite() && options.clock_ns > 0.0 && options.clock_ns < 1e6) {
        return Err(HlsError::new(
            ErrorKind::BadInput,
            format!(
                "clock period {} ns is not a positive number",
                options.clock_ns
            ),
        ));
    }
    let plan = Plan::new(model)?;
    let files = plan.render(model, options)?;
    std::fs::create_dir_all(out_dir)
        .map_err(|e| HlsError::io(format!("cannot create {}", out_dir.display()), e))?;
    let mut written = Vec::new();
    for (rel, text) in &files {
        write_atomic(&out_dir.join(rel), text.as_bytes())?;
        written.push(PathBuf::from(rel));
    }
    Ok(EmitReport {
        dir: out_dir.to_path_buf(),
        top: plan.top.clone(),
        files: written,
        typedefs: plan.gen.typedefs_count,
        constants: plan.gen.constants_count,
    })
}

/// Writes `bytes` to a temporary file beside `path` and renames it into place.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), HlsError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| HlsError::io(format!("cannot create {}", parent.display()), e))?;
    }
    qfx_ir::write_atomic(path, bytes)
        .map_err(|e| HlsError::io(format!("cannot write {}", path.display()), e))
}

/// Generated C++ fragments.
#[derive(Default)]
struct Gen {
    typedefs: String,
    typedefs_count: usize,
    constants: String,
    constants_count: usize,
    buffers: String,
    body: String,
    /// Generated layer functions (multiplier-free K-hot layers), defined before the top function.
    functions: String,
}

impl Gen {
    fn typedef(&mut self, name: &str, format: Format, what: &str) {
        let _ = writeln!(
            self.typedefs,
            "typedef {} {name};  // {what}",
            format.full_spelling()
        );
        self.typedefs_count += 1;
    }

    /// Emits `codes` as `static const <container> name[n]` and returns the container's name.
    fn codes(&mut self, name: &str, codes: &Codes, what: &str) -> String {
        let bits = codes
            .formats
            .iter()
            .map(|f| f.width() + !f.is_signed() as u32)
            .max()
            .unwrap_or(1)
            .clamp(1, 64);
        self.code_array(name, bits, &codes.codes, what)
    }

    fn code_array(&mut self, name: &str, bits: u32, codes: &[i64], what: &str) -> String {
        let c_type = match bits {
            0..=8 => "signed char",
            9..=16 => "short",
            17..=32 => "int",
            _ => "long long",
        };
        let container = format!("{name}_c_t");
        let _ = writeln!(
            self.constants,
            "// {what}\ntypedef QFX_CONTAINER(ap_int<{bits}>, {c_type}) {container};\nstatic const {container} {name}[{}] = {{",
            codes.len()
        );
        for line in codes.chunks(20) {
            let items: Vec<String> = line.iter().map(|&c| code_literal(c)).collect();
            let _ = writeln!(self.constants, "    {},", items.join(", "));
        }
        self.constants.push_str("};\n\n");
        self.constants_count += codes.len();
        container
    }

    fn channel_list(&mut self, name: &str, channels: &[usize]) {
        let items: Vec<String> = channels.iter().map(|c| c.to_string()).collect();
        let _ = writeln!(
            self.constants,
            "static const int {name}[{}] = {{{}}};\n",
            channels.len(),
            items.join(", ")
        );
    }
}

/// A C++ integer literal for `c` (exact for every `i64`).
fn code_literal(c: i64) -> String {
    if c == i64::MIN {
        "(-9223372036854775807LL - 1)".to_string()
    } else if i32::try_from(c).is_ok() {
        c.to_string()
    } else {
        format!("{c}LL")
    }
}

/// Channels grouped by the formats they need (first appearance order).
fn group_channels<K: PartialEq + Copy>(n: usize, key: impl Fn(usize) -> K) -> Vec<(K, Vec<usize>)> {
    let mut groups: Vec<(K, Vec<usize>)> = Vec::new();
    for c in 0..n {
        let k = key(c);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, chans)) => chans.push(c),
            None => groups.push((k, vec![c])),
        }
    }
    groups
}

/// A tensor as the top function sees it.
#[derive(Clone)]
struct Tensor {
    buffer: String,
    type_name: String,
    shape: Vec<usize>,
}

struct Plan {
    top: String,
    input_type: Format,
    n_in: usize,
    n_out: usize,
    output_type: Format,
    layer_rows: String,
    gen: Gen,
}

fn unsupported(layer: &str, m: impl fmt::Display) -> HlsError {
    HlsError::new(
        ErrorKind::Unsupported,
        format!("layer {}: {m}", quoted(layer)),
    )
}

impl Plan {
    fn new(model: &Model) -> Result<Plan, HlsError> {
        let shapes = model
            .validate()
            .map_err(|e| HlsError::new(ErrorKind::InvalidModel, e.to_string()))?;
        let mut gen = Gen::default();
        let n_in: usize = model.input_shape.iter().product();
        // The layers that read the raw input convert f32 to their own type: the testbench does
        // that conversion (exactly as the engine), so they must agree on one input type.
        let mut input_type: Option<Format> = None;
        for layer in &model.layers {
            if layer.inputs.iter().any(|i| i == INPUT) {
                if !matches!(layer.op, Op::Quantize | Op::Flatten) {
                    return Err(unsupported(
                        &layer.name,
                        "reads the raw input but is not a quantizer (Quantize or Flatten)",
                    ));
                }
                match input_type {
                    Some(f) if f != layer.output => {
                        return Err(unsupported(
                            &layer.name,
                            format!(
                                "reads the raw input as {} while another layer reads it as {f}; \
                                 the top function has one input type",
                                layer.output
                            ),
                        ))
                    }
                    _ => input_type = Some(layer.output),
                }
            }
        }
        let input_type = input_type.ok_or_else(|| {
            HlsError::new(ErrorKind::Unsupported, "no layer reads the model input")
        })?;
        let input = Tensor {
            buffer: "input".to_string(),
            type_name: "input_t".to_string(),
            shape: model.input_shape.clone(),
        };
        let mut tensors: Vec<Tensor> = Vec::with_capacity(model.layers.len());
        let mut layer_rows = String::new();
        let last = model.layers.len() - 1;
        for (i, layer) in model.layers.iter().enumerate() {
            let id = layer_ident(i, &layer.name);
            let shape = shapes[i].clone();
            let n: usize = shape.iter().product();
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
                let _ = writeln!(gen.buffers, "  static {t} {b}[{n}];");
                b
            };
            let source = |k: usize| -> Tensor {
                let name = &layer.inputs[k];
                if name == INPUT {
                    return input.clone();
                }
                let j = model
                    .layers
                    .iter()
                    .position(|l| &l.name == name)
                    .expect("validated: inputs are earlier layers");
                tensors[j].clone()
            };
            let x = source(0);
            let xn: usize = x.shape.iter().product();
            let (xb, xt) = (&x.buffer, &x.type_name);
            let kind = layer.op.kind();
            let _ = writeln!(
                gen.body,
                "  // layer {i} {} ({kind}) -> {}",
                quoted(&layer.name),
                // qfx's own spelling of a validated format: `ap_fixed<...>` needs no escaping.
                layer.output.full_spelling()
            );
            let _ = writeln!(
                layer_rows,
                "| {i} | `{id}` | {kind} | `{}` |",
                layer.output.full_spelling()
            );
            let output = Tensor {
                buffer: buffer.clone(),
                type_name: t.clone(),
                shape: shape.clone(),
            };
            let site = khot::Site {
                id: &id,
                index: i,
                name: &layer.name,
                x: (xb, xt, x_format(model, layer, input_type)),
                y: (&buffer, &t),
            };
            match &layer.op {
                Op::Quantize | Op::Flatten => {
                    let _ = writeln!(gen.body, "  qfx::cast<{xt}, {t}, {n}>({xb}, {buffer});");
                }
                Op::Relu { clip } => {
                    let clip_format = Format::new(64, 32, true, Quant::Trn, Overflow::Sat, 0)
                        .expect("valid format");
                    // As the engine: a clip that does not convert (NaN, ±Inf) is no clip.
                    let code = clip
                        .and_then(|c| Fixed::from_f64(c, clip_format).ok())
                        .and_then(|c| c.code());
                    let (flag, code) = match code {
                        Some(c) => ("true", code_literal(c as i64)),
                        None => ("false", "0".to_string()),
                    };
                    let _ = writeln!(
                        gen.body,
                        "  qfx::relu<{xt}, {t}, {n}, {flag}>({xb}, {buffer}, qfx::from_code<qfx::clip_t>({code}));"
                    );
                }
                Op::Add => {
                    let y = source(1);
                    let _ = writeln!(
                        gen.body,
                        "  qfx::add<{xt}, {}, {t}, {n}>({xb}, {}, {buffer});",
                        y.type_name, y.buffer
                    );
                }
                Op::MaxPool2d { kernel } => {
                    let (c, h, w) = (x.shape[0], x.shape[1], x.shape[2]);
                    let _ = writeln!(
                        gen.body,
                        "  qfx::maxpool2d<{xt}, {t}, {c}, {h}, {w}, {kernel}>({xb}, {buffer});"
                    );
                }
                Op::Shortcut {
                    stride,
                    pad_channels,
                } => {
                    let (c, h, w) = (x.shape[0], x.shape[1], x.shape[2]);
                    let _ = writeln!(
                        gen.body,
                        "  qfx::shortcut<{xt}, {t}, {c}, {h}, {w}, {stride}, {pad_channels}>({xb}, {buffer});"
                    );
                }
                Op::GlobalAvgPool { reciprocal } => {
                    let (c, inner) = (x.shape[0], x.shape[1] * x.shape[2]);
                    let x_format = x_format(model, layer, input_type);
                    // The exact sum, as the engine forms it.
                    let width = x_format.width() + usize::BITS - inner.leading_zeros() + 1;
                    let sum = Format::signed(width, width as i32 - x_format.frac_bits() as i32)
                        .map_err(|e| unsupported(&layer.name, e))?;
                    gen.typedef(&format!("{id}_sum_t"), sum, "exact window sum");
                    gen.typedef(&format!("{id}_r_t"), reciprocal.formats[0], "reciprocal");
                    let rc = gen.codes(
                        &format!("{id}_r"),
                        reciprocal,
                        &format!("layer {i}: reciprocal"),
                    );
                    let _ = writeln!(
                        gen.body,
                        "  qfx::global_avg_pool<{xt}, {id}_sum_t, {id}_r_t, {t}, {rc}, {c}, {inner}>({xb}, {id}_r[0], {buffer});"
                    );
                }
                Op::Sign => {
                    let _ = writeln!(gen.body, "  qfx::sign<{xt}, {t}, {n}>({xb}, {buffer});");
                }
                Op::Prelu { slope } => {
                    let c = x.shape[0];
                    let hw = xn / c;
                    if let Some(k) = slope.khot.filter(|_| khot::fits(&site, slope)) {
                        let call = khot::channel_scale(&mut gen, &site, (c, hw), slope, None, k)?;
                        let _ = writeln!(gen.body, "{call}");
                        tensors.push(output);
                        continue;
                    }
                    let sc = gen.codes(
                        &format!("{id}_s"),
                        slope,
                        &format!("layer {i}: PReLU slope"),
                    );
                    let groups = group_channels(c, |ch| slope.format_of(ch));
                    let single = groups.len() == 1;
                    for (g, (sf, chans)) in groups.iter().enumerate() {
                        gen.typedef(&format!("{id}_s{g}_t"), *sf, "slope");
                        let ch = channel_arg(&mut gen, &id, g, chans, single);
                        let _ = writeln!(
                            gen.body,
                            "  qfx::prelu<{xt}, {id}_s{g}_t, {t}, {sc}, {c}, {hw}, {}, {single}>({xb}, {id}_s, {ch}, {buffer});",
                            chans.len()
                        );
                    }
                }
                Op::BatchNorm { scale, shift } => {
                    let c = x.shape[0];
                    let hw = xn / c;
                    if let Some(k) = scale.khot.filter(|_| khot::fits(&site, scale)) {
                        let call =
                            khot::channel_scale(&mut gen, &site, (c, hw), scale, Some(shift), k)?;
                        let _ = writeln!(gen.body, "{call}");
                        tensors.push(output);
                        continue;
                    }
                    let sc = gen.codes(
                        &format!("{id}_s"),
                        scale,
                        &format!("layer {i}: BatchNorm scale"),
                    );
                    let tc = gen.codes(
                        &format!("{id}_h"),
                        shift,
                        &format!("layer {i}: BatchNorm shift"),
                    );
                    let groups = group_channels(c, |ch| (scale.format_of(ch), shift.format_of(ch)));
                    let single = groups.len() == 1;
                    for (g, ((sf, hf), chans)) in groups.iter().enumerate() {
                        gen.typedef(&format!("{id}_s{g}_t"), *sf, "scale");
                        gen.typedef(&format!("{id}_h{g}_t"), *hf, "shift");
                        let ch = channel_arg(&mut gen, &id, g, chans, single);
                        let _ = writeln!(
                            gen.body,
                            "  qfx::batchnorm<{xt}, {id}_s{g}_t, {id}_h{g}_t, {t}, {sc}, {tc}, {c}, {hw}, {}, {single}>({xb}, {id}_s, {id}_h, {ch}, {buffer});",
                            chans.len()
                        );
                    }
                }
                Op::Dense {
                    weight,
                    bias,
                    accumulator,
                    order,
                } => {
                    match order {
                        qfx_ir::AccumulationOrder::BiasThenInputChannelMajor => {}
                    }
                    if let Some(k) = weight.khot.filter(|_| khot::fits(&site, weight)) {
                        let call =
                            khot::dense(&mut gen, &site, weight, bias.as_ref(), accumulator, k)?;
                        let _ = writeln!(gen.body, "{call}");
                        tensors.push(output);
                        continue;
                    }
                    let (d_in, d_out) = (weight.shape[0], weight.shape[1]);
                    let (wc, bc, bias_fmt) =
                        weights(&mut gen, &id, i, weight, bias.as_ref(), d_out);
                    let groups = group_channels(d_out, |o| {
                        (weight.format_of(o), bias_fmt(o), acc(accumulator, o))
                    });
                    let single = groups.len() == 1;
                    for (g, ((wf, bf, af), chans)) in groups.iter().enumerate() {
                        typedefs_wba(&mut gen, &id, g, *wf, *bf, *af);
                        let ch = channel_arg(&mut gen, &id, g, chans, single);
                        let _ = writeln!(
                            gen.body,
                            "  qfx::dense<{xt}, {id}_w{g}_t, {id}_b{g}_t, {id}_acc{g}_t, {t}, {wc}, {bc}, {d_in}, {d_out}, {}, {single}>({xb}, {id}_w, {id}_b, {ch}, {buffer});",
                            chans.len()
                        );
                    }
                }
                Op::Conv2d {
                    weight,
                    bias,
                    stride,
                    padding,
                    accumulator,
                    order,
                } => {
                    match order {
                        qfx_ir::AccumulationOrder::BiasThenInputChannelMajor => {}
                    }
                    let (c_out, c_in, k) = (weight.shape[0], weight.shape[1], weight.shape[2]);
                    let (h, w) = (x.shape[1], x.shape[2]);
                    let (oh, ow) = (shape[1], shape[2]);
                    if let Some(khot) = weight.khot.filter(|_| khot::fits(&site, weight)) {
                        let call = khot::conv2d(
                            &mut gen,
                            &site,
                            (c_in, h, w),
                            (oh, ow),
                            (*stride, *padding),
                            weight,
                            bias.as_ref(),
                            accumulator,
                            khot,
                        )?;
                        let _ = writeln!(gen.body, "{call}");
                        tensors.push(output);
                        continue;
                    }
                    let per_out = c_in * k * k;
                    let (wc, bc, bias_fmt) =
                        weights(&mut gen, &id, i, weight, bias.as_ref(), c_out);
                    let groups = group_channels(c_out, |o| {
                        (
                            weight.format_of(o * per_out),
                            bias_fmt(o),
                            acc(accumulator, o),
                        )
                    });
                    let single = groups.len() == 1;
                    for (g, ((wf, bf, af), chans)) in groups.iter().enumerate() {
                        typedefs_wba(&mut gen, &id, g, *wf, *bf, *af);
                        let ch = channel_arg(&mut gen, &id, g, chans, single);
                        let _ = writeln!(
                            gen.body,
                            "  qfx::conv2d<{xt}, {id}_w{g}_t, {id}_b{g}_t, {id}_acc{g}_t, {t}, {wc}, {bc}, {c_in}, {h}, {w}, {c_out}, {k}, {stride}, {padding}, {oh}, {ow}, {}, {single}>({xb}, {id}_w, {id}_b, {ch}, {buffer});",
                            chans.len()
                        );
                    }
                }
            }
            tensors.push(output);
        }
        let last = &model.layers[last];
        Ok(Plan {
            top: top_ident(&model.name),
            input_type,
            n_in,
            n_out: shapes.last().map(|s| s.iter().product()).unwrap_or(0),
            output_type: last.output,
            layer_rows,
            gen,
        })
    }

    fn render(
        &self,
        model: &Model,
        options: &EmitOptions,
    ) -> Result<Vec<(String, String)>, HlsError> {
        let model_comment = format!("model {}", quoted(&model.name));
        let common = Common {
            model_comment: model_comment.clone(),
            top_name: self.top.clone(),
            n_in: self.n_in,
            n_out: self.n_out,
        };
        let zeros = vec!["00000000"; self.n_in].join(" ");
        let mut files = vec![
            (LAYERS_H.path.to_string(), LAYERS_H.text.to_string()),
            (MODEL_H.path.to_string(), MODEL_H.render(&common)?),
            (
                MODEL_TYPES_H.path.to_string(),
                MODEL_TYPES_H.render(&TypesSlots {
                    model_comment: model_comment.clone(),
                    typedefs: self.gen.typedefs.clone(),
                    input_type: self.input_type.full_spelling(),
                    output_type: self.output_type.full_spelling(),
                })?,
            ),
            (
                MODEL_WEIGHTS_H.path.to_string(),
                MODEL_WEIGHTS_H.render(&WeightsSlots {
                    model_comment: model_comment.clone(),
                    constants: self.gen.constants.clone(),
                })?,
            ),
            (
                MODEL_CPP.path.to_string(),
                MODEL_CPP.render(&TopSlots {
                    common: &common,
                    functions: self.gen.functions.clone(),
                    buffers: self.gen.buffers.clone(),
                    body: self.gen.body.clone(),
                })?,
            ),
            (
                TESTBENCH.path.to_string(),
                TESTBENCH.render(&CommentOnly(model_comment.clone()))?,
            ),
            (
                "tb/inputs.txt".to_string(),
                format!("qfx-inputs 1 1 {}\n{zeros}\n", self.n_in),
            ),
            (
                BUILD_TCL.path.to_string(),
                BUILD_TCL.render(&TclSlots {
                    common: &common,
                    part: options.part.clone(),
                    clock_ns: format!("{}", options.clock_ns),
                })?,
            ),
            (
                README.path.to_string(),
                README.render(&ReadmeSlots {
                    common: &common,
                    input_type: self.input_type.full_spelling(),
                    output_type: self.output_type.full_spelling(),
                    layer_rows: self.layer_rows.clone(),
                    part: options.part.clone(),
                    clock_ns: format!("{}", options.clock_ns),
                })?,
            ),
        ];
        files.push((IR_FILE.to_string(), model.to_json() + "\n"));
        Ok(files)
    }
}

/// The format of a layer's first input.
fn x_format(model: &Model, layer: &qfx_ir::Layer, input_type: Format) -> Format {
    model
        .layers
        .iter()
        .find(|l| l.name == layer.inputs[0])
        .map_or(input_type, |l| l.output)
}

fn acc(accumulator: &[Format], channel: usize) -> Format {
    if accumulator.len() == 1 {
        accumulator[0]
    } else {
        accumulator[channel]
    }
}

/// Emits a layer's weight and bias codes (zeros when the IR has no bias: casting a zero bias
/// into the accumulator gives the same 0 the engine starts from).
fn weights<'a>(
    gen: &mut Gen,
    id: &str,
    i: usize,
    weight: &Codes,
    bias: Option<&'a Codes>,
    outputs: usize,
) -> (String, String, impl Fn(usize) -> Format + 'a) {
    let wc = gen.codes(&format!("{id}_w"), weight, &format!("layer {i}: weights"));
    let bc = match bias {
        Some(b) => gen.codes(&format!("{id}_b"), b, &format!("layer {i}: bias")),
        None => gen.code_array(
            &format!("{id}_b"),
            1,
            &vec![0; outputs],
            &format!("layer {i}: no bias in the IR (zeros)"),
        ),
    };
    let zero_format = Format::signed(1, 1).expect("valid format");
    (wc, bc, move |o: usize| {
        bias.map_or(zero_format, |b| b.format_of(o))
    })
}

fn typedefs_wba(gen: &mut Gen, id: &str, g: usize, w: Format, b: Format, a: Format) {
    gen.typedef(&format!("{id}_w{g}_t"), w, "weights");
    gen.typedef(&format!("{id}_b{g}_t"), b, "bias");
    gen.typedef(&format!("{id}_acc{g}_t"), a, "accumulator");
}

/// The channel-list argument of a group: `qfx::all_channels` when one group has them all.
fn channel_arg(gen: &mut Gen, id: &str, g: usize, chans: &[usize], single: bool) -> String {
    if single {
        "qfx::all_channels".to_string()
    } else {
        let name = format!("{id}_g{g}_ch");
        gen.channel_list(&name, chans);
        name
    }
}

struct Common {
    model_comment: String,
    top_name: String,
    n_in: usize,
    n_out: usize,
}

impl Slots for Common {
    fn slots(&self) -> Vec<(&'static str, String)> {
        vec![
            ("model_comment", self.model_comment.clone()),
            ("top_name", self.top_name.clone()),
            ("n_in", self.n_in.to_string()),
            ("n_out", self.n_out.to_string()),
        ]
    }
}

struct CommentOnly(String);

impl Slots for CommentOnly {
    fn slots(&self) -> Vec<(&'static str, String)> {
        vec![("model_comment", self.0.clone())]
    }
}

struct TypesSlots {
    model_comment: String,
    typedefs: String,
    input_type: String,
    output_type: String,
}

impl Slots for TypesSlots {
    fn slots(&self) -> Vec<(&'static str, String)> {
        vec![
            ("model_comment", self.model_comment.clone()),
            ("typedefs", self.typedefs.clone()),
            ("input_type", self.input_type.clone()),
            ("output_type", self.output_type.clone()),
        ]
    }
}

struct WeightsSlots {
    model_comment: String,
    constants: String,
}

impl Slots for WeightsSlots {
    fn slots(&self) -> Vec<(&'static str, String)> {
        vec![
            ("model_comment", self.model_comment.clone()),
            ("constants", self.constants.clone()),
        ]
    }
}

struct TopSlots<'a> {
    common: &'a Common,
    functions: String,
    buffers: String,
    body: String,
}

impl Slots for TopSlots<'_> {
    fn slots(&self) -> Vec<(&'static str, String)> {
        let mut s = self.common.slots();
        s.push(("functions", self.functions.clone()));
        s.push(("buffers", self.buffers.clone()));
        s.push(("body", self.body.clone()));
        s
    }
}

struct TclSlots<'a> {
    common: &'a Common,
    part: String,
    clock_ns: String,
}

impl Slots for TclSlots<'_> {
    fn slots(&self) -> Vec<(&'static str, String)> {
        vec![
            ("model_comment", self.common.model_comment.clone()),
            ("top_name", self.common.top_name.clone()),
            ("part", self.part.clone()),
            ("clock_ns", self.clock_ns.clone()),
        ]
    }
}

struct ReadmeSlots<'a> {
    common: &'a Common,
    input_type: String,
    output_type: String,
    layer_rows: String,
    part: String,
    clock_ns: String,
}

impl Slots for ReadmeSlots<'_> {
    fn slots(&self) -> Vec<(&'static str, String)> {
        let mut s = self.common.slots();
        s.extend([
            ("input_type", self.input_type.clone()),
            ("output_type", self.output_type.clone()),
            ("layer_rows", self.layer_rows.clone()),
            ("part", self.part.clone()),
            ("clock_ns", self.clock_ns.clone()),
        ]);
        s
    }
}
