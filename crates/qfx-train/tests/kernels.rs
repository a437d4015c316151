//! qfx's own convolution, max-pooling, BatchNorm and ReLU kernels (`qfx_train::kernels`) against burn's, which
//! stay the reference: forward values and every gradient on seeded random shapes, strides,
//! paddings, dilations, groups and batch sizes; gradients also against finite differences.

use burn::tensor::{Device, Tensor, TensorData};
use qfx_train::kernels::{
    batch_stats_with, channel_affine_with, conv2d_with, max_pool2d_with, ConvShape, Kernels,
};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Largest difference relative to the reference's largest magnitude (at least 1).
fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        worst <= 2e-5 * scale,
        "{what}: differs by {worst} (scale {scale})"
    );
}

/// A tiny deterministic generator for the case table (the tensors come from burn's seeded RNG).
struct Lcg(u64);

impl Lcg {
    /// Normal-ish values (sum of uniforms): burn's generator is shared by the tests running
    /// in parallel, so each test draws its tensors from its own sequence.
    fn tensor<const D: usize>(&mut self, shape: [usize; D], device: &Device) -> Tensor<D> {
        let len = shape.iter().product();
        let data: Vec<f32> = (0..len)
            .map(|_| {
                (0..4)
                    .map(|_| self.below(1000) as f32 / 500.0 - 1.0)
                    .sum::<f32>()
            })
            .collect();
        Tensor::from_data(TensorData::new(data, shape), device)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

#[derive(Debug, Clone, Copy)]
struct ConvCase {
    input: [usize; 4],
    out: usize,
    shape: ConvShape,
    bias: bool,
}

/// Hand-picked geometries (the layers qfx builds) and seeded random ones.
fn conv_cases() -> Vec<ConvCase> {
    let sq = ConvShape::square;
    let mut cases = vec![
        // small CNN, ResNet stem and downsampling, pointwise, depthwise, 1-D
        ConvCase {
            input: [3, 1, 12, 12],
            out: 8,
            shape: sq(3, 1, 1),
            bias: true,
        },
        ConvCase {
            input: [5, 4, 9, 9],
            out: 8,
            shape: sq(3, 2, 1),
            bias: false,
        },
        ConvCase {
            input: [2, 6, 7, 5],
            out: 4,
            shape: sq(1, 1, 0),
            bias: true,
        },
        ConvCase {
            input: [2, 6, 7, 5],
            out: 4,
            shape: sq(1, 2, 0),
            bias: false,
        },
        ConvCase {
            input: [3, 6, 8, 8],
            out: 6,
            shape: ConvShape {
                groups: 6,
                ..sq(3, 1, 1)
            },
            bias: true,
        },
        ConvCase {
            input: [4, 3, 1, 20],
            out: 5,
            shape: ConvShape {
                kernel: [1, 5],
                stride: [1, 2],
                dilation: [1, 2],
                padding: [0, 0, 3, 1],
                groups: 1,
            },
            bias: true,
        },
        // a tap whose every row falls in the padding (stride 1, same width: the shifted-run path)
        ConvCase {
            input: [2, 2, 1, 4],
            out: 3,
            shape: ConvShape {
                kernel: [3, 3],
                stride: [1, 1],
                dilation: [1, 1],
                padding: [2, 0, 1, 1],
                groups: 1,
            },
            bias: false,
        },
        // batch of one (products spread over the pool), and more samples than threads
        ConvCase {
            input: [1, 2, 6, 6],
            out: 3,
            shape: sq(3, 1, 0),
            bias: true,
        },
        ConvCase {
            input: [9, 2, 5, 6],
            out: 3,
            shape: sq(2, 1, 0),
            bias: true,
        },
    ];
    let mut rng = Lcg(17);
    while cases.len() < 40 {
        let groups = [1, 1, 2, 3][rng.below(4)];
        let c = groups * (1 + rng.below(3));
        let out = groups * (1 + rng.below(3));
        let kernel = [1 + rng.below(4), 1 + rng.below(4)];
        let dilation = [1 + rng.below(2), 1 + rng.below(2)];
        let padding = [rng.below(3), rng.below(3), rng.below(3), rng.below(3)];
        let stride = [1 + rng.below(3), 1 + rng.below(3)];
        let hw = [1 + rng.below(9), 1 + rng.below(9)];
        let fits = (0..2)
            .all(|a| hw[a] + padding[2 * a] + padding[2 * a + 1] > dilation[a] * (kernel[a] - 1));
        if !fits {
            continue;
        }
        cases.push(ConvCase {
            input: [1 + rng.below(6), c, hw[0], hw[1]],
            out,
            shape: ConvShape {
                kernel,
                stride,
                dilation,
                padding,
                groups,
            },
            bias: rng.below(2) == 0,
        });
    }
    cases
}

struct ConvRun {
    y: Vec<f32>,
    gx: Vec<f32>,
    gw: Vec<f32>,
    gb: Option<Vec<f32>>,
}

/// Forward, then the gradients of `Σ y ⊙ r` for a fixed random `r`.
fn run_conv(case: &ConvCase, kernels: Kernels, seed: u64) -> ConvRun {
    let device = Device::flex().autodiff();
    let mut rng = Lcg(seed);
    let c = case.input[1] / case.shape.groups;
    let [kh, kw] = case.shape.kernel;
    let x = rng.tensor(case.input, &device).require_grad();
    let w = rng.tensor([case.out, c, kh, kw], &device).require_grad();
    let b = case
        .bias
        .then(|| rng.tensor([case.out], &device).require_grad());
    let y = conv2d_with(x.clone(), w.clone(), b.clone(), case.shape, kernels);
    let r = rng.tensor(y.dims(), &device);
    let grads = (y.clone() * r).sum().backward();
    ConvRun {
        y: values(y),
        gx: values(x.grad(&grads).unwrap()),
        gw: values(w.grad(&grads).unwrap()),
        gb: b.map(|b| values(b.grad(&grads).unwrap())),
    }
}

#[test]
fn convolution_and_its_gradients_equal_burns() {
    for (i, case) in conv_cases().iter().enumerate() {
        let own = run_conv(case, Kernels::Own, i as u64);
        let reference = run_conv(case, Kernels::Burn, i as u64);
        let what = |t: &str| format!("case {i} {case:?}: {t}");
        assert_close(&own.y, &reference.y, &what("output"));
        assert_close(&own.gx, &reference.gx, &what("input gradient"));
        assert_close(&own.gw, &reference.gw, &what("weight gradient"));
        assert_eq!(own.gb.is_some(), reference.gb.is_some());
        if let (Some(a), Some(b)) = (&own.gb, &reference.gb) {
            assert_close(a, b, &what("bias gradient"));
        }
    }
}

/// `Σ conv(x, w)·r` in f64 from the definition, for finite differences.
fn conv_loss(case: &ConvCase, x: &[f32], w: &[f32], r: &[f32]) -> f64 {
    let [n, c, h, wd] = case.input;
    let s = case.shape;
    let (g, o) = (s.groups, case.out);
    let (cg, og) = (c / g, o / g);
    let [kh, kw] = s.kernel;
    let oh = (h + s.padding[0] + s.padding[1] - s.dilation[0] * (kh - 1) - 1) / s.stride[0] + 1;
    let ow = (wd + s.padding[2] + s.padding[3] - s.dilation[1] * (kw - 1) - 1) / s.stride[1] + 1;
    let mut total = 0f64;
    for b in 0..n {
        for oc in 0..o {
            let grp = oc / og;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0f64;
                    for ic in 0..cg {
                        for i in 0..kh {
                            for j in 0..kw {
                                let iy = (oy * s.stride[0] + i * s.dilation[0]) as isize
                                    - s.padding[0] as isize;
                                let ix = (ox * s.stride[1] + j * s.dilation[1]) as isize
                                    - s.padding[2] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let xc = grp * cg + ic;
                                let xv = x[((b * c + xc) * h + iy as usize) * wd + ix as usize];
                                let wv = w[((oc * cg + ic) * kh + i) * kw + j];
                                acc += xv as f64 * wv as f64;
                            }
                        }
                    }
                    total += acc * r[((b * o + oc) * oh + oy) * ow + ox] as f64;
                }
            }
        }
    }
    total
}

