#!/usr/bin/env bash
# Calibrates the resource estimate (qfx_hls::cost) against Yosys: synthesizes single Dense
# layers (16x8 and 32x16; W = 4, 6, 8, 12; plain and 1/2/3-hot weights), adds the synthesized
# projects given (the trained jet MLPs of bench/rtl_results.sh by default), fits the cost model's
# LUT per adder bit and per fabric-multiplier bit, and prints every design with the median and
# worst ratio. ONLY= (empty) also synthesizes seeded random jet-shaped MLPs (W = 6, 12; plain
# and 1/2/3-hot; hours on 2 cores, Yosys dominates). Resumable: designs already synthesized in
# OUT_DIR are reused. The committed coefficients come from the default run after
# bench/rtl_results.sh (24 designs).
#
# Usage: bench/rtl_calibrate.sh [OUT_DIR] [PROJECT...]   (env: ONLY, default "dense")
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
target/release/examples/calibrate "$out" --only "${ONLY-dense}" "${projects[@]}"
