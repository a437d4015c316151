//! Multiplier-free layers: a layer whose weights (or BatchNorm scales) are K-hot is emitted as
//! straight-line code in which every product `w · x` is shifts and adds of `x`'s integer code,
//! one term per non-zero digit of `w`'s code (`(c << 3) - c` for `w = 7` in CSD). The sum is
//! loaded into the product's full-precision type, so it is the value `w * x` has in C++ and the
//! accumulation that follows is the loop template's, step for step.

use std::fmt::Write as _;

use qfx_fixed::{Fixed, Format, KHot};
use qfx_ir::Codes;

use super::{acc, code_literal, group_channels, typedefs_wba, unsupported, Gen};
use crate::HlsError;

/// The signed powers of two whose sum is `code`, as `(shift, negative)`, lowest first: the ones
/// of `|code|` carrying `code`'s sign, or with `csd` the non-adjacent form (fewest non-zero
/// digits). Empty for 0.
pub(super) fn digits(code: i64, csd: bool) -> Vec<(u32, bool)> {
    let negative = code < 0;
    let mut m = code.unsigned_abs() as u128;
    let mut out = Vec::new();
    let mut shift = 0;
    while m != 0 {
        if m & 1 == 1 {
            if csd && m & 2 != 0 {
                // …11 → digit −1 here and a carry upward.
                out.push((shift, !negative));
                m += 1;
            } else {
                out.push((shift, negative));
                m -= 1;
            }
        }
        m >>= 1;
        shift += 1;
    }
    out
}