#[test]
fn convolution_gradients_match_finite_differences() {
    let device = Device::flex().autodiff();
    for (i, case) in conv_cases().iter().take(12).enumerate() {
        let case = ConvCase {
            bias: false,
            ..*case
        };
        let mut rng = Lcg(100 + i as u64);
        let c = case.input[1] / case.shape.groups;
        let [kh, kw] = case.shape.kernel;
        let x = rng.tensor(case.input, &device).require_grad();
        let w = rng.tensor([case.out, c, kh, kw], &device).require_grad();
        let y = conv2d_with(x.clone(), w.clone(), None, case.shape, Kernels::Own);
        let r = rng.tensor(y.dims(), &device);
        let grads = (y * r.clone()).sum().backward();
        let (gx, gw) = (
            values(x.grad(&grads).unwrap()),
            values(w.grad(&grads).unwrap()),
        );
        let (xs, ws, rs) = (values(x), values(w), values(r));
        // The loss is linear in each of x and w: a central difference is exact up to rounding.
        let eps = 0.5f32;
        let mut rng = Lcg(i as u64);
        for _ in 0..6 {
            let k = rng.below(xs.len());
            let (mut up, mut down) = (xs.clone(), xs.clone());
            up[k] += eps;
            down[k] -= eps;
            let fd = (conv_loss(&case, &up, &ws, &rs) - conv_loss(&case, &down, &ws, &rs))
                / (2.0 * eps as f64);
            assert!(
                (fd - gx[k] as f64).abs() < 1e-3 * (1.0 + fd.abs()),
                "case {i} x[{k}]: {fd} vs {}",
                gx[k]
            );
            let k = rng.below(ws.len());
            let (mut up, mut down) = (ws.clone(), ws.clone());
            up[k] += eps;
            down[k] -= eps;
            let fd = (conv_loss(&case, &xs, &up, &rs) - conv_loss(&case, &xs, &down, &rs))
                / (2.0 * eps as f64);
            assert!(
                (fd - gw[k] as f64).abs() < 1e-3 * (1.0 + fd.abs()),
                "case {i} w[{k}]: {fd} vs {}",
                gw[k]
            );
        }
    }
}

