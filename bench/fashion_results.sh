#!/usr/bin/env bash
# The issue-4 results table: the small CNN on full Fashion-MNIST, every tensor quantized
# (weights, biases, accumulators, BatchNorm, activations), at W = 4, 6 and 8 bits:
# float, PTQ, QAT with frozen calibrated binary points ("fixed"), and QAT with learned binary
# points (QFX), three seeds each. Prints mean ± spread (half the min–max range) per cell.
#
# Usage: bench/fashion_results.sh [OUT_DIR]   (env: FLOAT_EPOCHS, QAT_EPOCHS, SEEDS, WIDTHS,
# DATA, QFX = a prebuilt qfx binary)
# Needs the full data set: scripts/fetch-fashion-mnist (default data/fashion-mnist-full).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/fashion-results}
data=${DATA:-data/fashion-mnist-full}
float_epochs=${FLOAT_EPOCHS:-6}
qat_epochs=${QAT_EPOCHS:-2}
seeds=${SEEDS:-"1 2 3"}
widths=${WIDTHS:-"4 6 8"}
[ -e "$data/train-images-idx3-ubyte.gz" ] || [ -e "$data/train-images-idx3-ubyte" ] || {
  echo "no Fashion-MNIST in $data: run scripts/fetch-fashion-mnist first" >&2; exit 1; }
if [ -z "${QFX:-}" ]; then cargo build --release --locked -p qfx; fi
qfx=${QFX:-target/release/qfx}
# has_checkpoint RUN: RUN wrote a checkpoint, so it is resumed (qfx never starts it over),
# even when its `latest` is missing (qfx then finds the newest checkpoint by scanning).
has_checkpoint() { [ -e "$1/checkpoints/latest" ] || compgen -G "$1/checkpoints/step-*" >/dev/null; }
mkdir -p "$out"
for s in $seeds; do
  f="$out/float-s$s"
  if [ ! -e "$f/model.done" ]; then
    if has_checkpoint "$f"; then $qfx train --run "$f" --resume  # killed earlier
    else $qfx train --run "$f" --float --data "$data" --epochs "$float_epochs" --seed "$s"; fi
    touch "$f/model.done"
  fi
  for w in $widths; do
    [ -e "$out/ptq-w$w-s$s/model.ir.json" ] || $qfx ptq --from "$f" --run "$out/ptq-w$w-s$s" --bits "$w"
    for kind in fixed qfx; do
      r="$out/$kind-w$w-s$s"
      [ -e "$r/model.ir.json" ] && continue
      if has_checkpoint "$r"; then $qfx train --run "$r" --resume; continue; fi
      extra=(); [ $kind = fixed ] && extra=(--fixed-points)
      $qfx train --run "$r" --from "$f" --bits "$w" --epochs "$qat_epochs" --lr 1e-3 "${extra[@]}"
    done
  done
done
python3 bench/fashion_results_table.py "$out"
