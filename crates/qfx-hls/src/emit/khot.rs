//! Multiplier-free layers: a layer whose weights (or BatchNorm scales) are K-hot is emitted as
//! straight-line code in which every product `w · x` is shifts and adds of `x`'s integer code,
//! one term per non-zero digit of `w`'s code (`(c << 3) - c` for `w = 7` in CSD, the
//! decomposition `qfx_fixed::khot::signed_digits` defines). The sum is loaded into the product's
//! full-precision type, so it is the value `w * x` has in C++ and the accumulation that follows
//! is the loop template's, step for step.

use std::fmt::Write as _;

use qfx_fixed::khot::{signed_digits, SignedDigit};
use qfx_fixed::{Fixed, Format, KHot};
use qfx_ir::{Codes, Mac, MacGeometry};

use super::gen::{code_literal, group_channels, Gen, Site};
use super::mac::{bias_format, conv_geometry, max_width, typedefs_wba};
use crate::HlsError;

/// `code · var` as shifts and adds of `var` (a C++ `ap_int` expression), or `None` for 0.
pub(super) fn shift_add(var: &str, code: i64, csd: bool) -> Option<String> {
    let mut expr = String::new();
    for (k, SignedDigit { shift, negative }) in signed_digits(code as i128, csd).enumerate() {
        let term = match shift {
            0 => var.to_string(),
            s => format!("({var} << {s})"),
        };
        match (k, negative) {
            (0, false) => expr.push_str(&term),
            (0, true) => {
                expr.push('-');
                expr.push_str(&term);
            }
            (_, false) => expr.push_str(&format!(" + {term}")),
            (_, true) => expr.push_str(&format!(" - {term}")),
        }
    }
    (!expr.is_empty()).then_some(expr)
}

impl Site<'_> {
    /// Opens the layer's function (`n_in` inputs, `n_out` outputs) and writes the top
    /// function's call.
    fn open(&self, gen: &mut Gen, what: &str, khot: KHot, n_in: usize, n_out: usize) {
        let (id, xt, yt) = (self.id, &self.x().type_name, &self.y.type_name);
        let _ = writeln!(
            gen.functions,
            "\n// layer {}: {khot} {what}; every product is shifts and adds, no multiplier.\n\
             static void {id}_shift_add(const {xt} x[{n_in}], {yt} y[{n_out}]) {{\n\
             #pragma HLS INLINE off",
            self.index()
        );
        let _ = writeln!(
            gen.body,
            "  {id}_shift_add({}, {});",
            self.x().buffer,
            self.y.buffer
        );
    }

    /// Bits for the input codes and every shifted term of a product with a `w_width`-bit code:
    /// the code of `x` (one more bit when unsigned, to stay non-negative in a signed type)
    /// shifted by up to `w_width` places (a CSD digit can sit one place above the code's top
    /// bit), plus the sign.
    fn code_width(&self, w_width: u32) -> u32 {
        self.x_format().width() + w_width + 2
    }

    fn product(&self, w: Format) -> Result<Format, HlsError> {
        Fixed::zero(w)
            .mul(&Fixed::zero(self.x_format()))
            .map(|p| p.format())
            .map_err(|e| self.unsupported(e))
    }

    /// Typedefs for the per-output type groups of a sum of products, with their product types;
    /// returns each output's group.
    fn groups(&self, gen: &mut Gen, mac: &Mac) -> Result<Vec<usize>, HlsError> {
        let outputs = mac.outputs();
        let formats = |o| {
            (
                mac.weight_format(o),
                bias_format(mac, o),
                mac.accumulator(o),
            )
        };
        let mut group_of = vec![0; outputs];
        for (g, ((wf, bf, af), chans)) in group_channels(outputs, formats).iter().enumerate() {
            typedefs_wba(gen, self.id, g, *wf, *bf, *af);
            gen.typedef(
                &format!("{}_p{g}_t", self.id),
                self.product(*wf)?,
                "product",
            );
            for &c in chans {
                group_of[c] = g;
            }
        }
        Ok(group_of)
    }

    /// One output's accumulation, bias first, then the terms in the order given; `y` is the
    /// output element it is assigned to.
    #[allow(clippy::too_many_arguments)]
    fn accumulate(
        &self,
        gen: &mut Gen,
        indent: &str,
        g: usize,
        bias: i64,
        terms: impl Iterator<Item = (String, i64)>,
        csd: bool,
        y: &str,
    ) {
        let id = self.id;
        let _ = writeln!(
            gen.functions,
            "{indent}{{\n{indent}  {id}_acc{g}_t acc = qfx::from_code<{id}_b{g}_t>({});",
            code_literal(bias)
        );
        for (var, code) in terms {
            if let Some(e) = shift_add(&var, code, csd) {
                let _ = writeln!(
                    gen.functions,
                    "{indent}  qfx::mac<{id}_acc{g}_t, {id}_p{g}_t>(acc, {e});"
                );
            }
        }
        let _ = writeln!(gen.functions, "{indent}  {y} = acc;\n{indent}}}");
    }
}