fn pool_cases() -> Vec<([usize; 4], [usize; 2], [usize; 2])> {
    let mut cases = vec![
        ([4, 8, 28, 28], [2, 2], [2, 2]),
        ([3, 2, 7, 9], [3, 3], [2, 2]), // overlapping windows, odd sizes
        ([2, 3, 1, 17], [1, 4], [1, 3]), // 1-D
        ([1, 1, 5, 5], [5, 5], [1, 1]),
        ([2, 2, 6, 6], [2, 3], [3, 1]),
    ];
    let mut rng = Lcg(3);
    while cases.len() < 30 {
        let kernel = [1 + rng.below(4), 1 + rng.below(4)];
        let hw = [kernel[0] + rng.below(8), kernel[1] + rng.below(8)];
        let stride = [1 + rng.below(4), 1 + rng.below(4)];
        cases.push((
            [1 + rng.below(5), 1 + rng.below(4), hw[0], hw[1]],
            kernel,
            stride,
        ));
    }
    cases
}

fn run_pool(
    x: &[f32],
    input: [usize; 4],
    k: [usize; 2],
    s: [usize; 2],
    kernels: Kernels,
) -> (Vec<f32>, Vec<f32>) {
    let device = Device::flex().autodiff();
    let x = Tensor::<4>::from_data(TensorData::new(x.to_vec(), input), &device).require_grad();
    let y = max_pool2d_with(x.clone(), k, s, kernels);
    let r = Lcg(1).tensor(y.dims(), &device);
    let grads = (y.clone() * r).sum().backward();
    (values(y), values(x.grad(&grads).unwrap()))
}

