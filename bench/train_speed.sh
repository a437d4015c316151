#!/usr/bin/env bash
# Training speed against PyTorch on this machine's CPU (issue "faster than PyTorch's fake
# quantization"), every configuration in its own process, all in one run, repeated in rounds
# (the medians are reported) so a noisy machine affects every configuration alike:
#   small-CNN epoch (6,000 images, batch 64, Adam) and ResNet-20 step (batch 128, SGD):
#     qfx float and 4-/8-bit QAT with qfx's kernels, the same with burn's (QFX_KERNELS=burn),
#     PyTorch plain and with fake quantization at the same cast points;
#   per-kernel times: max pooling, convolution forward, forward + backward: qfx, burn, PyTorch.
#
#   bench/train_speed.sh [rounds]      (default 3; about 10 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}

venv=target/bench-venv
if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  echo "installing PyTorch into $venv (first run only)..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --no-cache-dir torch==2.15.0 numpy==2.4.6
fi
py="$PWD/$venv/bin/python"

out="$PWD/target/bench-results/train-speed"
rm -rf "$out"
mkdir -p "$out"
cargo bench -p qfx-train --bench train_speed --bench resnet_step --no-run 2>&1 | tail -1
run() { cargo bench -q -p qfx-train --bench "$@"; }

for r in $(seq 1 "$rounds"); do
  echo "== round $r of $rounds" >&2
  for k in own burn; do
    for q in float qat; do
      QFX_KERNELS=$k run train_speed -- epoch --quant $q --json "$out/cnn_qfx_${k}_${q}_$r.json"
      QFX_KERNELS=$k run resnet_step -- --mode $q --steps 5 --json "$out/resnet_qfx_${k}_${q}_$r.json" | tail -1
    done
  done
  for m in plain qat; do
    (cd bench && "$py" train_speed_torch.py epoch --mode $m --json "$out/cnn_torch_${m}_$r.json")
    "$py" bench/resnet_step_torch.py --mode $m --steps 5 --json "$out/resnet_torch_${m}_$r.json" | tail -1
  done
done
QFX_KERNELS=own run train_speed -- kernels --json "$out/kernels_qfx_own.json" > /dev/null
QFX_KERNELS=burn run train_speed -- kernels --json "$out/kernels_qfx_burn.json" > /dev/null
(cd bench && "$py" train_speed_torch.py kernels --json "$out/kernels_torch.json" > /dev/null)

python3 bench/train_speed_table.py "$out" "$rounds"
