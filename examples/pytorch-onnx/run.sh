#!/usr/bin/env bash
# A model nobody wrote for qfx, from PyTorch to a bit-exact Vitis HLS project:
#   1. train a small CNN in PyTorch on the embedded Fashion-MNIST subset, export it to ONNX;
#   2. qfx import onnx (a float run), qfx eval (the imported float model);
#   3. PTQ and QFX (QAT with learned binary points) at 4 and 6 bits;
#   4. qfx export hls and qfx verify-hls of the 4- and 6-bit QFX models.
# PyTorch lives in its own virtual environment under target/ (never in the build or the tests).
# Usage: examples/pytorch-onnx/run.sh [OUT_DIR]   (default target/pytorch-onnx)
# QFX=path/to/qfx uses that binary (default: builds and uses the release one).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-target/pytorch-onnx}
venv=target/torch-venv
if ! "$venv/bin/python" -c 'import torch, onnx' >/dev/null 2>&1 && [ ! -f "$out/cnn.onnx" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --no-cache-dir torch==2.15.0 onnx==1.23.2 numpy==2.4.6
fi
qfx=${QFX:-}
if [ -z "$qfx" ]; then
  cargo build --release --locked -p qfx
  qfx=target/release/qfx
fi
mkdir -p "$out"
runs="$out/runs"
if [ -e "$runs" ]; then
  echo "$runs exists: remove it or give another OUT_DIR" >&2
  exit 1
fi
data=data/fashion-mnist-subset

# Training is skipped when OUT_DIR already holds the exported model and its training log.
if [ ! -f "$out/cnn.onnx" ] || [ ! -f "$out/pytorch.log" ]; then
  "$venv/bin/python" examples/pytorch-onnx/train_export.py "$out" 8 | tee "$out/pytorch.log"
fi
"$qfx" import onnx "$out/cnn.onnx" --run "$runs/float" --normalize 0.2860,0.3530
"$qfx" eval --checkpoint "$runs/float" | tee "$out/float.log"
for bits in 4 6; do
  "$qfx" ptq --from "$runs/float" --run "$runs/ptq$bits" --bits "$bits" | tee "$out/ptq$bits.log"
  "$qfx" train --from "$runs/float" --run "$runs/qfx$bits" --bits "$bits" --epochs 4 --lr 0.001 \
    | tee "$out/qfx$bits.log"
  "$qfx" export hls --checkpoint "$runs/qfx$bits" --out "$out/hls$bits"
  "$qfx" verify-hls --project "$out/hls$bits" --data "$data" --samples 200 | tee "$out/verify$bits.log"
done

echo
echo "== Fashion-MNIST subset, 1000 test images, top-1"
pct() { grep -o "$1" "$2" | tail -1 | grep -o '[0-9.]*%'; }
printf '%-34s %s\n' "float (PyTorch)" "$(pct 'float test top-1: [0-9.]*%' "$out/pytorch.log")"
printf '%-34s %s\n' "float (qfx, imported)" "$(pct 'top-1 [0-9.]*%' "$out/float.log")"
for bits in 4 6; do
  printf '%-34s %s\n' "PTQ $bits bits" "$(pct 'top-1 [0-9.]*%' "$out/ptq$bits.log")"
  printf '%-34s %s\n' "QFX $bits bits (QAT, learned points)" "$(pct 'top-1 [0-9.]*%' "$out/qfx$bits.log")"
  printf '%-34s %s\n' "verify-hls $bits bits" "$(grep -o '[0-9]* mismatches' "$out/verify$bits.log" | tail -1)"
done