#[test]
fn max_pooling_and_its_gradient_equal_burns_ties_included() {
    let mut rng = Lcg(9);
    for (input, k, s) in pool_cases() {
        let len: usize = input.iter().product();
        // Few distinct values, as on a fixed-point grid: many ties decide where gradients go.
        let x: Vec<f32> = (0..len).map(|_| rng.below(5) as f32 * 0.25 - 0.5).collect();
        let (y, gx) = run_pool(&x, input, k, s, Kernels::Own);
        let (y_ref, gx_ref) = run_pool(&x, input, k, s, Kernels::Burn);
        assert_eq!(y, y_ref, "{input:?} {k:?} {s:?}: output");
        assert_close(&gx, &gx_ref, &format!("{input:?} {k:?} {s:?}: gradient"));
    }
}

#[test]
fn max_pooling_gradient_matches_finite_differences() {
    // Distinct values one apart: a nudge of 0.25 never changes which element wins.
    let (input, k, s) = ([2, 2, 7, 7], [3, 3], [2, 2]);
    let len: usize = input.iter().product();
    let x: Vec<f32> = (0..len).map(|i| ((i * 37) % len) as f32).collect();
    let device = Device::flex().autodiff();
    let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), input), &device).require_grad();
    let y = max_pool2d_with(xt.clone(), k, s, Kernels::Own);
    let r = Lcg(2).tensor(y.dims(), &device);
    let grads = (y * r.clone()).sum().backward();
    let gx = values(xt.grad(&grads).unwrap());
    let rs = values(r);
    // The loss in f64 on the host, so the difference quotient does not lose the f32 sum's bits.
    let loss = |x: &[f32]| {
        let t = Tensor::<4>::from_data(TensorData::new(x.to_vec(), input), &device);
        let y = values(max_pool2d_with(t, k, s, Kernels::Own));
        y.iter()
            .zip(&rs)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum::<f64>()
    };
    for i in 0..len {
        let (mut up, mut down) = (x.clone(), x.clone());
        up[i] += 0.25;
        down[i] -= 0.25;
        let fd = (loss(&up) - loss(&down)) / 0.5;
        assert!(
            (fd - gx[i] as f64).abs() < 1e-4 * (1.0 + fd.abs()),
            "x[{i}]: {fd} vs {}",
            gx[i]
        );
    }
}

#[test]
fn without_autodiff_the_kernels_give_the_same_values() {
    let device = Device::flex();
    let mut rng = Lcg(4);
    let x = rng.tensor([3, 4, 10, 10], &device);
    let w = rng.tensor([5, 4, 3, 3], &device);
    let b = rng.tensor([5], &device);
    let shape = ConvShape::square(3, 1, 1);
    let own = values(conv2d_with(
        x.clone(),
        w.clone(),
        Some(b.clone()),
        shape,
        Kernels::Own,
    ));
    let reference = values(conv2d_with(x.clone(), w, Some(b), shape, Kernels::Burn));
    assert_close(&own, &reference, "inference convolution");
    assert_eq!(
        values(max_pool2d_with(x.clone(), [2, 2], [2, 2], Kernels::Own)),
        values(max_pool2d_with(x, [2, 2], [2, 2], Kernels::Burn))
    );
}

