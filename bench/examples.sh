#!/usr/bin/env bash
# The examples' results table (README, "Examples: your own network, your own data"): each
# example of examples/ trained in float, quantized by PTQ and by QFX at W = 4 and W = 8, every
# QFX model exported and checked with verify-hls on 200 test samples.
#
#   cargo build --release -p qfx && bench/examples.sh [RUNS]      (default runs/examples)
#
# Resumable (finished runs are kept). WIDTHS="4 6 8" picks other widths.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUNS=${1:-runs/examples}
read -r -a widths <<< "${WIDTHS:-4 8}"
for example in jet_mlp dscnn_fashion signal_cnn; do
  examples/run.sh "$example" "${widths[@]}"
done
echo
python3 bench/examples_table.py "$RUNS"
