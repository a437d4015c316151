//! Element-wise layers: casts (quantize, flatten, reshape), ReLU, hard tanh, hard sigmoid, table
//! lookup, `Add`, `Multiply`, concatenation, sign, and the per-channel affine layers BatchNorm
//! and PReLU (loop templates, or shifts and adds for K-hot constants).

use qfx_fixed::Fixed;
use qfx_ir::{clip_constant, relu_clip, Op};

use super::gen::{group_channels, Gen, Site};
use super::khot;
use crate::HlsError;

pub(super) fn emit(gen: &mut Gen, site: &Site) -> Result<(), HlsError> {
    let node = site.node;
    let n = node.len();
    let x = site.x().buffer.clone();
    match node.op() {
        Op::Quantize | Op::Flatten | Op::Reshape { .. } => {
            let cfg = gen.config(site.config("", "").unary(site, n));
            site.call(gen, "cast", &cfg, &[&x]);
        }
        Op::Sign => {
            let cfg = gen.config(site.config("", "").unary(site, n));
            site.call(gen, "sign", &cfg, &[&x]);
        }
        Op::Relu { clip } => {
            // As the engine: a clip that does not convert (NaN, ±Inf) is no clip.
            let code = relu_clip(*clip).and_then(|c| c.code());
            let cfg = site
                .config("", "")
                .unary(site, n)
                .flag("has_clip", code.is_some(), "clip at clip_code")
                .code(
                    "clip_code",
                    code.unwrap_or(0) as i64,
                    "the clip's code in qfx::clip_t",
                );
            let cfg = gen.config(cfg);
            site.call(gen, "relu", &cfg, &[&x]);
        }
        Op::Add => {
            let b = &site.operands[1].0;
            let cfg = site
                .config("", "")
                .ty("a_t", &site.x().type_name, "first operand")
                .ty("b_t", &b.type_name, "second operand")
                .ty("y_t", &site.y.type_name, "output")
                .int("n", n, "values");
            let cfg = gen.config(cfg);
            site.call(gen, "add", &cfg, &[&x, &b.buffer]);
        }
        Op::Multiply => {
            let b = &site.operands[1];
            // The exact product must have an ap_fixed type (as the engine's does).
            Fixed::zero(site.x_format())
                .mul(&Fixed::zero(b.1))
                .map_err(|e| site.unsupported(e))?;
            let cfg = site
                .config("", "")
                .ty("a_t", &site.x().type_name, "first operand")
                .ty("b_t", &b.0.type_name, "second operand")
                .ty("y_t", &site.y.type_name, "output")
                .int("n", n, "values");
            let cfg = gen.config(cfg);
            site.call(gen, "multiply", &cfg, &[&x, &b.0.buffer]);
        }
        Op::Concat => {
            let mut offset = 0;
            for (k, (t, _)) in site.operands.iter().enumerate() {
                let part = site.node.operands[k].shape.iter().product::<usize>();
                let cfg = site
                    .config(&k.to_string(), &format!(", operand {k}"))
                    .ty("x_t", &t.type_name, "this operand")
                    .ty("y_t", &site.y.type_name, "output")
                    .int("n", part, "values of this operand")
                    .int("out_n", n, "values of the output")
                    .int("offset", offset, "where this operand's values start");
                let cfg = gen.config(cfg);
                site.call(gen, "concat_part", &cfg, &[&t.buffer]);
                offset += part;
            }
        }
        Op::HardTanh { min, max } => {
            let code = |b: f64| {
                let c = clip_constant(b).and_then(|c| c.code());
                c.expect("validated: finite bounds") as i64
            };
            let cfg = site
                .config("", "")
                .unary(site, n)
                .code(
                    "lo_code",
                    code(*min),
                    "the lower bound's code in qfx::clip_t",
                )
                .code(
                    "hi_code",
                    code(*max),
                    "the upper bound's code in qfx::clip_t",
                );
            let cfg = gen.config(cfg);
            site.call(gen, "hard_tanh", &cfg, &[&x]);
        }
        Op::HardSigmoid { alpha, beta } => {
            let (id, i) = (site.id, site.index());
            let (af, bf) = (alpha.formats[0], beta.formats[0]);
            // The exact value of alpha·x + beta (as the engine forms it).
            let t = Fixed::zero(af)
                .mul(&Fixed::zero(site.x_format()))
                .and_then(|p| p.add(&Fixed::zero(bf)))
                .map_err(|e| site.unsupported(e))?;
            gen.typedef(&format!("{id}_a_t"), af, "alpha");
            gen.typedef(&format!("{id}_b_t"), bf, "beta");
            gen.typedef(&format!("{id}_t_t"), t.format(), "alpha * x + beta, exact");
            let ac = gen.codes(&format!("{id}_a"), alpha, &format!("layer {i}: alpha"));
            let bc = gen.codes(&format!("{id}_b"), beta, &format!("layer {i}: beta"));
            let cfg = site
                .config("", "")
                .unary(site, n)
                .ty("a_t", &format!("{id}_a_t"), "alpha")
                .ty("b_t", &format!("{id}_b_t"), "beta")
                .ty("t_t", &format!("{id}_t_t"), "alpha * x + beta, exact")
                .ty("ac_t", &ac, "integer container of alpha's code")
                .ty("bc_t", &bc, "integer container of beta's code");
            let cfg = gen.config(cfg);
            let (a, b) = (format!("{id}_a[0]"), format!("{id}_b[0]"));
            site.call(gen, "hard_sigmoid", &cfg, &[&x, &a, &b]);
        }
        Op::Lookup {
            function,
            table,
            shift,
            offset,
        } => {
            let (id, i) = (site.id, site.index());
            let xf = site.x_format();
            let what = format!(
                "layer {i}: table of {} (output codes)",
                crate::names::quoted(function)
            );
            let tc = gen.codes(&format!("{id}_table"), table, &what);
            let (right, left) = (shift.max(&0).unsigned_abs(), shift.min(&0).unsigned_abs());
            // The code (one more bit when unsigned), shifted left, minus a 64-bit offset.
            let index_width = (xf.width() + 1 + left).max(64) + 1;
            let cfg = site
                .config("", "")
                .unary(site, n)
                .ty("tc_t", &tc, "integer container of the table's codes")
                .int("entries", table.codes.len(), "table entries")
                .flag("x_signed", xf.is_signed(), "input codes are signed")
                .int(
                    "shift_right",
                    right as usize,
                    "right shift of the input code",
                )
                .int("shift_left", left as usize, "left shift of the input code")
                .code("offset", *offset, "subtracted from the shifted code")
                .int(
                    "index_width",
                    index_width as usize,
                    "bits of the index arithmetic",
                );
            let cfg = gen.config(cfg);
            let table = format!("{id}_table");
            site.call(gen, "lookup", &cfg, &[&x, &table]);
        }
        Op::BatchNorm { scale, shift } => channel_affine(gen, site, scale, Some(shift))?,
        Op::Prelu { slope } => channel_affine(gen, site, slope, None)?,
        _ => unreachable!("the plan routes only element-wise layers here"),
    }
    Ok(())
}

