//! The quantizer's forward values against qfx-fixed's scalar core (bit for bit), and its
//! gradients against central finite differences of the surrogate with frozen rounding
//! residual (in f64), for the fused and the composed implementation.

use burn::tensor::{Device, Tensor, TensorData};
use qfx_fixed::{Fixed, Overflow, Quant, SliceQuantizer, CLIP_ABOVE, CLIP_NONE};
use qfx_train::quant::{quantize, Granularity, QuantPath, QuantSpec};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Values aimed at the grid of `ap_fixed<W, W-F>`: grid points, ties, neighbours, the range
/// ends and beyond, random magnitudes.
fn inputs(rng: &mut Rng, spec: &QuantSpec, frac: i32, n: usize) -> Vec<f32> {
    let lsb = 2f64.powi(-frac);
    let (lo, hi) = spec.code_bounds();
    (0..n)
        .map(|_| {
            let code = lo - 3.0 + rng.uniform() * (hi - lo + 6.0);
            let x = match rng.below(5) {
                0 => code.round() * lsb,
                1 => (code.round() + 0.5) * lsb,
                2 => code * lsb,
                3 => code * lsb * 4.0,
                _ => (code.round() * lsb) as f32 as f64 * (1.0 + 1e-7),
            };
            x as f32
        })
        .collect()
}

fn specs() -> Vec<QuantSpec> {
    let mut out = Vec::new();
    for (i, quant) in Quant::ALL.into_iter().enumerate() {
        for (j, overflow) in [
            Overflow::Sat,
            Overflow::SatSym,
            Overflow::SatZero,
            Overflow::Wrap,
        ]
        .into_iter()
        .enumerate()
        {
            for width in [2u32, 4, 8, 13, 16, 24] {
                out.push(QuantSpec {
                    width,
                    signed: !(i + j + width as usize).is_multiple_of(3),
                    quant,
                    overflow,
                    sat_bits: 0,
                    granularity: Granularity::PerTensor,
                    khot: None,
                    learned_width: None,
                });
            }
        }
    }
    out
}

fn tensor<const D: usize>(v: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Fused and composed forward equal the scalar core's cast bit for bit: 168 formats up to
/// 24 bits, every quantization mode, four overflow modes, about 1.3M values in all.
#[test]
fn forward_matches_the_core_bit_for_bit() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let device = Device::flex();
    let mut compared = 0usize;
    for spec in specs() {
        let frac = rng.below(spec.width as u64 + 8) as i32 - 4;
        let xs = inputs(&mut rng, &spec, frac, 8000);
        let format = spec.format(frac).unwrap();
        let want: Vec<u32> = xs
            .iter()
            .map(|&x| Fixed::from_f32_hls(x, format).to_f32().to_bits())
            .collect();
        for path in [QuantPath::Fused, QuantPath::Composed] {
            let x = tensor(xs.clone(), [80, 100], &device);
            let f = tensor(vec![frac as f32 + 0.3], [1], &device); // rounds to `frac`
            let got = values(quantize(x, f, &spec, path));
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(
                    g.to_bits(),
                    *w,
                    "{path:?} {format} <- {:e}: got {g:e}",
                    xs[i]
                );
            }
            compared += got.len();
        }
    }
    println!("quantizer forward: {compared} values compared with the core, 0 mismatches");
    assert!(compared >= 1_000_000);
}

/// Per element of the surrogate `x̂(x, F)` with the rounding residual frozen at the evaluation
/// point: in range `x + r·2^−F`, clipped `b·2^−F` (bound code `b`); `x` enters a clipped value
/// only for the wrap modes (straight-through).
struct Surrogate {
    residual: Vec<f64>,
    clip: Vec<i8>,
    bound: Vec<f64>,
}

impl Surrogate {
    fn new(
        xs: &[f32],
        frac: &[i32],
        channel_of: &dyn Fn(usize) -> usize,
        spec: &QuantSpec,
    ) -> Surrogate {
        let (lo, hi) = spec.code_bounds();
        let mut s = Surrogate {
            residual: vec![],
            clip: vec![],
            bound: vec![],
        };
        for (i, &x) in xs.iter().enumerate() {
            let fb = frac[channel_of(i)];
            let q = SliceQuantizer::new(spec.format(fb).unwrap());
            let (mut y, mut k) = ([0f32], [0i8]);
            q.quantize(&[x], &mut y, &mut k, 1).unwrap();
            let scale = 2f64.powi(fb);
            s.residual.push(y[0] as f64 * scale - x as f64 * scale);
            s.clip.push(k[0]);
            s.bound.push(match (k[0], spec.overflow) {
                (_, Overflow::SatZero) => 0.0,
                (CLIP_ABOVE, _) => hi,
                _ => lo,
            });
        }
        s
    }

    fn value(&self, i: usize, x: f64, big_f: f64, x0: f64, wraps: bool) -> f64 {
        let inv = (-big_f).exp2();
        if self.clip[i] == CLIP_NONE {
            x + self.residual[i] * inv
        } else if wraps {
            (x - x0) + self.bound[i] * inv
        } else {
            self.bound[i] * inv
        }
    }
}

#[track_caller]
fn close(got: f32, want: f64, what: &str) {
    let tol = 1e-4 * want.abs().max(1e-2);
    assert!(
        (got as f64 - want).abs() <= tol,
        "{what}: autodiff {got}, finite difference {want}"
    );
}

