//! Shared by the engine's integration tests: a seeded generator of small random IR models and
//! a slow, obviously correct interpreter built only on `qfx_fixed::Fixed` (`mul`, `add`, `cast`)
//! that follows the IR documentation literally.
#![allow(dead_code)]

use qfx_fixed::{Fixed, Format, Overflow, Quant};
use qfx_ir::{AccumulationOrder, Codes, Layer, Model, Op, Padding, Pair, INPUT, IR_VERSION};

pub use qfx_testkit::{fmt, Rng};

/// A random format: `W` in `widths`, any quantization, the given overflow modes.
pub fn random_format(rng: &mut Rng, widths: (i64, i64), overflows: &[Overflow]) -> Format {
    let w = rng.range(widths.0, widths.1) as u32;
    let o = rng.pick(overflows);
    let signed = o == Overflow::WrapSm || rng.coin(75);
    let n = if matches!(o, Overflow::Wrap | Overflow::WrapSm) && rng.coin(40) {
        rng.range(1, 2.min(w as i64)) as u32
    } else {
        0
    };
    let i = rng.range(-2, w as i64 / 2 + 3) as i32;
    Format::new(w, i, signed, rng.pick(&Quant::ALL), o, n).unwrap()
}

pub fn any_format(rng: &mut Rng, widths: (i64, i64)) -> Format {
    random_format(rng, widths, &Overflow::ALL)
}

/// A random accumulator for products with `frac` fractional bits: exact (`F ≥ frac`) or
/// rounding, narrow enough to overflow or wide enough not to.
pub fn random_acc(rng: &mut Rng, frac: i64) -> Format {
    let f = frac + rng.range(-3, 3);
    // Mostly narrow enough to overflow; sometimes beyond 64 bits (the i128 path).
    let w = if rng.coin(15) {
        rng.range(60, 100)
    } else {
        rng.range(4, 30)
    };
    let o = rng.pick(&Overflow::ALL);
    let signed = o == Overflow::WrapSm || rng.coin(85);
    let n = if matches!(o, Overflow::Wrap | Overflow::WrapSm) && rng.coin(30) {
        rng.range(1, 2) as u32
    } else {
        0
    };
    Format::new(
        w as u32,
        (w - f) as i32,
        signed,
        rng.pick(&Quant::ALL),
        o,
        n,
    )
    .unwrap()
}

fn codes(rng: &mut Rng, shape: Vec<usize>, axes: &[Option<usize>], width: (i64, i64)) -> Codes {
    let axis = rng.pick(axes);
    let nf = axis.map_or(1, |a| shape[a]);
    let formats: Vec<Format> = (0..nf).map(|_| any_format(rng, width)).collect();
    let mut c = Codes {
        shape: shape.clone(),
        axis,
        formats,
        codes: vec![0; shape.iter().product()],
        khot: None,
    };
    for i in 0..c.codes.len() {
        c.codes[i] = rng.code(c.format_of(i));
    }
    c
}