/// BatchNorm `y = scale·x + shift` (with `shift`) or PReLU `y = x ≥ 0 ? x : slope·x`, one call
/// per group of channels that share their constants' types.
fn channel_affine(
    gen: &mut Gen,
    site: &Site,
    scale: &qfx_ir::Codes,
    shift: Option<&qfx_ir::Codes>,
) -> Result<(), HlsError> {
    let c = site.node.x().shape[0];
    let hw = site.node.len() / c;
    if let Some(k) = scale.khot.filter(|_| khot::fits(site, scale)) {
        return khot::channel_scale(gen, site, (c, hw), scale, shift, k);
    }
    let (id, i) = (site.id, site.index());
    let (template, what) = match shift {
        Some(_) => ("batchnorm", "BatchNorm scale"),
        None => ("prelu", "PReLU slope"),
    };
    let sc = gen.codes(&format!("{id}_s"), scale, &format!("layer {i}: {what}"));
    let tc = shift.map(|h| {
        gen.codes(
            &format!("{id}_h"),
            h,
            &format!("layer {i}: BatchNorm shift"),
        )
    });
    let groups = group_channels(c, |ch| {
        (
            scale.format_of(scale.channel_index(ch)),
            shift.map(|h| h.format_of(ch)),
        )
    });
    let single = groups.len() == 1;
    for (g, ((sf, hf), chans)) in groups.iter().enumerate() {
        let mut cfg = site
            .config(&g.to_string(), &format!(", channel group {g}"))
            .ty("x_t", &site.x().type_name, "input")
            .ty("s_t", &format!("{id}_s{g}_t"), "scale")
            .ty("sc_t", &sc, "integer container of the scale codes");
        gen.typedef(
            &format!("{id}_s{g}_t"),
            *sf,
            if shift.is_some() { "scale" } else { "slope" },
        );
        if let (Some(hf), Some(tc)) = (hf, &tc) {
            gen.typedef(&format!("{id}_h{g}_t"), *hf, "shift");
            cfg = cfg.ty("t_t", &format!("{id}_h{g}_t"), "shift").ty(
                "tc_t",
                tc,
                "integer container of the shift codes",
            );
        }
        if shift.is_none() {
            cfg = cfg.flag(
                "one_slope",
                scale.codes.len() == 1,
                "one slope for every channel",
            );
        }
        let cfg = cfg
            .ty("y_t", &site.y.type_name, "output")
            .int("channels", c, "channels")
            .int("per_channel", hw, "values per channel")
            .int("n_channels", chans.len(), "channels in this group")
            .flag(
                "all_channels",
                single,
                "this group is every channel, in order",
            );
        let cfg = gen.config(cfg);
        let ch = gen.channel_arg(id, g, chans, single);
        let x = site.x().buffer.clone();
        let (s, h) = (format!("{id}_s"), format!("{id}_h"));
        let mut args = vec![x.as_str(), s.as_str()];
        if shift.is_some() {
            args.push(&h);
        }
        args.push(&ch);
        site.call(gen, template, &cfg, &args);
    }
    Ok(())
}