#[test]
fn batch_statistics_and_their_gradient_equal_the_composed_ones() {
    for (i, shape) in [[8, 3, 5, 5], [1, 4, 1, 7], [5, 16, 6, 6], [2, 1, 1, 1]]
        .into_iter()
        .enumerate()
    {
        let run = |kernels| {
            let device = Device::flex().autodiff();
            let mut rng = Lcg(50 + i as u64);
            // An offset mean, as activations have: the variance must not lose it.
            let x = (rng.tensor(shape, &device) + 3.0).require_grad();
            let (mean, var) = batch_stats_with(x.clone(), kernels);
            let (rm, rv) = (
                rng.tensor([shape[1]], &device),
                rng.tensor([shape[1]], &device),
            );
            let grads = (mean.clone() * rm + var.clone() * rv).sum().backward();
            (values(mean), values(var), values(x.grad(&grads).unwrap()))
        };
        let (m, v, g) = run(Kernels::Own);
        let (rm, rv, rg) = run(Kernels::Burn);
        assert_close(&m, &rm, &format!("{shape:?}: means"));
        assert_close(&v, &rv, &format!("{shape:?}: variances"));
        assert_close(&g, &rg, &format!("{shape:?}: input gradient"));
    }
}

#[test]
fn channel_affine_and_its_gradients_equal_the_composed_ones() {
    for (i, shape) in [[8, 3, 5, 5], [1, 4, 1, 7], [5, 16, 6, 6]]
        .into_iter()
        .enumerate()
    {
        let run = |kernels| {
            let device = Device::flex().autodiff();
            let mut rng = Lcg(70 + i as u64);
            let x = rng.tensor(shape, &device).require_grad();
            let s = rng.tensor([shape[1]], &device).require_grad();
            let t = rng.tensor([shape[1]], &device).require_grad();
            let y = channel_affine_with(x.clone(), s.clone(), t.clone(), kernels);
            let r = rng.tensor(shape, &device);
            let grads = (y.clone() * r).sum().backward();
            let grad = |v: Tensor<1>| values(v.grad(&grads).unwrap());
            let gx = values(x.grad(&grads).unwrap());
            (values(y), gx, grad(s), grad(t))
        };
        let (own, reference) = (run(Kernels::Own), run(Kernels::Burn));
        assert_close(&own.0, &reference.0, &format!("{shape:?}: output"));
        assert_close(&own.1, &reference.1, &format!("{shape:?}: input gradient"));
        assert_close(&own.2, &reference.2, &format!("{shape:?}: scale gradient"));
        assert_close(&own.3, &reference.3, &format!("{shape:?}: shift gradient"));
    }
}

#[test]
fn relu_and_its_gradient_equal_burns_at_zero_too() {
    // One size below the kernel's parallel chunk, others across several chunks with a ragged
    // end; every fourth element exactly zero (where the gradient is 0).
    for (i, shape) in [[1, 1, 1, 7], [3, 5, 37, 41], [2, 3, 64, 64]]
        .into_iter()
        .enumerate()
    {
        let len: usize = shape.iter().product();
        let run = |kernels| {
            let device = Device::flex().autodiff();
            let mut rng = Lcg(90 + i as u64);
            let mut draw = |zero_every: usize| -> Vec<f32> {
                (0..len)
                    .map(|k| match k % zero_every {
                        0 => 0.0,
                        _ => rng.below(1000) as f32 / 500.0 - 1.0,
                    })
                    .collect()
            };
            let (data, r) = (draw(4), draw(len + 1));
            let tensor = |v| Tensor::<4>::from_data(TensorData::new(v, shape), &device);
            let x = tensor(data).require_grad();
            let y = qfx_train::kernels::relu_with(x.clone(), kernels);
            let grads = (y.clone() * tensor(r)).sum().backward();
            (values(y), values(x.grad(&grads).unwrap()))
        };
        let (own, reference) = (run(Kernels::Own), run(Kernels::Burn));
        assert_eq!(own.0, reference.0, "{shape:?}: output");
        assert_eq!(own.1, reference.1, "{shape:?}: gradient");
    }
    // A NaN stays NaN: a diverged activation must not turn into a healthy-looking 0.
    let x = Tensor::<1>::from_data([f32::NAN, -1.0, 2.0], &Device::flex());
    let y = values(qfx_train::kernels::relu(x));
    assert!(y[0].is_nan() && y[1..] == [0.0, 2.0], "{y:?}");
}
