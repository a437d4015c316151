//! Pooling and other layers that reshape maps: max pooling, global average pooling, the ResNet
//! option-A shortcut.

use qfx_ir::{window_sum_format, Op};

use super::gen::{Gen, Site};
use crate::HlsError;

pub(super) fn emit(gen: &mut Gen, site: &Site) -> Result<(), HlsError> {
    let xs = &site.node.x().shape;
    let (c, h, w) = (xs[0], xs[1], xs[2]);
    let x = site.x().buffer.clone();
    let (id, i) = (site.id, site.index());
    let map = |cfg: super::gen::Config| {
        cfg.ty("x_t", &site.x().type_name, "input")
            .ty("y_t", &site.y.type_name, "output")
            .int("channels", c, "input channels")
            .int("in_height", h, "input height")
            .int("in_width", w, "input width")
    };
    match site.node.op() {
        Op::MaxPool2d { kernel } => {
            let cfg = map(site.config("", "")).int("kernel", *kernel, "window and stride");
            let cfg = gen.config(cfg);
            site.call(gen, "maxpool2d", &cfg, &[&x]);
        }
        Op::Shortcut {
            stride,
            pad_channels,
        } => {
            let cfg = map(site.config("", ""))
                .int("stride", *stride, "subsampling stride")
                .int("pad_channels", *pad_channels, "zero channels appended");
            let cfg = gen.config(cfg);
            site.call(gen, "shortcut", &cfg, &[&x]);
        }
        Op::GlobalAvgPool { reciprocal } => {
            let inner = h * w;
            // The exact sum, as the engine forms it.
            let sum = window_sum_format(site.x_format(), inner).map_err(|e| site.unsupported(e))?;
            gen.typedef(&format!("{id}_sum_t"), sum, "exact window sum");
            gen.typedef(&format!("{id}_r_t"), reciprocal.formats[0], "reciprocal");
            let rc = gen.codes(
                &format!("{id}_r"),
                reciprocal,
                &format!("layer {i}: reciprocal"),
            );
            let cfg = site
                .config("", "")
                .ty("x_t", &site.x().type_name, "input")
                .ty("sum_t", &format!("{id}_sum_t"), "exact window sum")
                .ty("r_t", &format!("{id}_r_t"), "reciprocal")
                .ty("y_t", &site.y.type_name, "output")
                .ty("rc_t", &rc, "integer container of the reciprocal's code")
                .int("channels", c, "channels")
                .int("per_channel", inner, "values averaged per channel");
            let cfg = gen.config(cfg);
            let r = format!("{id}_r[0]");
            site.call(gen, "global_avg_pool", &cfg, &[&x, &r]);
        }
        _ => unreachable!("the plan routes only pooling layers here"),
    }
    Ok(())
}
