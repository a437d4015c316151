#!/usr/bin/env bash
# Measured, not estimated: the jet-tagging-shaped MLP of examples/jet_mlp (16-64-32-32-5,
# BatchNorm and ReLU) trained on its table (examples/jet_mlp/jets.csv), plain fixed point
# against K = 1, 2, 3 (K-hot weights) at W = 6 and 12. For each model: the bit-exact engine's test accuracy, the Verilog
# design verified in Verilator (mismatches, latency), and Yosys's counts (LUT, FF, CARRY, DSP),
# with and without the shared subexpressions (the CSE's LUT saving against plain per-weight
# shift-and-add). Resumable: finished steps are skipped.
#
# Usage: bench/rtl_results.sh [OUT_DIR]
#   env: QFX = the qfx binary, WIDTHS, KS, EPOCHS, NOCSE_WIDTHS (widths also synthesized
#   without CSE, default "6")
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/rtl-results}
qfx=${QFX:-target/release/qfx}
widths=${WIDTHS:-"6 12"}
ks=${KS:-"plain 1 2 3"}
epochs=${EPOCHS:-4}
nocse_widths=${NOCSE_WIDTHS:-"6"}
config=examples/jet_mlp/jet_mlp.toml
mkdir -p "$out"
[ -e "$out/float/checkpoints/latest" ] ||
  $qfx train --run "$out/float" --config "$config" --float >/dev/null
for w in $widths; do
  for k in $ks; do
    r="$out/w$w-$k"
    if [ ! -e "$r/model.ir.json" ]; then
      extra=()
      [ "$k" = plain ] || extra=(--set "quant.weight_khot={ k = $k }")
      $qfx train --run "$r" --from "$out/float" --bits "$w" --epochs "$epochs" --lr 1e-3 \
        "${extra[@]}" >/dev/null
    fi
    [ -s "$r/eval.txt" ] || $qfx eval --checkpoint "$r" --exact > "$r/eval.txt"
    if [ ! -s "$r/verify.txt" ]; then
      $qfx export verilog --checkpoint "$r" --out "$r/rtl" --force > "$r/export.txt"
      $qfx verify-rtl --project "$r/rtl" --data "$config" --samples 200 > "$r/verify.txt"
    fi
    [ -e "$r/rtl/synth.json" ] || $qfx synth --project "$r/rtl" > "$r/synth.txt"
    if [[ " $nocse_widths " == *" $w "* ]] && [ ! -e "$r/rtl-nocse/synth.json" ]; then
      $qfx export verilog --checkpoint "$r" --out "$r/rtl-nocse" --force --no-cse > /dev/null
      $qfx synth --project "$r/rtl-nocse" > /dev/null
    fi
    echo "done: $r" >&2
  done
done
python3 bench/rtl_results_table.py "$out"
