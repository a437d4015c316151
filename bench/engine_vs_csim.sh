#!/usr/bin/env bash
# Integer engine vs the compiled HLS C simulation: same network, same inputs, one thread each.
# Reports inferences/s of both and the ratio, for the testbench compiled as Vitis' csim_design
# does by default (no optimization: -O0) and with -O2. The C simulation is timed inside the
# testbench around its inference loop (no compilation, no file I/O).
#
# Usage: bench/engine_vs_csim.sh [--project DIR] [--samples N]
#   (default: a CNN shaped like qfx's small CNN with random 8-bit weights, 200 samples)
# Needs g++ and, once, pip access for the ap_types headers (cached in $QFX_CACHE_DIR,
# $XDG_CACHE_HOME/qfx or ~/.cache/qfx).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --release -p qfx-hls --example engine_vs_csim -- "$@"