/// True when a layer with these K-hot constants is emitted as shifts and adds: its codes and
/// terms fit the 64-bit integers of the C simulation (wider layers keep the loop templates),
/// and they are not binary weights (2-bit formats, codes `0`/`±1`). Such a layer (a binarized
/// convolution) keeps the loop template too: its products are sign changes, which a 2-bit
/// multiply in the loop already is, and straight-line code would only cost compile time
/// (minutes for a 64→128-channel layer).
pub(super) fn fits(site: &Site, constants: &Codes) -> bool {
    let binary = max_width(constants) <= 2 && constants.codes.iter().all(|c| c.abs() <= 1);
    site.code_width(max_width(constants)) <= 63 && !binary
}

/// A K-hot sum of products: a dense layer gathers its input codes once (`c[j]` is term `j`'s
/// input), a convolution gathers each window's codes over every input channel and loops over
/// positions (term `j` of output `o` reads `c[first + j]`, `first` the window offset of `o`'s
/// group's first input channel).
pub(super) fn mac(gen: &mut Gen, site: &Site, mac: &Mac, khot: KHot) -> Result<(), HlsError> {
    let group_of = site.groups(gen, mac)?;
    let (n_in, n_out) = (site.node.x().shape.iter().product(), site.node.len());
    site.open(gen, "weights", khot, n_in, n_out);
    let wc = site.code_width(max_width(mac.weight));
    let (xs, xt) = (site.x_format().is_signed(), &site.x().type_name);
    let terms = mac.terms();
    // Where output `o`'s terms start in `c`.
    let first: Vec<usize> = (0..mac.outputs())
        .map(|o| match mac.geometry {
            MacGeometry::Dense { .. } => 0,
            MacGeometry::Conv(g) => g.first_input(o) * g.kernel[0] * g.kernel[1],
        })
        .collect();
    // The output element output `o` is assigned to.
    let (indent, y): (&str, Box<dyn Fn(usize) -> String>) = match mac.geometry {
        MacGeometry::Dense { .. } => {
            let _ = writeln!(
                gen.functions,
                "  qfx::code_type<{wc}>::type c[{n_in}];\n  qfx::codes_of<{wc}, {xs}, {xt}, {n_in}>(x, c);"
            );
            ("  ", Box::new(|o| format!("y[{o}]")))
        }
        MacGeometry::Conv(g) => {
            let cfg = site
                .config("_window", ", input window codes")
                .ty("x_t", xt, "input")
                .int(
                    "code_width",
                    wc as usize,
                    "bits of an input code and its shifted terms",
                )
                .flag("x_signed", xs, "input codes are signed");
            let cfg = gen.config(conv_geometry(cfg, mac));
            let _ = writeln!(
                gen.functions,
                "ShiftAddRow:\n  for (int oy = 0; oy < {}; oy++) {{\n  ShiftAddCol:\n    \
                 for (int ox = 0; ox < {}; ox++) {{\n      qfx::code_type<{wc}>::type c[{}];\n      \
                 qfx::window_codes<{cfg}>(x, oy, ox, c);",
                g.oh,
                g.ow,
                g.c_in * g.kernel[0] * g.kernel[1]
            );
            let (oh, ow) = (g.oh, g.ow);
            (
                "      ",
                Box::new(move |o| format!("y[({o} * {oh} + oy) * {ow} + ox]")),
            )
        }
    };
    for (o, &g) in group_of.iter().enumerate() {
        let at = first[o];
        let products = (0..terms).map(|j| {
            let code = mac.weight.codes[mac.weight_index(o, j)];
            (format!("c[{}]", at + j), code)
        });
        let bias = mac.bias.map_or(0, |b| b.codes[o]);
        site.accumulate(gen, indent, g, bias, products, khot.csd, &y(o));
    }
    gen.functions.push_str(match mac.geometry {
        MacGeometry::Dense { .. } => "}\n",
        MacGeometry::Conv(_) => "    }\n  }\n}\n",
    });
    Ok(())
}