fn layer(name: &str, inputs: &[&str], op: Op, output: Format) -> Layer {
    Layer {
        name: name.into(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        op,
        output,
    }
}

fn accs(rng: &mut Rng, n: usize, frac: i64) -> Vec<Format> {
    if rng.coin(50) {
        vec![random_acc(rng, frac)]
    } else {
        (0..n).map(|_| random_acc(rng, frac)).collect()
    }
}

/// Fractional bits of the products of `x` with `weight` (the first weight format).
fn product_frac(x: Format, weight: &Codes) -> i64 {
    x.frac_bits() + weight.formats[0].frac_bits()
}

/// A tensor of the model being generated: its layer's name, format and shape.
#[derive(Clone, Debug)]
struct T {
    pub name: String,
    pub f: Format,
    pub shape: Vec<usize>,
}

/// Builds a random model layer by layer; each layer's shape comes from the IR's own shape rule
/// (resolving the model so far), so the generator never computes geometry.
struct Builder {
    input_shape: Vec<usize>,
    layers: Vec<Layer>,
}

impl Builder {
    fn model(&self) -> Model {
        Model {
            version: IR_VERSION,
            name: "random".into(),
            input_shape: self.input_shape.clone(),
            layers: self.layers.clone(),
            preprocess: None,
        }
    }

    fn push(&mut self, prefix: &str, inputs: &[&T], op: Op, f: Format) -> T {
        let name = format!("{prefix}{}", self.layers.len());
        let names: Vec<&str> = inputs.iter().map(|t| t.name.as_str()).collect();
        let names = if names.is_empty() { vec![INPUT] } else { names };
        self.layers.push(layer(&name, &names, op, f));
        let model = self.model();
        let graph = model
            .resolve()
            .unwrap_or_else(|e| panic!("generated layer `{name}`: {e}\n{}", model.to_json()));
        let shape = graph.output().shape.clone();
        T { name, f, shape }
    }
}

/// Divisors of `n`.
fn divisors(n: usize) -> Vec<usize> {
    (1..=n).filter(|d| n.is_multiple_of(*d)).collect()
}

/// Zero padding of one axis so that a kernel spanning `span` values fits `n` inputs.
fn pads(rng: &mut Rng, n: usize, span: usize) -> [usize; 2] {
    loop {
        let p = [rng.range(0, 2) as usize, rng.range(0, 2) as usize];
        if n + p[0] + p[1] >= span {
            return p;
        }
    }
}

/// A random sum of products' accumulator list, bias and weights for `co` outputs.
fn conv_constants(
    rng: &mut Rng,
    x: Format,
    shape: Vec<usize>,
) -> (Codes, Option<Codes>, Vec<Format>) {
    let co = shape[0];
    let weight = codes(rng, shape, &[None, Some(0)], (1, 7));
    let bias = rng
        .coin(50)
        .then(|| codes(rng, vec![co], &[None, Some(0)], (1, 12)));
    let acc = accs(rng, co, product_frac(x, &weight));
    (weight, bias, acc)
}

/// A random element-wise activation of `x` (ReLU with a clip, hard tanh, hard sigmoid, a table
/// lookup, or PReLU with one slope per channel or one for all).
fn activation(b: &mut Builder, rng: &mut Rng, x: &T) -> T {
    let f = any_format(rng, (2, 10));
    match rng.range(0, 4) {
        0 => {
            let clip = rng.pick(&[None, Some(1.5), Some(0.0), Some(-1.0), Some(3.3)]);
            b.push("relu", &[x], Op::Relu { clip }, f)
        }
        1 => {
            let bounds: [f64; 10] = [-1e12, -2.0, -1.0, -0.5, 0.0, 0.3, 1.0, 1.5, 3.3, 1e12];
            let (p, q) = (rng.pick(&bounds), rng.pick(&bounds));
            let (min, max) = (p.min(q), p.max(q));
            b.push("htanh", &[x], Op::HardTanh { min, max }, f)
        }
        2 => {
            let alpha = codes(rng, vec![1], &[None], (1, 8));
            let beta = codes(rng, vec![1], &[None], (1, 10));
            b.push("hsig", &[x], Op::HardSigmoid { alpha, beta }, f)
        }
        3 => {
            let n = rng.range(1, 12) as usize;
            let mut table = Codes::new(vec![n], None, vec![f], vec![0; n]);
            let (lo, hi) = f.assignable_range();
            for c in &mut table.codes {
                *c = (rng.code(f) as i128).clamp(lo, hi) as i64;
            }
            let op = Op::Lookup {
                function: "random".into(),
                table,
                shift: rng.range(-3, 5) as i32,
                offset: rng.range(-8, 8),
            };
            b.push("lut", &[x], op, f)
        }
        _ => {
            let c = x.shape[0];
            let n = if rng.coin(50) { 1 } else { c };
            let slope = codes(rng, vec![n], &[None, Some(0)], (1, 8));
            b.push("prelu", &[x], Op::Prelu { slope }, f)
        }
    }
}

/// Two tensors of the same shape combined: `Multiply`, `Add` or `Concat` (with a third operand
/// sometimes).
fn combine(b: &mut Builder, rng: &mut Rng, p: &T, q: &T) -> T {
    let f = any_format(rng, (2, 12));
    match rng.range(0, 2) {
        0 => b.push("mul", &[p, q], Op::Multiply, f),
        1 => b.push("add", &[p, q], Op::Add, f),
        _ if rng.coin(50) => b.push("cat", &[p, q, p], Op::Concat, f),
        _ => b.push("cat", &[p, q], Op::Concat, f),
    }
}

/// A dense layer reading the vector `x`.
fn dense(b: &mut Builder, rng: &mut Rng, x: &T, outputs: usize, out: (i64, i64)) -> T {
    let n = x.shape[0];
    let weight = codes(rng, vec![n, outputs], &[None, Some(1)], (1, 8));
    let bias = rng
        .coin(60)
        .then(|| codes(rng, vec![outputs], &[None, Some(0)], (1, 12)));
    let accumulator = accs(rng, outputs, product_frac(x.f, &weight));
    let op = Op::Dense {
        weight,
        bias,
        accumulator,
        order: AccumulationOrder::default(),
    };
    b.push("fc", &[x], op, any_format(rng, out))
}

/// The end of a map or signal network: global pooling, or flatten (or reshape) and a dense layer.
fn head(b: &mut Builder, rng: &mut Rng, x: &T) {
    match rng.range(0, 4) {
        0 => {
            let reciprocal = codes(rng, vec![1], &[None], (1, 10));
            let f = any_format(rng, (2, 14));
            b.push("gap", &[x], Op::GlobalAvgPool { reciprocal }, f);
        }
        1 => {
            b.push("gmp", &[x], Op::GlobalMaxPool, x.f);
        }
        2 => {
            let n: usize = x.shape.iter().product();
            let flat = b.push("reshape", &[x], Op::Reshape { shape: vec![n] }, x.f);
            let m = rng.range(1, 3) as usize;
            dense(b, rng, &flat, m, (2, 14));
        }
        _ => {
            let flat = b.push("flat", &[x], Op::Flatten, x.f);
            let m = rng.range(1, 3) as usize;
            dense(b, rng, &flat, m, (2, 14));
        }
    }
}

/// A small random model: a dense network, a 2-D convolutional one or a 1-D one, with every
/// operation of the IR somewhere (general convolutions: groups, dilation, rectangular kernels,
/// per-axis strides, asymmetric padding; BatchNorm, residual adds, products, concatenation,
/// every activation, windowed and global pooling, shortcuts, reshapes).
pub fn random_model(rng: &mut Rng) -> Model {
    match rng.range(0, 9) {
        0..=2 => dense_model(rng),
        3..=6 => image_model(rng),
        _ => signal_model(rng),
    }
}

fn start(rng: &mut Rng, input_shape: Vec<usize>) -> (Builder, T) {
    let mut b = Builder {
        input_shape,
        layers: Vec::new(),
    };
    let q = b.push("q", &[], Op::Quantize, any_format(rng, (2, 10)));
    (b, q)
}

fn finish(b: Builder) -> Model {
    let model = b.model();
    model.validate().expect("generated models are valid");
    model
}

fn dense_model(rng: &mut Rng) -> Model {
    let n = rng.range(1, 12) as usize;
    let (mut b, q) = start(rng, vec![n]);
    let m = rng.range(1, 5) as usize;
    let d1 = dense(&mut b, rng, &q, m, (2, 12));
    let mut last = activation(&mut b, rng, &d1);
    if rng.coin(40) {
        last = combine(&mut b, rng, &last, &d1);
    }
    if rng.coin(25) {
        // A vector reshaped into a map and back.
        let len = last.shape[0];
        let map = b.push(
            "reshape",
            &[&last],
            Op::Reshape {
                shape: vec![len, 1],
            },
            last.f,
        );
        last = b.push("reshape", &[&map], Op::Reshape { shape: vec![len] }, last.f);
    }
    let k = rng.range(1, 3) as usize;
    dense(&mut b, rng, &last, k, (2, 14));
    finish(b)
}

fn image_model(rng: &mut Rng) -> Model {
    let c = rng.range(1, 4) as usize;
    let (h, w) = (rng.range(3, 7) as usize, rng.range(3, 7) as usize);
    let (mut b, q) = start(rng, vec![c, h, w]);
    let groups = rng.pick(&divisors(c));
    let co = groups * rng.range(1, if groups > 2 { 1 } else { 2 }) as usize;
    let (kh, kw) = (rng.range(1, 3) as usize, rng.range(1, 3) as usize);
    let dilation = [rng.range(1, 2) as usize, rng.range(1, 2) as usize];
    let [pt, pb] = pads(rng, h, dilation[0] * (kh - 1) + 1);
    let [pl, pr] = pads(rng, w, dilation[1] * (kw - 1) + 1);
    let padding = if pt == pb && pb == pl && pl == pr && rng.coin(50) {
        Padding::All(pt)
    } else {
        Padding::Sides([pt, pb, pl, pr])
    };
    let stride = match rng.range(0, 2) {
        0 => Pair::Both(1),
        1 => Pair::Both(2),
        _ => Pair::Each([rng.range(1, 2) as usize, rng.range(1, 2) as usize]),
    };
    let (weight, bias, accumulator) = conv_constants(rng, q.f, vec![co, c / groups, kh, kw]);
    let conv = Op::Conv2d {
        weight,
        bias,
        stride,
        padding,
        dilation: Pair::Each(dilation),
        groups,
        accumulator,
        order: AccumulationOrder::default(),
    };
    let c1 = b.push("conv", &[&q], conv, any_format(rng, (2, 12)));
    let scale = codes(rng, vec![co], &[None, Some(0)], (1, 8));
    let shift = codes(rng, vec![co], &[None, Some(0)], (1, 10));
    let bn = b.push(
        "bn",
        &[&c1],
        Op::BatchNorm { scale, shift },
        any_format(rng, (2, 12)),
    );
    let add = b.push("add", &[&bn, &c1], Op::Add, any_format(rng, (2, 12)));
    let mut last = b.push(
        "relu",
        &[&add],
        Op::Relu { clip: None },
        any_format(rng, (2, 10)),
    );
    if rng.coin(50) {
        last = activation(&mut b, rng, &add);
    }
    // The binarized-network element-wise layers: PReLU, then the sign.
    if rng.coin(25) {
        let slope = codes(rng, vec![co], &[None, Some(0)], (1, 8));
        last = b.push(
            "prelu",
            &[&add],
            Op::Prelu { slope },
            any_format(rng, (2, 12)),
        );
        if rng.coin(50) {
            last = b.push("sign", &[&last], Op::Sign, any_format(rng, (1, 4)));
        }
    }
    if rng.coin(40) {
        last = combine(&mut b, rng, &last, &bn);
    }
    let (oh, ow) = (last.shape[1], last.shape[2]);
    if rng.coin(60) {
        let kernel = [
            rng.range(1, oh.min(3) as i64),
            rng.range(1, ow.min(3) as i64),
        ];
        let kernel = Pair::Each(kernel.map(|k| k as usize));
        let stride = rng
            .coin(50)
            .then(|| Pair::Each([rng.range(1, 2) as usize, rng.range(1, 2) as usize]));
        last = if rng.coin(50) {
            b.push(
                "maxpool",
                &[&last],
                Op::MaxPool2d { kernel, stride },
                last.f,
            )
        } else {
            let reciprocal = codes(rng, vec![1], &[None], (1, 10));
            let op = Op::AvgPool2d {
                kernel,
                stride,
                reciprocal,
            };
            b.push("avgpool", &[&last], op, any_format(rng, (2, 12)))
        };
    }
    if rng.coin(30) {
        let (s, p) = (rng.range(1, 2) as usize, rng.range(0, 2) as usize);
        let op = Op::Shortcut {
            stride: s,
            pad_channels: p,
        };
        last = b.push("short", &[&last], op, last.f);
    }
    if rng.coin(25) {
        // A map as a signal: global pooling over `[c, length]`.
        let [c, h, w] = last.shape[..] else {
            unreachable!()
        };
        let op = Op::Reshape {
            shape: vec![c, h * w],
        };
        last = b.push("reshape", &[&last], op, last.f);
    }
    head(&mut b, rng, &last);
    finish(b)
}

fn signal_model(rng: &mut Rng) -> Model {
    let c = rng.range(1, 4) as usize;
    let l = rng.range(3, 10) as usize;
    let (mut b, q) = start(rng, vec![c, l]);
    let groups = rng.pick(&divisors(c));
    let co = groups * rng.range(1, 2) as usize;
    let k = rng.range(1, 3) as usize;
    let dilation = rng.range(1, 2) as usize;
    let padding = pads(rng, l, dilation * (k - 1) + 1);
    let (weight, bias, accumulator) = conv_constants(rng, q.f, vec![co, c / groups, k]);
    let conv = Op::Conv1d {
        weight,
        bias,
        stride: rng.range(1, 2) as usize,
        padding,
        dilation,
        groups,
        accumulator,
        order: AccumulationOrder::default(),
    };
    let c1 = b.push("conv", &[&q], conv, any_format(rng, (2, 12)));
    let mut last = activation(&mut b, rng, &c1);
    if rng.coin(40) {
        last = combine(&mut b, rng, &last, &c1);
    }
    let ol = last.shape[1];
    if rng.coin(60) {
        let kernel = rng.range(1, ol.min(3) as i64) as usize;
        let stride = rng.coin(50).then(|| rng.range(1, 2) as usize);
        last = if rng.coin(50) {
            b.push(
                "maxpool",
                &[&last],
                Op::MaxPool1d { kernel, stride },
                last.f,
            )
        } else {
            let reciprocal = codes(rng, vec![1], &[None], (1, 10));
            let op = Op::AvgPool1d {
                kernel,
                stride,
                reciprocal,
            };
            b.push("avgpool", &[&last], op, any_format(rng, (2, 12)))
        };
    }
    head(&mut b, rng, &last);
    finish(b)
}

/// Random inputs for a model whose first layer quantizes into `f`: grid points, ties, values
/// beyond the range.
pub fn random_input(rng: &mut Rng, f: Format, n: usize) -> Vec<f32> {
    let lsb = 2f64.powi(-f.frac_bits() as i32);
    (0..n)
        .map(|_| {
            let c = rng.code(f) as f64 + rng.pick(&[0.0, 0.0, 0.5, -0.5, 0.25]);
            let c = if rng.coin(10) { c * 1.5 + 2.0 } else { c };
            (c * lsb) as f32
        })
        .collect()
}

/// `v` assigned to `to`, and whether the rounded value was out of range (compared with the same
/// rounding into a format with room for any integer part).
pub fn cast(v: &Fixed, to: Format, overflows: &mut u64) -> Fixed {
    let out = v.cast(to);
    let room = Format::signed(128, 128 - to.frac_bits() as i32)
        .unwrap()
        .with_quant(to.quant());
    *overflows += (v.cast(room) != out) as u64;
    out
}

/// `ap_fixed<64,32,AP_TRN,AP_SAT>`, the type the IR holds clip bounds in.
fn clip_t() -> Format {
    fmt("ap_fixed<64,32,AP_TRN,AP_SAT>")
}

/// A map's `(channels, height, width)`: a signal `[c, length]` has height 1.
fn map_dims(shape: &[usize]) -> (usize, usize, usize) {
    match shape {
        [c, h, w] => (*c, *h, *w),
        [c, l] => (*c, 1, *l),
        _ => panic!("not a map: {shape:?}"),
    }
}

/// A constant given per channel or once for all channels.
fn per_channel_value(codes: &Codes, c: usize) -> Fixed {
    codes.value(if codes.codes.len() == 1 { 0 } else { c })
}

/// The exact sum of `values` (kept in a format wide enough for it).
fn exact_sum(values: &[Fixed]) -> Fixed {
    let f = values[0].format().frac_bits() as i32;
    let wide = Format::signed(96, 96 - f).unwrap();
    let mut s = values[0].cast(wide);
    for v in &values[1..] {
        s = s.add(v).unwrap().cast(wide);
    }
    s
}

/// The literal interpreter: `(output codes, overflows per layer)`. It follows the IR
/// documentation with `Fixed` arithmetic only, and works out every index itself.
pub fn literal(model: &Model, input: &[f32]) -> (Vec<i64>, Vec<u64>) {
    let mut outs: Vec<(Vec<usize>, Vec<Fixed>)> = Vec::new();
    let mut counts = Vec::new();
    let graph = model.resolve().unwrap();
    let shapes: Vec<Vec<usize>> = graph.nodes().iter().map(|n| n.shape.clone()).collect();
    for (li, l) in model.layers.iter().enumerate() {
        let mut n = 0u64;
        let get = |name: &str| {
            let j = model.layers.iter().position(|m| m.name == name).unwrap();
            &outs[j]
        };
        let to = l.output;
        let out_shape = &shapes[li];
        let vals: Vec<Fixed> = if l.inputs[0] == INPUT {
            input
                .iter()
                .map(|&v| {
                    let out = Fixed::from_f32_hls(v, to);
                    let room = Format::signed(128, 128 - to.frac_bits() as i32)
                        .unwrap()
                        .with_quant(to.quant());
                    n += (Fixed::from_f32_hls(v, room) != out) as u64;
                    out
                })
                .collect()
        } else {
            let (xs, x) = get(&l.inputs[0]);
            // Values per channel (axis 0).
            let inner: usize = xs[1..].iter().product();
            match &l.op {
                Op::Quantize | Op::Flatten | Op::Reshape { .. } => {
                    x.iter().map(|v| cast(v, to, &mut n)).collect()
                }
                Op::Relu { clip } => x
                    .iter()
                    .map(|v| {
                        let mut r = if v.is_negative() {
                            Fixed::zero(v.format())
                        } else {
                            *v
                        };
                        if let Some(c) = clip {
                            let c = Fixed::from_f64(*c, clip_t()).unwrap();
                            if r > c {
                                r = c;
                            }
                        }
                        cast(&r, to, &mut n)
                    })
                    .collect(),
                Op::HardTanh { min, max } => {
                    let lo = Fixed::from_f64(*min, clip_t()).unwrap();
                    let hi = Fixed::from_f64(*max, clip_t()).unwrap();
                    x.iter()
                        .map(|v| {
                            let r = if *v < lo {
                                lo
                            } else if *v > hi {
                                hi
                            } else {
                                *v
                            };
                            cast(&r, to, &mut n)
                        })
                        .collect()
                }
                Op::HardSigmoid { alpha, beta } => {
                    let one = Fixed::from_f64(1.0, clip_t()).unwrap();
                    x.iter()
                        .map(|v| {
                            let t = alpha.value(0).mul(v).unwrap().add(&beta.value(0)).unwrap();
                            let r = if t.is_negative() {
                                Fixed::zero(to)
                            } else if t > one {
                                one
                            } else {
                                t
                            };
                            cast(&r, to, &mut n)
                        })
                        .collect()
                }
                Op::Lookup {
                    table,
                    shift,
                    offset,
                    ..
                } => x
                    .iter()
                    .map(|v| {
                        // The generator keeps shifts small: no overflow here.
                        let c = v.code().unwrap();
                        let s = if *shift >= 0 {
                            c.div_euclid(1 << shift)
                        } else {
                            c * (1 << -shift)
                        };
                        let last = table.codes.len() as i128 - 1;
                        let k = (s - *offset as i128).clamp(0, last);
                        table.value(k as usize)
                    })
                    .collect(),
                Op::Add | Op::Multiply => {
                    let (_, y) = get(&l.inputs[1]);
                    x.iter()
                        .zip(y)
                        .map(|(a, b)| {
                            let v = if matches!(l.op, Op::Add) {
                                a.add(b)
                            } else {
                                a.mul(b)
                            };
                            cast(&v.unwrap(), to, &mut n)
                        })
                        .collect()
                }
                Op::Concat => l
                    .inputs
                    .iter()
                    .flat_map(|name| get(name).1.iter())
                    .map(|v| cast(v, to, &mut n))
                    .collect(),
                Op::BatchNorm { scale, shift } => x
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let c = i / inner;
                        let s = scale.value(c).mul(v).unwrap().add(&shift.value(c)).unwrap();
                        cast(&s, to, &mut n)
                    })
                    .collect(),
                Op::Sign => x
                    .iter()
                    .map(|v| {
                        let one = if v.is_negative() { -1.0 } else { 1.0 };
                        let s = Fixed::from_f64(one, fmt("ap_int<2>")).unwrap();
                        cast(&s, to, &mut n)
                    })
                    .collect(),
                Op::Prelu { slope } => x
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let y = if v.is_negative() {
                            per_channel_value(slope, i / inner).mul(v).unwrap()
                        } else {
                            *v
                        };
                        cast(&y, to, &mut n)
                    })
                    .collect(),
                Op::MaxPool2d { .. }
                | Op::MaxPool1d { .. }
                | Op::AvgPool2d { .. }
                | Op::AvgPool1d { .. } => {
                    let (kernel, stride) = match &l.op {
                        Op::MaxPool2d { kernel, stride } | Op::AvgPool2d { kernel, stride, .. } => {
                            (kernel.get(), stride.unwrap_or(*kernel).get())
                        }
                        Op::MaxPool1d { kernel, stride } | Op::AvgPool1d { kernel, stride, .. } => {
                            ([1, *kernel], [1, stride.unwrap_or(*kernel)])
                        }
                        _ => unreachable!(),
                    };
                    let (c, h, w) = map_dims(xs);
                    let (_, oh, ow) = map_dims(out_shape);
                    let mut out = Vec::new();
                    for ch in 0..c {
                        for y in 0..oh {
                            for xo in 0..ow {
                                let mut window = Vec::new();
                                for ky in 0..kernel[0] {
                                    for kx in 0..kernel[1] {
                                        let (iy, ix) = (y * stride[0] + ky, xo * stride[1] + kx);
                                        window.push(x[(ch * h + iy) * w + ix]);
                                    }
                                }
                                let v = match &l.op {
                                    Op::AvgPool2d { reciprocal, .. }
                                    | Op::AvgPool1d { reciprocal, .. } => {
                                        exact_sum(&window).mul(&reciprocal.value(0)).unwrap()
                                    }
                                    _ => *window.iter().max().unwrap(),
                                };
                                out.push(cast(&v, to, &mut n));
                            }
                        }
                    }
                    out
                }
                Op::GlobalMaxPool => x
                    .chunks(inner)
                    .map(|ch| cast(ch.iter().max().unwrap(), to, &mut n))
                    .collect(),
                Op::GlobalAvgPool { reciprocal } => x
                    .chunks(inner)
                    .map(|ch| {
                        let v = exact_sum(ch).mul(&reciprocal.value(0)).unwrap();
                        cast(&v, to, &mut n)
                    })
                    .collect(),
                Op::Shortcut {
                    stride,
                    pad_channels,
                } => {
                    let (c, h, w) = (xs[0], xs[1], xs[2]);
                    let mut out = Vec::new();
                    for ch in 0..c + pad_channels {
                        for y in (0..h).step_by(*stride) {
                            for xo in (0..w).step_by(*stride) {
                                let v = if ch < c {
                                    x[(ch * h + y) * w + xo]
                                } else {
                                    Fixed::zero(x[0].format())
                                };
                                out.push(cast(&v, to, &mut n));
                            }
                        }
                    }
                    out
                }
                Op::Dense {
                    weight,
                    bias,
                    accumulator,
                    ..
                } => {
                    let (d_in, d_out) = (weight.shape[0], weight.shape[1]);
                    (0..d_out)
                        .map(|o| {
                            let af = accumulator[if accumulator.len() == 1 { 0 } else { o }];
                            let mut acc = match bias {
                                Some(b) => cast(&b.value(o), af, &mut n),
                                None => Fixed::zero(af),
                            };
                            for (i, xv) in x.iter().enumerate().take(d_in) {
                                let p = weight.value(i * d_out + o).mul(xv).unwrap();
                                acc = cast(&acc.add(&p).unwrap(), af, &mut n);
                            }
                            cast(&acc, to, &mut n)
                        })
                        .collect()
                }
                Op::Conv2d {
                    weight,
                    bias,
                    accumulator,
                    groups,
                    ..
                }
                | Op::Conv1d {
                    weight,
                    bias,
                    accumulator,
                    groups,
                    ..
                } => {
                    // [kh, kw], [sy, sx], [dy, dx], [top, bottom, left, right].
                    let (kernel, stride, dilation, pad) = match &l.op {
                        Op::Conv2d {
                            stride,
                            padding,
                            dilation,
                            ..
                        } => (
                            [weight.shape[2], weight.shape[3]],
                            stride.get(),
                            dilation.get(),
                            padding.get(),
                        ),
                        Op::Conv1d {
                            stride,
                            padding,
                            dilation,
                            ..
                        } => (
                            [1, weight.shape[2]],
                            [1, *stride],
                            [1, *dilation],
                            [0, 0, padding[0], padding[1]],
                        ),
                        _ => unreachable!(),
                    };
                    let (co, cg) = (weight.shape[0], weight.shape[1]);
                    let (_, h, w) = map_dims(xs);
                    let (_, oh, ow) = map_dims(out_shape);
                    let (h, w) = (h as isize, w as isize);
                    let mut out = Vec::new();
                    for o in 0..co {
                        let af = accumulator[if accumulator.len() == 1 { 0 } else { o }];
                        let group = o / (co / groups);
                        for y in 0..oh {
                            for xo in 0..ow {
                                let mut acc = match bias {
                                    Some(b) => cast(&b.value(o), af, &mut n),
                                    None => Fixed::zero(af),
                                };
                                for c in 0..cg {
                                    for ky in 0..kernel[0] {
                                        for kx in 0..kernel[1] {
                                            let iy = (y * stride[0] + ky * dilation[0]) as isize
                                                - pad[0] as isize;
                                            let ix = (xo * stride[1] + kx * dilation[1]) as isize
                                                - pad[2] as isize;
                                            if iy < 0 || ix < 0 || iy >= h || ix >= w {
                                                continue;
                                            }
                                            let ci = (group * cg + c) as isize;
                                            let xv = x[((ci * h + iy) * w + ix) as usize];
                                            let wi =
                                                ((o * cg + c) * kernel[0] + ky) * kernel[1] + kx;
                                            let p = weight.value(wi).mul(&xv).unwrap();
                                            acc = cast(&acc.add(&p).unwrap(), af, &mut n);
                                        }
                                    }
                                }
                                out.push(cast(&acc, to, &mut n));
                            }
                        }
                    }
                    out
                }
            }
        };
        counts.push(n);
        outs.push((shapes[li].clone(), vals));
    }
    let last = &outs.last().unwrap().1;
    (
        last.iter().map(|v| v.code().unwrap() as i64).collect(),
        counts,
    )
}