/// Gradients of `L = Σ wᵢ·x̂ᵢ` w.r.t. `x` and `f`, checked against central differences of the
/// surrogate, for both implementations, per tensor and per channel, on a permuted (strided)
/// input.
#[test]
fn gradients_match_finite_differences() {
    let mut rng = Rng(42);
    for overflow in [
        Overflow::Sat,
        Overflow::SatSym,
        Overflow::SatZero,
        Overflow::Wrap,
    ] {
        for (granularity, frac) in [
            (Granularity::PerTensor, vec![5]),
            (Granularity::PerChannel { axis: 1 }, vec![3, 6, 4]),
        ] {
            let spec = QuantSpec {
                width: 6,
                signed: true,
                quant: Quant::RndConv,
                overflow,
                sat_bits: 0,
                granularity,
                khot: None,
                learned_width: None,
            };
            for path in [QuantPath::Fused, QuantPath::Composed] {
                check_gradients(&mut rng, &spec, &frac, path);
            }
        }
    }
}

fn check_gradients(rng: &mut Rng, spec: &QuantSpec, frac: &[i32], path: QuantPath) {
    let device = Device::flex().autodiff();
    // Stored as [3, 4, 5] and permuted to [4, 3, 5]: a strided view whose axis 1 has 3 channels.
    let (c, a, b) = (3usize, 4usize, 5usize);
    let stored: Vec<f32> = (0..a * b * c)
        .map(|i| {
            let fb = frac[(i / (a * b)) % frac.len()];
            let range = 2f64.powi(spec.width as i32 - 1 - fb);
            ((rng.uniform() * 2.6 - 1.3) * range) as f32
        })
        .collect();
    let x = tensor(stored, [c, a, b], &device).require_grad();
    let xp = x.clone().permute([1, 0, 2]);
    let xs = values(xp.clone());
    let channel_of = |i: usize| match spec.granularity {
        Granularity::PerTensor => 0,
        Granularity::PerChannel { .. } => (i / b) % c,
    };
    let f0: Vec<f32> = frac.iter().map(|&fb| fb as f32 + 0.2).collect();
    let f = tensor(f0, [frac.len()], &device).require_grad();
    let w: Vec<f32> = (0..xs.len())
        .map(|_| (rng.uniform() * 2.0 - 1.0) as f32)
        .collect();
    let wt = tensor(w.clone(), [a, c, b], &device);

    let xhat = quantize(xp, f.clone(), spec, path);
    let loss = (xhat * wt).sum();
    let grads = loss.backward();
    // x's gradient comes back in the stored layout [c, a, b]; permute to the view's order.
    let gx = values(x.grad(&grads).unwrap().permute([1, 0, 2]));
    let gf = values(f.grad(&grads).unwrap());

    let s = Surrogate::new(&xs, frac, &channel_of, spec);
    let h = 1e-3;
    let mut want_f = vec![0f64; frac.len()];
    for (i, &xi) in xs.iter().enumerate() {
        let (x0, big_f) = (xi as f64, frac[channel_of(i)] as f64);
        let dx = (s.value(i, x0 + h, big_f, x0, spec.wraps())
            - s.value(i, x0 - h, big_f, x0, spec.wraps()))
            / (2.0 * h);
        close(
            gx[i],
            w[i] as f64 * dx,
            &format!("{path:?} {spec:?} dL/dx[{i}]"),
        );
        let df = (s.value(i, x0, big_f + h, x0, spec.wraps())
            - s.value(i, x0, big_f - h, x0, spec.wraps()))
            / (2.0 * h);
        want_f[channel_of(i)] += w[i] as f64 * df;
    }
    for (ch, want) in want_f.iter().enumerate() {
        close(gf[ch], *want, &format!("{path:?} {spec:?} dL/df[{ch}]"));
    }
}

/// A frozen binary point gets no gradient (fixed-format QAT); a learned one does.
#[test]
fn frozen_binary_points_get_no_gradient() {
    use qfx_train::Quantizer;
    let device = Device::flex().autodiff();
    for learn in [true, false] {
        let mut q = Quantizer::new(QuantSpec::signed(6), 1, 3, &device);
        q.learn = learn;
        let x = tensor(vec![0.3, -2.7, 9.0, 1.1], [4], &device).require_grad();
        let grads = q.forward(x.clone()).sum().backward();
        assert_eq!(q.f.val().grad(&grads).is_some(), learn);
        assert!(x.grad(&grads).is_some());
    }
}

/// Calibration: max-abs keeps the largest value in range; a percentile ignores outliers.
#[test]
fn calibration_max_abs_and_percentile() {
    use qfx_train::{Calibration, Quantizer};
    let device = Device::flex();
    let mut xs: Vec<f32> = (0..1000)
        .map(|i| (i as f32 / 1000.0) * 1.9 - 0.95)
        .collect();
    xs[7] = 100.0; // one outlier
    let x = tensor(xs, [1000], &device);
    let mut q = Quantizer::new(QuantSpec::signed(8), 1, 0, &device);
    q.calibrate(&x, Calibration::MaxAbs);
    assert_eq!(q.int_bits(), vec![8]); // ceil(log2 100) + 1
    q.calibrate(&x, Calibration::Percentile(99.0));
    assert_eq!(q.int_bits(), vec![1]); // ceil(log2 0.93) + 1
                                       // Per channel: each channel gets its own point.
    let spec = QuantSpec {
        granularity: Granularity::PerChannel { axis: 0 },
        ..QuantSpec::signed(8)
    };
    let mut q = Quantizer::new(spec, 2, 0, &device);
    q.calibrate(
        &tensor(vec![0.5, -0.25, 3.0, 7.5], [2, 2], &device),
        Calibration::MaxAbs,
    );
    assert_eq!(q.int_bits(), vec![1, 4]); // 0.5 = 2^-1 itself stays representable
}
