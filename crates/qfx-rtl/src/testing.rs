//! Test designs for this crate's own tests (not a stable API): a bank of assignments with the
//! same ports as a generated design, so the Verilator harness can check every cast against
//! `Fixed::cast` exhaustively.

#![doc(hidden)]

use std::fmt::Write as _;

use qfx_fixed::Format;

use crate::cast::{cast, CastLogic};
use crate::design::TOP;
use crate::verilog::{Body, Sig};

/// A `qfx_top` with one field of `in_data` per pair (a code of `from`) and, for every logic in
/// `logics`, one field of `out_data` per pair (that code assigned to `to`); latency 1.
/// Returns the Verilog, and the bit offsets of the input and output fields.
pub fn cast_bank(pairs: &[(Format, Format)], logics: &[CastLogic]) -> (String, Vec<u64>, Vec<u64>) {
    let mut b = Body::default();
    let mut in_offsets = Vec::new();
    let mut offset = 0u64;
    let mut xs = Vec::new();
    for (k, (from, _)) in pairs.iter().enumerate() {
        let name = format!("x_{k}");
        b.line(&format!(
            "wire [{}:0] {name} = in_data[{}:{offset}];",
            from.width() - 1,
            offset + from.width() as u64 - 1
        ));
        in_offsets.push(offset);
        offset += from.width() as u64;
        xs.push(Sig {
            name,
            width: from.width(),
            signed: from.is_signed(),
        });
    }
    let in_bits = offset;
    let mut outs = Vec::new();
    let mut out_offsets = Vec::new();
    let mut out_bits = 0u64;
    for &logic in logics {
        for (x, &(from, to)) in xs.iter().zip(pairs) {
            outs.push(cast(&mut b, x, from, to, None, logic));
            out_offsets.push(out_bits);
            out_bits += to.width() as u64;
        }
    }
    let mut v = String::new();
    let _ = writeln!(
        v,
        "module {TOP} (\n  input clk,\n  input rst,\n  input in_valid,\n  input [{}:0] in_data,\n  \
         output reg out_valid,\n  output reg [{}:0] out_data,\n  output err\n);\n  \
         assign err = 1'b0;",
        in_bits - 1,
        out_bits - 1
    );
    v.push_str(b.text());
    let cat: Vec<&str> = outs.iter().rev().map(|s| s.name.as_str()).collect();
    let _ = writeln!(
        v,
        "  always @(posedge clk) begin\n    out_valid <= rst ? 1'b0 : in_valid;\n    \
         out_data <= {{{}}};\n  end\nendmodule",
        cat.join(", ")
    );
    (v, in_offsets, out_offsets)
}
