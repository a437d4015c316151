#!/usr/bin/env bash
# The issue-6 K-hot table: the small CNN on full Fashion-MNIST with 2-hot weights (every weight
# code has at most 2 ones, so each multiply is one adder) against the same network with plain
# fixed-point weights, both QAT with learned binary points from the same float models, three
# seeds; with each model's resource estimate (`qfx report`).
#
# Usage: bench/khot_results.sh [OUT_DIR]   (env: KHOT_WIDTHS, KS, and those of
# bench/fashion_results.sh, whose runs — float, PTQ, fixed, QFX — it reuses or makes first)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/fashion-results}
widths=${KHOT_WIDTHS:-"4 6"}
ks=${KS:-"2"}
seeds=${SEEDS:-"1 2 3"}
qat_epochs=${QAT_EPOCHS:-2}
bench/fashion_results.sh "$out" >/dev/null
qfx=${QFX:-target/release/qfx}
# has_checkpoint RUN: RUN wrote a checkpoint, so it is resumed (qfx never starts it over),
# even when its `latest` is missing (qfx then finds the newest checkpoint by scanning).
has_checkpoint() { [ -e "$1/checkpoints/latest" ] || compgen -G "$1/checkpoints/step-*" >/dev/null; }
for s in $seeds; do
  for w in $widths; do
    for k in $ks; do
      r="$out/khot$k-w$w-s$s"
      if [ ! -e "$r/model.ir.json" ]; then
        if has_checkpoint "$r"; then $qfx train --run "$r" --resume
        else $qfx train --run "$r" --from "$out/float-s$s" --bits "$w" --epochs "$qat_epochs" \
          --lr 1e-3 --set "quant.weight_khot={ k = $k }"; fi
      fi
      # The resource estimate, for the K-hot model and its plain counterpart.
      for run in "$r" "$out/qfx-w$w-s$s"; do
        [ -e "$run/report.md" ] || $qfx report --run "$run" --samples 20 >/dev/null
      done
    done
  done
done
python3 bench/khot_results_table.py "$out"
