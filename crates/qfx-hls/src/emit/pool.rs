//! Pooling and other layers that reshape maps: max and average pooling (windowed, 1-D and
//! global: one window over the whole map, a signal being a map of height 1), the ResNet option-A
//! shortcut.

use qfx_ir::{window_sum_format, Op};

use super::gen::{Gen, Site};
use crate::HlsError;

pub(super) fn emit(gen: &mut Gen, site: &Site) -> Result<(), HlsError> {
    let x = site.x().buffer.clone();
    let (id, i) = (site.id, site.index());
    if let Some(win) = site.node.window() {
        let cfg = site
            .config("", "")
            .ty("x_t", &site.x().type_name, "input")
            .ty("y_t", &site.y.type_name, "output")
            .int("channels", win.channels, "channels")
            .int("in_height", win.h, "input height (1 for a signal)")
            .int("in_width", win.w, "input width (a signal's length)")
            .int("kernel_height", win.kernel[0], "window height")
            .int("kernel_width", win.kernel[1], "window width")
            .int("stride_height", win.stride[0], "vertical stride")
            .int("stride_width", win.stride[1], "horizontal stride")
            .int("out_height", win.oh, "output height")
            .int("out_width", win.ow, "output width");
        return match site.node.op() {
            Op::MaxPool2d { .. } | Op::MaxPool1d { .. } | Op::GlobalMaxPool => {
                let cfg = gen.config(cfg);
                site.call(gen, "maxpool2d", &cfg, &[&x]);
                Ok(())
            }
            Op::AvgPool2d { reciprocal, .. }
            | Op::AvgPool1d { reciprocal, .. }
            | Op::GlobalAvgPool { reciprocal } => {
                // The exact window sum, as the engine forms it.
                let sum = window_sum_format(site.x_format(), win.size())
                    .map_err(|e| site.unsupported(e))?;
                gen.typedef(&format!("{id}_sum_t"), sum, "exact window sum");
                gen.typedef(&format!("{id}_r_t"), reciprocal.formats[0], "reciprocal");
                let rc = gen.codes(
                    &format!("{id}_r"),
                    reciprocal,
                    &format!("layer {i}: reciprocal"),
                );
                let cfg = cfg
                    .ty("sum_t", &format!("{id}_sum_t"), "exact window sum")
                    .ty("r_t", &format!("{id}_r_t"), "reciprocal")
                    .ty("rc_t", &rc, "integer container of the reciprocal's code");
                let cfg = gen.config(cfg);
                let r = format!("{id}_r[0]");
                site.call(gen, "avgpool2d", &cfg, &[&x, &r]);
                Ok(())
            }
            _ => unreachable!("only pooling layers have a window"),
        };
    }
    match site.node.op() {
        Op::Shortcut {
            stride,
            pad_channels,
        } => {
            let xs = &site.node.x().shape;
            let cfg = site
                .config("", "")
                .ty("x_t", &site.x().type_name, "input")
                .ty("y_t", &site.y.type_name, "output")
                .int("channels", xs[0], "input channels")
                .int("in_height", xs[1], "input height")
                .int("in_width", xs[2], "input width")
                .int("stride", *stride, "subsampling stride")
                .int("pad_channels", *pad_channels, "zero channels appended");
            let cfg = gen.config(cfg);
            site.call(gen, "shortcut", &cfg, &[&x]);
        }
        _ => unreachable!("the plan routes only pooling layers here"),
    }
    Ok(())
}
