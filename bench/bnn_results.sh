#!/usr/bin/env bash
# The issue-6 binarized-network table: the BNN (`qfx train --model bnn`: fixed-point stem,
# three binary residual blocks with ±1 weights and activations, fixed-point BatchNorm, adds and
# learnable-slope PReLUs, global average pooling, fixed-point classifier) on full Fashion-MNIST.
#   bnn-sS         QAT from scratch, every non-binary tensor BITS-bit fixed point, learned points
#   bnn-fixed-sS   + FT_EPOCHS more epochs, same formats (the fixed-point element-wise baseline)
#   bnn-khotK-sS   + FT_EPOCHS epochs with every non-binary multiplier K-hot: stem and classifier
#                  weights, BatchNorm scales, PReLU slopes (quant.weight_khot, bn_khot, slope_khot)
# Three seeds; each run's resource estimate (`qfx report`); the seed-1 models are exported to
# HLS and verified bit for bit on 200 test images (`qfx verify-hls`).
#
# Usage: bench/bnn_results.sh [OUT_DIR]   (env: SEEDS, KS, BITS, EPOCHS, FT_EPOCHS, DATA, QFX)
# Needs the full data set: scripts/fetch-fashion-mnist (default data/fashion-mnist-full).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bnn-results}
data=${DATA:-data/fashion-mnist-full}
seeds=${SEEDS:-"1 2 3"}
ks=${KS:-"1 2 3"}
bits=${BITS:-12}
epochs=${EPOCHS:-5}
ft_epochs=${FT_EPOCHS:-1}
[ -e "$data/train-images-idx3-ubyte.gz" ] || [ -e "$data/train-images-idx3-ubyte" ] || {
  echo "no Fashion-MNIST in $data: run scripts/fetch-fashion-mnist first" >&2; exit 1; }
if [ -z "${QFX:-}" ]; then cargo build --release --locked -p qfx; fi
qfx=${QFX:-target/release/qfx}
# has_checkpoint RUN: RUN wrote a checkpoint, so it is resumed (qfx never starts it over),
# even when its `latest` is missing (qfx then finds the newest checkpoint by scanning).
has_checkpoint() { [ -e "$1/checkpoints/latest" ] || compgen -G "$1/checkpoints/step-*" >/dev/null; }
mkdir -p "$out"

# train RUN ARGS...: trains unless RUN is finished; resumes a killed run.
train() {
  local r=$1; shift
  [ -e "$r/model.ir.json" ] && return 0
  if has_checkpoint "$r"; then $qfx train --run "$r" --resume
  else $qfx train --run "$r" "$@"; fi
}

for s in $seeds; do
  base="$out/bnn-s$s"
  train "$base" --model bnn --data "$data" --bits "$bits" --epochs "$epochs" --seed "$s"
  train "$out/bnn-fixed-s$s" --from "$base" --epochs "$ft_epochs" --lr 5e-4
  for k in $ks; do
    train "$out/bnn-khot$k-s$s" --from "$base" --epochs "$ft_epochs" --lr 5e-4 \
      --set "quant.weight_khot={ k = $k }" --set "quant.bn_khot={ k = $k }" \
      --set "quant.slope_khot={ k = $k }"
  done
  for r in "$out/bnn-fixed-s$s" "$out"/bnn-khot*-s$s; do
    [ -e "$r/report.md" ] || $qfx report --run "$r" --samples 20 >/dev/null
  done
done

# Bit-exact deployment of the seed-1 models.
first=${seeds%% *}
for r in "$out/bnn-fixed-s$first" "$out"/bnn-khot*-s$first; do
  [ -e "$r/verify.log" ] && continue
  $qfx export hls --checkpoint "$r" --out "$r/hls" >/dev/null
  $qfx verify-hls --project "$r/hls" --data "$data" --samples 200 > "$r/verify.log.tmp" 2>&1
  mv "$r/verify.log.tmp" "$r/verify.log"
done
python3 bench/bnn_results_table.py "$out"
