//! Element-wise layers: casts (quantize, flatten), ReLU, `Add`, sign, and the per-channel affine
//! layers BatchNorm and PReLU (loop templates, or shifts and adds for K-hot constants).

use qfx_ir::{relu_clip, Op};

use super::gen::{group_channels, Gen, Site};
use super::khot;
use crate::HlsError;

pub(super) fn emit(gen: &mut Gen, site: &Site) -> Result<(), HlsError> {
    let node = site.node;
    let n = node.len();
    let x = site.x().buffer.clone();
    match node.op() {
        Op::Quantize | Op::Flatten => {
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
        (scale.format_of(ch), shift.map(|h| h.format_of(ch)))
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