/// `code · var` as shifts and adds of `var` (a C++ `ap_int` expression), or `None` for 0.
pub(super) fn shift_add(var: &str, code: i64, csd: bool) -> Option<String> {
    let mut expr = String::new();
    for (k, (shift, negative)) in digits(code, csd).into_iter().enumerate() {
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

/// The layer being emitted, as the generated code names it.
pub(super) struct Site<'a> {
    /// Its identifier prefix (`l3_fc`).
    pub id: &'a str,
    /// Its index in the model.
    pub index: usize,
    /// Its name in the IR (for error messages).
    pub name: &'a str,
    /// The input buffer, its C++ type and its format.
    pub x: (&'a str, &'a str, Format),
    /// The output buffer and its C++ type.
    pub y: (&'a str, &'a str),
}

impl Site<'_> {
    /// Opens the layer's function (`n_in` inputs, `n_out` outputs) and returns the call the
    /// top function makes.
    fn open(&self, gen: &mut Gen, what: &str, khot: KHot, n_in: usize, n_out: usize) -> String {
        let (id, (xb, xt, _), (yb, yt)) = (self.id, self.x, self.y);
        let _ = writeln!(
            gen.functions,
            "\n// layer {}: {khot} {what}; every product is shifts and adds, no multiplier.\n\
             static void {id}_shift_add(const {xt} x[{n_in}], {yt} y[{n_out}]) {{\n\
             #pragma HLS INLINE off",
            self.index
        );
        format!("  {id}_shift_add({xb}, {yb});")
    }

    /// Bits for the input codes and every shifted term of a product with a `w_width`-bit code:
    /// the code of `x` (one more bit when unsigned, to stay non-negative in a signed type)
    /// shifted by up to `w_width` places (a CSD digit can sit one place above the code's top
    /// bit), plus the sign.
    fn code_width(&self, w_width: u32) -> u32 {
        self.x.2.width() + w_width + 2
    }

    fn product(&self, w: Format) -> Result<Format, HlsError> {
        Fixed::zero(w)
            .mul(&Fixed::zero(self.x.2))
            .map(|p| p.format())
            .map_err(|e| unsupported(self.name, e))
    }

    /// Typedefs for the per-output type groups of a Dense or Conv2d layer, with their product
    /// types; returns each output's group.
    fn groups(
        &self,
        gen: &mut Gen,
        outputs: usize,
        formats: impl Fn(usize) -> (Format, Format, Format),
    ) -> Result<Vec<usize>, HlsError> {
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

fn max_width(codes: &Codes) -> u32 {
    codes.formats.iter().map(|f| f.width()).max().unwrap_or(1)
}

fn zero_bias_format() -> Format {
    Format::signed(1, 1).expect("valid format")
}

/// A K-hot Dense layer (weight `[in, out]`); returns the top function's call.
pub(super) fn dense(
    gen: &mut Gen,
    site: &Site,
    weight: &Codes,
    bias: Option<&Codes>,
    accumulator: &[Format],
    khot: KHot,
) -> Result<String, HlsError> {
    let (d_in, d_out) = (weight.shape[0], weight.shape[1]);
    let group_of = site.groups(gen, d_out, |o| {
        (
            weight.format_of(o),
            bias.map_or(zero_bias_format(), |b| b.format_of(o)),
            acc(accumulator, o),
        )
    })?;
    let call = site.open(gen, "weights", khot, d_in, d_out);
    let (wc, xs, xt) = (
        site.code_width(max_width(weight)),
        site.x.2.is_signed(),
        site.x.1,
    );
    let _ = writeln!(
        gen.functions,
        "  qfx::code_type<{wc}>::type c[{d_in}];\n  qfx::codes_of<{wc}, {xs}, {xt}, {d_in}>(x, c);"
    );
    for (o, &g) in group_of.iter().enumerate() {
        let terms = (0..d_in).map(|j| (format!("c[{j}]"), weight.codes[j * d_out + o]));
        let bias = bias.map_or(0, |b| b.codes[o]);
        site.accumulate(gen, "  ", g, bias, terms, khot.csd, &format!("y[{o}]"));
    }
    gen.functions.push_str("}\n");
    Ok(call)
}

/// A K-hot Conv2d layer (weight `[out, in, k, k]`, input `[c, h, w]`, output `[out, oh, ow]`);
/// returns the top function's call.
#[allow(clippy::too_many_arguments)]
pub(super) fn conv2d(
    gen: &mut Gen,
    site: &Site,
    (c_in, h, w): (usize, usize, usize),
    (oh, ow): (usize, usize),
    (stride, padding): (usize, usize),
    weight: &Codes,
    bias: Option<&Codes>,
    accumulator: &[Format],
    khot: KHot,
) -> Result<String, HlsError> {
    let (c_out, k) = (weight.shape[0], weight.shape[2]);
    let per_out = c_in * k * k;
    let group_of = site.groups(gen, c_out, |o| {
        (
            weight.format_of(o * per_out),
            bias.map_or(zero_bias_format(), |b| b.format_of(o)),
            acc(accumulator, o),
        )
    })?;
    let call = site.open(gen, "weights", khot, c_in * h * w, c_out * oh * ow);
    let (wc, xs, xt) = (
        site.code_width(max_width(weight)),
        site.x.2.is_signed(),
        site.x.1,
    );
    let _ = writeln!(
        gen.functions,
        "ShiftAddRow:\n  for (int oy = 0; oy < {oh}; oy++) {{\n  ShiftAddCol:\n    \
         for (int ox = 0; ox < {ow}; ox++) {{\n      qfx::code_type<{wc}>::type c[{per_out}];\n      \
         qfx::window_codes<{wc}, {xs}, {xt}, {c_in}, {h}, {w}, {k}, {stride}, {padding}>(x, oy, ox, c);"
    );
    for (o, &g) in group_of.iter().enumerate() {
        let terms = (0..per_out).map(|j| (format!("c[{j}]"), weight.codes[o * per_out + j]));
        let bias = bias.map_or(0, |b| b.codes[o]);
        let y = format!("y[({o} * {oh} + oy) * {ow} + ox]");
        site.accumulate(gen, "      ", g, bias, terms, khot.csd, &y);
    }
    gen.functions.push_str("    }\n  }\n}\n");
    Ok(call)
}

/// A per-channel constant multiply with K-hot constants (input `[c, …]`, `hw` values per
/// channel), the product as shifts and adds: BatchNorm `y = scale·x + shift` when `shift` is
/// given, else PReLU `y = x` where `x ≥ 0`, otherwise `scale·x`. Returns the top function's call.
pub(super) fn channel_scale(
    gen: &mut Gen,
    site: &Site,
    (c, hw): (usize, usize),
    scale: &Codes,
    shift: Option<&Codes>,
    khot: KHot,
) -> Result<String, HlsError> {
    let id = site.id;
    let shift_format = |ch| shift.map(|h| h.format_of(ch));
    let groups = group_channels(c, |ch| (scale.format_of(ch), shift_format(ch)));
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
    let call = site.open(gen, what, khot, c * hw, c * hw);
    let (wc, xs) = (site.code_width(max_width(scale)), site.x.2.is_signed());
    let _ = writeln!(
        gen.functions,
        "ShiftAddPixel:\n  for (int i = 0; i < {hw}; i++) {{"
    );
    for (ch, &g) in group_of.iter().enumerate() {
        let product = shift_add("c", scale.codes[ch], khot.csd).unwrap_or_else(|| "0".into());
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
    Ok(call)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code up to 12 bits: the digits sum to the code; CSD digits are non-adjacent and
    /// never more than the binary ones.
    #[test]
    fn digits_sum_to_the_code() {
        for code in -4096i64..4096 {
            for csd in [false, true] {
                let d = digits(code, csd);
                let sum: i64 = d
                    .iter()
                    .map(|&(s, neg)| if neg { -(1i64 << s) } else { 1i64 << s })
                    .sum();
                assert_eq!(sum, code, "{code} csd={csd}: {d:?}");
                if csd {
                    assert!(d.windows(2).all(|p| p[1].0 > p[0].0 + 1), "{code}: {d:?}");
                    assert_eq!(d.len() as u32, KHot::csd(1).digits(code as i128));
                } else {
                    assert_eq!(d.len() as u32, code.unsigned_abs().count_ones());
                }
            }
        }
        assert_eq!(digits(i64::MIN, true), vec![(63, true)]);
    }

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
