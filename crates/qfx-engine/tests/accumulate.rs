//! The fast integer accumulation equals the obviously correct one, `acc = cast(acc + w·x)` with
//! qfx-fixed's header-exact arithmetic at every step, including accumulators narrow enough to
//! overflow (wrapping and saturating), and the engine counts those overflows.

use qfx_fixed::{Fixed, Format};
use qfx_ir::{AccumulationOrder, Codes, Model, Op};
use qfx_testkit::{fmt, one_layer};

fn dense(acc: &str, weights: Vec<i64>, bias: i64) -> Model {
    let n = weights.len();
    let op = Op::Dense {
        weight: Codes::new(vec![n, 1], None, vec![fmt("ap_fixed<6,1>")], weights),
        bias: Some(Codes::new(
            vec![1],
            None,
            vec![fmt("ap_fixed<8,4>")],
            vec![bias],
        )),
        accumulator: vec![fmt(acc)],
        order: AccumulationOrder::default(),
    };
    one_layer(&[n], fmt("ap_fixed<8,3>"), op, fmt(acc))
}

#[test]
fn fast_accumulation_equals_stepwise_fixed_point() {
    let mut state = 12345u64;
    let mut next = |m: i64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % (2 * m as u64 + 1)) as i64 - m
    };
    // 10 fractional bits = 5 (input) + 5 (weight): products land exactly on the grid.
    for acc in [
        "ap_fixed<12,2>",
        "ap_fixed<12,2,AP_TRN,AP_SAT>",
        "ap_fixed<12,2,AP_TRN,AP_SAT_SYM>",
        "ap_fixed<12,2,AP_TRN,AP_SAT_ZERO>",
        "ap_fixed<20,10>",
        "ap_fixed<12,2,AP_TRN,AP_WRAP,1>",
        "ap_fixed<10,2,AP_RND,AP_SAT>",
    ] {
        let mut overflow_seen = false;
        for _ in 0..50 {
            let n = 24;
            let weights: Vec<i64> = (0..n).map(|_| next(31)).collect();
            let bias = next(127);
            let input: Vec<f32> = (0..n).map(|_| next(127) as f32 / 32.0).collect();
            let model = dense(acc, weights.clone(), bias);
            let out = qfx_engine::run(&model, &input).unwrap();

            let af = fmt(acc);
            // The same binary point and rounding with room for any integer part.
            let room = Format::signed(40, 40 - af.frac_bits() as i32)
                .unwrap()
                .with_quant(af.quant());
            let unbounded = |v: &Fixed| v.cast(room);
            let b = Fixed::from_code(bias as i128, fmt("ap_fixed<8,4>")).unwrap();
            let mut a = b.cast(af);
            let mut steps_overflowed = (a != unbounded(&b)) as u64; // the bias assignment counts too
            for (w, x) in weights.iter().zip(&input) {
                let w = Fixed::from_code(*w as i128, fmt("ap_fixed<6,1>")).unwrap();
                let x = Fixed::from_f32(*x, fmt("ap_fixed<8,3>")).unwrap();
                let exact = a.add(&w.mul(&x).unwrap()).unwrap();
                a = exact.cast(af);
                steps_overflowed += (a != unbounded(&exact)) as u64;
            }
            assert_eq!(out.output.codes[0] as i128, a.code().unwrap(), "{acc}");
            assert_eq!(out.overflows[1], steps_overflowed, "{acc}: overflow count");
            overflow_seen |= steps_overflowed > 0;
        }
        if acc != "ap_fixed<20,10>" {
            assert!(overflow_seen, "{acc}: the test should exercise overflow");
        }
    }
}
