//! The resource estimate (`qfx_hls::cost`) next to a synthesis measurement of the same model,
//! per layer: what `qfx report` prints when a Verilog project was synthesized.

use std::fmt::Write as _;

use qfx_hls::cost::CostReport;
use qfx_hls::names::comment_text;

use crate::synth::SynthReport;
use crate::{ErrorKind, RtlError};

/// A Markdown table: per layer, estimated and measured DSP and LUT, the measured/estimated LUT
/// ratio, and the measured FF and CARRY; then the totals. Errors when the two reports are not
/// of the same layers.
pub fn side_by_side(cost: &CostReport, synth: &SynthReport) -> Result<String, RtlError> {
    let same = cost.layers.len() == synth.layers.len()
        && cost
            .layers
            .iter()
            .zip(&synth.layers)
            .all(|(c, s)| c.name == s.name);
    if !same {
        return Err(RtlError::new(
            ErrorKind::BadInput,
            "the synthesis result is of another model (its layers differ from the estimate's)",
        ));
    }
    let ratio = |meas: u64, est: u64| {
        if est == 0 {
            "-".to_string()
        } else {
            format!("{:.2}", meas as f64 / est as f64)
        }
    };
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| layer | kind | est. DSP | DSP | est. LUT | LUT | LUT meas./est. | FF | CARRY |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|");
    for (c, s) in cost.layers.iter().zip(&synth.layers) {
        let r = &s.resources;
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            comment_text(&c.name),
            c.kind,
            c.dsp,
            r.dsp,
            c.lut,
            r.lut,
            ratio(r.lut, c.lut),
            r.ff,
            r.carry
        );
    }
    let tot = &synth.total;
    let _ = writeln!(
        t,
        "| total (incl. top: {} FF) | | {} | {} | {} | {} | {} | {} | {} |",
        synth.top.ff,
        cost.dsp(),
        tot.dsp,
        cost.lut(),
        tot.lut,
        ratio(tot.lut, cost.lut()),
        tot.ff,
        tot.carry
    );
    Ok(t)
}
