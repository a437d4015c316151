//! Shared by the engine's integration tests: a seeded generator of small random IR models and
//! a slow, obviously correct interpreter built only on `qfx_fixed::Fixed` (`mul`, `add`, `cast`)
//! that follows the IR documentation literally.
#![allow(dead_code)]

use qfx_fixed::{Fixed, Format, Overflow, Quant};
use qfx_ir::{AccumulationOrder, Codes, Layer, Model, Op, INPUT, IR_VERSION};

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

/// A small random model: a dense network, or a convolutional one with BatchNorm, ReLU,
/// pooling, a residual add and a head.
pub fn random_model(rng: &mut Rng) -> Model {
    let mut layers = Vec::new();
    let qf = any_format(rng, (2, 10));
    layers.push(layer("q", &[INPUT], Op::Quantize, qf));
    let input_shape;
    if rng.coin(40) {
        let n = rng.range(1, 12) as usize;
        input_shape = vec![n];
        let m = rng.range(1, 5) as usize;
        let axis = &[None, Some(1)];
        let weight = codes(rng, vec![n, m], axis, (1, 8));
        let bias = rng
            .coin(70)
            .then(|| codes(rng, vec![m], &[None, Some(0)], (1, 12)));
        let acc = accs(rng, m, product_frac(qf, &weight));
        let out = any_format(rng, (2, 12));
        layers.push(layer(
            "d1",
            &["q"],
            Op::Dense {
                weight,
                bias,
                accumulator: acc,
                order: AccumulationOrder::default(),
            },
            out,
        ));
        let relu = any_format(rng, (2, 10));
        let clip = rng.pick(&[None, Some(1.5), Some(0.0), Some(-1.0), Some(3.3)]);
        layers.push(layer("r1", &["d1"], Op::Relu { clip }, relu));
        let k = rng.range(1, 3) as usize;
        let weight = codes(rng, vec![m, k], &[None, Some(1)], (1, 8));
        let acc = accs(rng, k, product_frac(relu, &weight));
        layers.push(layer(
            "d2",
            &["r1"],
            Op::Dense {
                weight,
                bias: None,
                accumulator: acc,
                order: AccumulationOrder::default(),
            },
            any_format(rng, (2, 14)),
        ));
    } else {
        let c = rng.range(1, 3) as usize;
        let (h, w) = (rng.range(3, 7) as usize, rng.range(3, 7) as usize);
        input_shape = vec![c, h, w];
        let k = rng.range(1, 3) as usize;
        let stride = rng.range(1, 2) as usize;
        let padding = rng.range(0, 2) as usize;
        let co = rng.range(1, 3) as usize;
        let weight = codes(rng, vec![co, c, k, k], &[None, Some(0)], (1, 7));
        let bias = rng.coin(50).then(|| codes(rng, vec![co], &[None], (1, 12)));
        let acc = accs(rng, co, product_frac(qf, &weight));
        let cf = any_format(rng, (2, 12));
        layers.push(layer(
            "c1",
            &["q"],
            Op::Conv2d {
                weight,
                bias,
                stride,
                padding,
                accumulator: acc,
                order: AccumulationOrder::default(),
            },
            cf,
        ));
        let (oh, ow) = (
            (h + 2 * padding - k) / stride + 1,
            (w + 2 * padding - k) / stride + 1,
        );
        let scale = codes(rng, vec![co], &[None, Some(0)], (1, 8));
        let shift = codes(rng, vec![co], &[None, Some(0)], (1, 10));
        let bf = any_format(rng, (2, 12));
        layers.push(layer("bn", &["c1"], Op::BatchNorm { scale, shift }, bf));
        let add = any_format(rng, (2, 12));
        layers.push(layer("add", &["bn", "c1"], Op::Add, add));
        let rf = any_format(rng, (2, 10));
        layers.push(layer("relu", &["add"], Op::Relu { clip: None }, rf));
        let mut last = ("relu", rf, [co, oh, ow]);
        // The binarized-network element-wise layers: PReLU, then the sign.
        if rng.coin(40) {
            let slope = codes(rng, vec![co], &[None, Some(0)], (1, 8));
            let pf = any_format(rng, (2, 12));
            layers.push(layer("prelu", &["add"], Op::Prelu { slope }, pf));
            last = ("prelu", pf, [co, oh, ow]);
            if rng.coin(50) {
                let sf = any_format(rng, (1, 4));
                layers.push(layer("sign", &["prelu"], Op::Sign, sf));
                last = ("sign", sf, [co, oh, ow]);
            }
        }
        if oh >= 2 && ow >= 2 && rng.coin(50) {
            layers.push(layer(
                "pool",
                &[last.0],
                Op::MaxPool2d { kernel: 2 },
                last.1,
            ));
            last = ("pool", last.1, [co, oh / 2, ow / 2]);
        }
        if rng.coin(40) {
            let (s, p) = (rng.range(1, 2) as usize, rng.range(0, 2) as usize);
            layers.push(layer(
                "short",
                &[last.0],
                Op::Shortcut {
                    stride: s,
                    pad_channels: p,
                },
                last.1,
            ));
            let [c0, h0, w0] = last.2;
            last = ("short", last.1, [c0 + p, h0.div_ceil(s), w0.div_ceil(s)]);
        }
        if rng.coin(50) {
            let reciprocal = codes(rng, vec![1], &[None], (1, 10));
            let g = any_format(rng, (2, 14));
            layers.push(layer("gap", &[last.0], Op::GlobalAvgPool { reciprocal }, g));
        } else {
            layers.push(layer("flat", &[last.0], Op::Flatten, last.1));
            let n: usize = last.2.iter().product();
            let m = rng.range(1, 3) as usize;
            let weight = codes(rng, vec![n, m], &[None, Some(1)], (1, 7));
            let bias = rng.coin(50).then(|| codes(rng, vec![m], &[None], (1, 12)));
            let acc = accs(rng, m, product_frac(last.1, &weight));
            layers.push(layer(
                "fc",
                &["flat"],
                Op::Dense {
                    weight,
                    bias,
                    accumulator: acc,
                    order: AccumulationOrder::default(),
                },
                any_format(rng, (2, 14)),
            ));
        }
    }
    let model = Model {
        version: IR_VERSION,
        name: "random".into(),
        input_shape,
        layers,
        preprocess: None,
    };
    model.validate().expect("generated models are valid");
    model
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

/// The literal interpreter: `(output codes, overflows per layer)`.
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
            match &l.op {
                Op::Quantize | Op::Flatten => x.iter().map(|v| cast(v, to, &mut n)).collect(),
                Op::Relu { clip } => x
                    .iter()
                    .map(|v| {
                        let mut r = if v.is_negative() {
                            Fixed::zero(v.format())
                        } else {
                            *v
                        };
                        if let Some(c) = clip {
                            let c =
                                Fixed::from_f64(*c, fmt("ap_fixed<64,32,AP_TRN,AP_SAT>")).unwrap();
                            if r > c {
                                r = c;
                            }
                        }
                        cast(&r, to, &mut n)
                    })
                    .collect(),
                Op::Add => {
                    let (_, y) = get(&l.inputs[1]);
                    x.iter()
                        .zip(y)
                        .map(|(a, b)| cast(&a.add(b).unwrap(), to, &mut n))
                        .collect()
                }
                Op::BatchNorm { scale, shift } => {
                    let inner: usize = xs[1..].iter().product();
                    x.iter()
                        .enumerate()
                        .map(|(i, v)| {
                            let c = i / inner;
                            let s = scale.value(c).mul(v).unwrap().add(&shift.value(c)).unwrap();
                            cast(&s, to, &mut n)
                        })
                        .collect()
                }
                Op::Sign => x
                    .iter()
                    .map(|v| {
                        let one = if v.is_negative() { -1.0 } else { 1.0 };
                        let s = Fixed::from_f64(one, fmt("ap_int<2>")).unwrap();
                        cast(&s, to, &mut n)
                    })
                    .collect(),
                Op::Prelu { slope } => {
                    let inner: usize = xs[1..].iter().product();
                    x.iter()
                        .enumerate()
                        .map(|(i, v)| {
                            let y = if v.is_negative() {
                                slope.value(i / inner).mul(v).unwrap()
                            } else {
                                *v
                            };
                            cast(&y, to, &mut n)
                        })
                        .collect()
                }
                Op::MaxPool2d { kernel } => {
                    let k = *kernel;
                    let (c, h, w) = (xs[0], xs[1], xs[2]);
                    let mut out = Vec::new();
                    for ch in 0..c {
                        for y in 0..h / k {
                            for xo in 0..w / k {
                                let mut m = x[(ch * h + y * k) * w + xo * k];
                                for t in 0..k * k {
                                    m = m.max(x[(ch * h + y * k + t / k) * w + xo * k + t % k]);
                                }
                                out.push(cast(&m, to, &mut n));
                            }
                        }
                    }
                    out
                }
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
                Op::GlobalAvgPool { reciprocal } => {
                    let inner: usize = xs[1..].iter().product();
                    x.chunks(inner)
                        .map(|ch| {
                            // The exact sum, kept in a format wide enough for it.
                            let f = ch[0].format().frac_bits() as i32;
                            let wide = Format::signed(96, 96 - f).unwrap();
                            let mut s = ch[0].cast(wide);
                            for v in &ch[1..] {
                                s = s.add(v).unwrap().cast(wide);
                            }
                            cast(&s.mul(&reciprocal.value(0)).unwrap(), to, &mut n)
                        })
                        .collect()
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
                    stride,
                    padding,
                    accumulator,
                    ..
                } => {
                    let (co, ci, k) = (weight.shape[0], weight.shape[1], weight.shape[2]);
                    let (h, w) = (xs[1] as isize, xs[2] as isize);
                    let (oh, ow) = (shapes[li][1], shapes[li][2]);
                    let mut out = Vec::new();
                    for o in 0..co {
                        let af = accumulator[if accumulator.len() == 1 { 0 } else { o }];
                        for y in 0..oh {
                            for xo in 0..ow {
                                let mut acc = match bias {
                                    Some(b) => cast(&b.value(o), af, &mut n),
                                    None => Fixed::zero(af),
                                };
                                for c in 0..ci {
                                    for ky in 0..k {
                                        for kx in 0..k {
                                            let iy = (y * stride + ky) as isize - *padding as isize;
                                            let ix =
                                                (xo * stride + kx) as isize - *padding as isize;
                                            if iy < 0 || ix < 0 || iy >= h || ix >= w {
                                                continue;
                                            }
                                            let xv = x[((c as isize * h + iy) * w + ix) as usize];
                                            let wv = weight.value(((o * ci + c) * k + ky) * k + kx);
                                            let p = wv.mul(&xv).unwrap();
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
