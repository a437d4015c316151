//! Sums of products (`Dense`, `Conv2d`, `Conv1d`): the loop templates, one call per group of
//! output channels that share their weight, bias and accumulator types (a 1-D convolution is the
//! `conv2d` template with height 1); K-hot weights go to [`super::khot`] as shifts and adds.

use qfx_fixed::Format;
use qfx_ir::{Codes, Mac, MacGeometry};

use super::gen::{group_channels, Config, Gen, Site};
use super::khot;
use crate::HlsError;

pub(super) fn emit(gen: &mut Gen, site: &Site) -> Result<(), HlsError> {
    let mac = site
        .node
        .mac()
        .expect("the plan routes only sums of products here");
    match mac.order {
        qfx_ir::AccumulationOrder::BiasThenInputChannelMajor => {}
    }
    if let Some(k) = mac.weight.khot.filter(|_| khot::fits(site, mac.weight)) {
        return khot::mac(gen, site, &mac, k);
    }
    let (id, i) = (site.id, site.index());
    let (wc, bc) = constants(gen, id, i, &mac);
    let groups = group_channels(mac.outputs(), |o| {
        (
            mac.weight_format(o),
            bias_format(&mac, o),
            mac.accumulator(o),
        )
    });
    let single = groups.len() == 1;
    for (g, ((wf, bf, af), chans)) in groups.iter().enumerate() {
        typedefs_wba(gen, id, g, *wf, *bf, *af);
        let cfg = site
            .config(&g.to_string(), &format!(", output channel group {g}"))
            .ty("x_t", &site.x().type_name, "input")
            .ty("w_t", &format!("{id}_w{g}_t"), "weights")
            .ty("b_t", &format!("{id}_b{g}_t"), "bias")
            .ty("acc_t", &format!("{id}_acc{g}_t"), "accumulator")
            .ty("y_t", &site.y.type_name, "output")
            .ty("wc_t", &wc, "integer container of the weight codes")
            .ty("bc_t", &bc, "integer container of the bias codes");
        let (template, cfg) = match mac.geometry {
            MacGeometry::Dense { inputs, outputs } => (
                "dense",
                cfg.int("n_in", inputs, "input features")
                    .int("n_out", outputs, "outputs"),
            ),
            MacGeometry::Conv(_) => ("conv2d", conv_geometry(cfg, &mac)),
        };
        let cfg = cfg
            .int("n_channels", chans.len(), "outputs in this group")
            .flag(
                "all_channels",
                single,
                "this group is every output, in order",
            );
        let cfg = gen.config(cfg);
        let ch = gen.channel_arg(id, g, chans, single);
        let x = site.x().buffer.clone();
        let (w, b) = (format!("{id}_w"), format!("{id}_b"));
        site.call(gen, template, &cfg, &[&x, &w, &b, &ch]);
    }
    Ok(())
}

/// A convolution's sizes as configuration members (shared with the K-hot window gatherer).
pub(super) fn conv_geometry(cfg: Config, mac: &Mac) -> Config {
    let MacGeometry::Conv(g) = mac.geometry else {
        unreachable!("a convolution")
    };
    let [top, bottom, left, right] = g.padding;
    cfg.int("in_channels", g.c_in, "input channels")
        .int("in_height", g.h, "input height (1 for a signal)")
        .int("in_width", g.w, "input width (a signal's length)")
        .int("out_channels", g.c_out, "output channels")
        .int("groups", g.groups, "channel groups")
        .int("kernel_height", g.kernel[0], "kernel height")
        .int("kernel_width", g.kernel[1], "kernel width")
        .int("stride_height", g.stride[0], "vertical stride")
        .int("stride_width", g.stride[1], "horizontal stride")
        .int("dilation_height", g.dilation[0], "vertical dilation")
        .int("dilation_width", g.dilation[1], "horizontal dilation")
        .int("pad_top", top, "zero rows above")
        .int("pad_bottom", bottom, "zero rows below")
        .int("pad_left", left, "zero columns on the left")
        .int("pad_right", right, "zero columns on the right")
        .int("out_height", g.oh, "output height")
        .int("out_width", g.ow, "output width")
}

/// The bias format of output `o`; a layer without a bias adds zero, in a 1-bit format.
pub(super) fn bias_format(mac: &Mac, o: usize) -> Format {
    mac.bias
        .map_or(Format::signed(1, 1).expect("valid format"), |b| {
            b.format_of(o)
        })
}

/// Emits a layer's weight and bias codes (zeros when the IR has no bias: casting a zero bias
/// into the accumulator gives the same 0 the engine starts from); returns their containers.
fn constants(gen: &mut Gen, id: &str, i: usize, mac: &Mac) -> (String, String) {
    let wc = gen.codes(
        &format!("{id}_w"),
        mac.weight,
        &format!("layer {i}: weights"),
    );
    let bc = match mac.bias {
        Some(b) => gen.codes(&format!("{id}_b"), b, &format!("layer {i}: bias")),
        None => gen.code_array(
            &format!("{id}_b"),
            1,
            &vec![0; mac.outputs()],
            &format!("layer {i}: no bias in the IR (zeros)"),
        ),
    };
    (wc, bc)
}

/// The typedefs of one output group: weights, bias, accumulator.
pub(super) fn typedefs_wba(gen: &mut Gen, id: &str, g: usize, w: Format, b: Format, a: Format) {
    gen.typedef(&format!("{id}_w{g}_t"), w, "weights");
    gen.typedef(&format!("{id}_b{g}_t"), b, "bias");
    gen.typedef(&format!("{id}_acc{g}_t"), a, "accumulator");
}

/// The largest width among a tensor's formats.
pub(super) fn max_width(codes: &Codes) -> u32 {
    codes.formats.iter().map(|f| f.width()).max().unwrap_or(1)
}
