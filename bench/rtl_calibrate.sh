#!/usr/bin/env bash
# Calibrates the resource estimate (qfx_hls::cost) against Yosys: synthesizes single Dense
# layers (16x8 and 32x16; W = 4, 6, 8, 12; plain and 1/2/3-hot weights) and jet-tagging-shaped
# MLPs (W = 6, 12; plain and 1/2/3-hot), adds any synthesized projects given (the trained
# networks of bench/rtl_results.sh by default), fits the cost model's LUT per adder bit and per
# fabric-multiplier bit, and prints every design with the median and worst ratio. Resumable:
# designs already synthesized in OUT_DIR are reused. Hours on 2 cores (Yosys dominates).
#
# Usage: bench/rtl_calibrate.sh [OUT_DIR] [PROJECT...]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/rtl-calibration}
shift || true
projects=("$@")
if [ ${#projects[@]} -eq 0 ]; then
  for p in target/rtl-results/w*/rtl; do [ -e "$p/synth.json" ] && projects+=("$p"); done
fi
# Only the Verilog crate and its dependencies (no training stack) are built.
cargo build --release --locked -p qfx-rtl --example calibrate
target/release/examples/calibrate "$out" "${projects[@]}"
