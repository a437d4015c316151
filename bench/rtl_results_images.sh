#!/usr/bin/env bash
# Measured, not estimated, for image networks (the streaming Verilog design): the small CNN
# (two conv-BN-ReLU-maxpool blocks, 8/16 channels, linear classifier) on the embedded
# Fashion-MNIST subset, plain fixed point against K = 1, 2, 3 at W = 6 and 12; and the
# binarized residual network (8/16/16 channels, `±1` convolutions as XNOR-popcount, every other
# tensor 12-bit) with fixed-point against 2-hot element-wise multipliers (weights, BatchNorm
# scales, PReLU slopes). Per model: the bit-exact engine's accuracy on the 1,000 test images,
# the design verified in Verilator on 200 of them (mismatches, latency, clocks per inference),
# and Yosys's counts. Resumable.
#
# Usage: bench/rtl_results_images.sh [OUT_DIR]   (env: QFX, WIDTHS, KS, NETS="cnn bnn")
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/rtl-results-images}
qfx=${QFX:-target/release/qfx}
widths=${WIDTHS:-"6 12"}
ks=${KS:-"plain 1 2 3"}
nets=${NETS:-"cnn bnn"}
data=data/fashion-mnist-subset
mkdir -p "$out"

# measure RUN: accuracy, Verilog export, Verilator check, Yosys.
measure() {
  local r=$1
  [ -s "$r/eval.txt" ] || $qfx eval --checkpoint "$r" --exact > "$r/eval.txt"
  if [ ! -s "$r/verify.txt" ]; then
    $qfx export verilog --checkpoint "$r" --out "$r/rtl" --force > "$r/export.txt"
    $qfx verify-rtl --project "$r/rtl" --data "$data" --samples 200 > "$r/verify.txt"
  fi
  [ -e "$r/rtl/synth.json" ] || $qfx synth --project "$r/rtl" > "$r/synth.txt"
  echo "done: $r" >&2
}

if [[ " $nets " == *" cnn "* ]]; then
  [ -e "$out/cnn-float/checkpoints/latest" ] || $qfx train --run "$out/cnn-float" --model cnn \
    --data "$data" --set 'model.channels=[8, 16]' --float --epochs 6 >/dev/null
  for w in $widths; do
    for k in $ks; do
      r="$out/cnn-w$w-$k"
      if [ ! -e "$r/model.ir.json" ]; then
        extra=()
        [ "$k" = plain ] || extra=(--set "quant.weight_khot={ k = $k }")
        $qfx train --run "$r" --from "$out/cnn-float" --bits "$w" --epochs 2 --lr 1e-3 \
          "${extra[@]}" >/dev/null
      fi
      measure "$r"
    done
  done
fi

if [[ " $nets " == *" bnn "* ]]; then
  base="$out/bnn-base"
  [ -e "$base/model.ir.json" ] || $qfx train --run "$base" --model bnn --data "$data" \
    --set 'model.widths=[8, 16, 16]' --bits 12 --epochs 3 >/dev/null
  [ -e "$out/bnn-fixed/model.ir.json" ] ||
    $qfx train --run "$out/bnn-fixed" --from "$base" --epochs 1 --lr 5e-4 >/dev/null
  [ -e "$out/bnn-khot2/model.ir.json" ] ||
    $qfx train --run "$out/bnn-khot2" --from "$base" --epochs 1 --lr 5e-4 \
      --set 'quant.weight_khot={ k = 2 }' --set 'quant.bn_khot={ k = 2 }' \
      --set 'quant.slope_khot={ k = 2 }' >/dev/null
  measure "$out/bnn-fixed"
  measure "$out/bnn-khot2"
fi
python3 bench/rtl_results_table.py "$out"
