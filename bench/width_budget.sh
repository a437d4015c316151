#!/usr/bin/env bash
# Learned widths under a hardware budget against uniform widths (issue "learn the word widths
# as well"): the small CNN on the embedded Fashion-MNIST subset (MODEL=cnn) or on the full
# Fashion-MNIST (MODEL=cnn_full, after scripts/fetch-fashion-mnist), or the jet-tagging MLP of
# examples/jet_mlp (MODEL=jet_mlp), QAT from one float model per seed, the accuracy-vs-LUT
# points of
#   (a) uniform W (learned binary points), with the configured accumulators (W_w + W_x + 8
#       bits) and, for SIZED_WIDTHS, with accumulators sized at export as learned widths have
#       them (widths learned within [W, W]: the same formats, only the accumulators differ),
#   (b) learned widths, EBOPs in the loss, β steered to a LUT budget,
#   (c) learned widths, qfx's LUT cost in the loss, β steered to the same budget,
# the budgets being the mean LUT estimates of uniform W of BUDGET_WIDTHS. Every model is
# exported and checked with verify-hls (C simulation vs the integer engine, 0 mismatches
# required); its LUT/DSP estimate is `qfx report`'s (`cost` in metrics.jsonl, the same function).
#
# Usage: [MODEL=cnn|cnn_full|jet_mlp] bench/width_budget.sh [OUT_DIR]
#   (default target/width-budget, target/width-budget-full, target/width-budget-jet_mlp)
#   env: SEEDS ("1 2 3"), WIDTHS ("2 3 4 6 8"), SIZED_WIDTHS ("3 4 6"), BUDGET_WIDTHS ("3 4 6"),
#        FLOAT_EPOCHS (cnn 8, cnn_full 4; jet_mlp: its TOML's 20), QAT_EPOCHS (cnn 3,
#        cnn_full 2, jet_mlp 15),
#        SAMPLES (100: verify-hls). Learned widths start one bit above the
#        uniform width whose cost is the budget.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${MODEL:-cnn}
case $model in
  cnn) float_flags=(--epochs "${FLOAT_EPOCHS:-8}") qat_flags=() data=data/fashion-mnist-subset
       default_out=target/width-budget qat_epochs=${QAT_EPOCHS:-3} ;;
  cnn_full) float_flags=(--epochs "${FLOAT_EPOCHS:-4}" --data data/fashion-mnist-full) qat_flags=()
       data=data/fashion-mnist-full default_out=target/width-budget-full qat_epochs=${QAT_EPOCHS:-2} ;;
  jet_mlp) float_flags=(--config examples/jet_mlp/jet_mlp.toml) qat_flags=(--lr 0.003)
       data=examples/jet_mlp/jet_mlp.toml default_out=target/width-budget-jet_mlp
       qat_epochs=${QAT_EPOCHS:-15} ;;
  *) echo "bench/width_budget.sh: MODEL is cnn, cnn_full or jet_mlp, not '$model'" >&2; exit 2 ;;
esac
out=${1:-$default_out}
seeds=${SEEDS:-"1 2 3"}
widths=${WIDTHS:-"2 3 4 6 8"}
budget_widths=${BUDGET_WIDTHS:-"3 4 6"}
sized_widths=${SIZED_WIDTHS:-"3 4 6"}
samples=${SAMPLES:-100}
qfx=${QFX:-target/release/qfx}
cargo build --release -q -p qfx
mkdir -p "$out"

# check RUN: export the run's model and verify it bit for bit; writes RUN/verify.txt.
check() {
  [ -e "$1/verify.txt" ] && return
  rm -rf "$1/hls"
  $qfx export hls --checkpoint "$1" --out "$1/hls" >/dev/null
  $qfx verify-hls --project "$1/hls" --data "$data" --samples "$samples" > "$1/verify.txt.partial"
  mv "$1/verify.txt.partial" "$1/verify.txt"
}
# lut RUN: the last epoch's LUT estimate.
lut() { tail -1 "$1/metrics.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["cost"]["lut"])'; }

for s in $seeds; do
  [ -e "$out/float-s$s/checkpoints/latest" ] ||
    $qfx train --run "$out/float-s$s" --float "${float_flags[@]}" --seed "$s" >/dev/null
  for w in $widths; do
    r="$out/uniform-w$w-s$s"
    [ -e "$r/model.ir.json" ] ||
      $qfx train --from "$out/float-s$s" --run "$r" --bits "$w" --epochs "$qat_epochs" --seed "$s" "${qat_flags[@]}" >/dev/null
    check "$r"
  done
  for w in $sized_widths; do
    r="$out/sized-w$w-s$s"
    [ -e "$r/model.ir.json" ] ||
      $qfx train --from "$out/float-s$s" --run "$r" --bits "$w" --epochs "$qat_epochs" --seed "$s" \
        "${qat_flags[@]}" --learn-widths --set "quant.weight_width_range=[$w, $w]" \
        --set "quant.act_width_range=[$w, $w]" --set "quant.bn_width_range=[$w, $w]" >/dev/null
    check "$r"
  done
done
for bw in $budget_widths; do
  # The budget: the mean LUT estimate of uniform W = bw over the seeds.
  budget=$(for s in $seeds; do lut "$out/uniform-w$bw-s$s"; done | python3 -c 'import sys; v=[float(l) for l in sys.stdin]; print(round(sum(v)/len(v)))')
  for s in $seeds; do
    for cost in ebops lut; do
      r="$out/learned-$cost-b$bw-s$s"
      [ -e "$r/model.ir.json" ] ||
        $qfx train --from "$out/float-s$s" --run "$r" --bits $((bw + 1)) --learn-widths \
          --cost "$cost" --budget-lut "$budget" --epochs "$qat_epochs" --seed "$s" "${qat_flags[@]}" \
          >/dev/null
      check "$r"
    done
  done
done
python3 bench/width_budget_table.py "$out"