/// A per-channel constant multiply with K-hot constants (input `[c, …]`, `hw` values per
/// channel), the product as shifts and adds: BatchNorm `y = scale·x + shift` when `shift` is
/// given, else PReLU `y = x` where `x ≥ 0`, otherwise `scale·x` (`scale` may hold one value
/// for every channel: [`Codes::channel_index`]).
pub(super) fn channel_scale(
    gen: &mut Gen,
    site: &Site,
    (c, hw): (usize, usize),
    scale: &Codes,
    shift: Option<&Codes>,
    khot: KHot,
) -> Result<(), HlsError> {
    let id = site.id;
    let shift_format = |ch| shift.map(|h| h.format_of(ch));
    let scale_format = |ch| scale.format_of(scale.channel_index(ch));
    let groups = group_channels(c, |ch| (scale_format(ch), shift_format(ch)));
    let mut group_of = vec![0; c];
    for (g, ((sf, hf), chans)) in groups.iter().enumerate() {
        if let Some(hf) = hf {
            gen.typedef(&format!("{id}_h{g}_t"), *hf, "shift");
        }
        let what = if shift.is_some() {
            "scale * input"
        } else {
            "slope * input"
        };
        gen.typedef(&format!("{id}_p{g}_t"), site.product(*sf)?, what);
        for &ch in chans {
            group_of[ch] = g;
        }
    }
    let what = if shift.is_some() {
        "BatchNorm scales"
    } else {
        "PReLU slopes"
    };
    site.open(gen, what, khot, c * hw, c * hw);
    let (wc, xs) = (
        site.code_width(max_width(scale)),
        site.x_format().is_signed(),
    );
    let _ = writeln!(
        gen.functions,
        "ShiftAddPixel:\n  for (int i = 0; i < {hw}; i++) {{"
    );
    for (ch, &g) in group_of.iter().enumerate() {
        let code = scale.codes[scale.channel_index(ch)];
        let product = shift_add("c", code, khot.csd).unwrap_or_else(|| "0".into());
        let product = format!("qfx::from_code<{id}_p{g}_t>({product})");
        let assign = match shift {
            Some(h) => format!(
                "y[k] = {product} + qfx::from_code<{id}_h{g}_t>({});",
                code_literal(h.codes[ch])
            ),
            None => format!(
                "if (x[k] >= 0) {{\n        y[k] = x[k];\n      }} else {{\n        \
                 y[k] = {product};\n      }}"
            ),
        };
        let _ = writeln!(
            gen.functions,
            "    {{\n      const int k = {ch} * {hw} + i;\n      \
             const qfx::code_type<{wc}>::type c = qfx::code_of<{wc}, {xs}>(x[k]);\n      \
             {assign}\n    }}"
        );
    }
    gen.functions.push_str("  }\n}\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_read_as_shifts_and_adds() {
        for (code, csd, want) in [
            (0, false, None),
            (1, false, Some("c")),
            (-1, true, Some("-c")),
            (6, false, Some("(c << 1) + (c << 2)")),
            (7, true, Some("-c + (c << 3)")),
            (-7, true, Some("c - (c << 3)")),
            (-5, false, Some("-c - (c << 2)")),
        ] {
            assert_eq!(shift_add("c", code, csd).as_deref(), want, "{code} {csd}");
        }
    }
}
