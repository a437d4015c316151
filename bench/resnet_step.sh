#!/usr/bin/env bash
# ResNet-20 training-step benchmark (issue 3): batch 128, 32×32×3 random input, forward +
# backward + SGD, on this machine's CPU, all in one run:
#   qfx on burn Flex, quantizers off (float) and on (8-bit QAT, learned binary points);
#   PyTorch plain and PyTorch with fake quantization at the same cast points.
# Each configuration runs in its own process so its peak memory is its own.
#
#   bench/resnet_step.sh [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-5}

venv=target/bench-venv
if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  echo "installing PyTorch into $venv (first run only)..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet torch numpy
fi

out="$PWD/target/bench-results"
mkdir -p "$out"
cargo bench -p qfx-train --bench resnet_step --no-run
for mode in float qat; do
  cargo bench -q -p qfx-train --bench resnet_step -- --mode "$mode" --steps "$steps" --json "$out/resnet_qfx_$mode.json"
done
for mode in plain qat; do
  "$venv/bin/python" bench/resnet_step_torch.py --mode "$mode" --steps "$steps" --json "$out/resnet_torch_$mode.json"
done
python3 - "$out" <<'PY'
import json, sys
d = sys.argv[1]
load = lambda n: json.load(open(f"{d}/{n}.json"))
qf, qq = load("resnet_qfx_float")[0], load("resnet_qfx_qat")[0]
tp, tq = load("resnet_torch_plain"), load("resnet_torch_qat")
print(f"\nResNet-20 training step, batch 128 (PyTorch {tp['torch']}); ratios from this run")
print("| configuration | step time / PyTorch plain | peak memory |")
print("|---|---|---|")
for name, r in (("PyTorch plain", tp), ("PyTorch fake-quant", tq), ("qfx float (burn Flex)", qf), ("qfx QAT (burn Flex)", qq)):
    print(f"| {name} | {r['seconds'] / tp['seconds']:.2f} | {r['peak_mib']:.0f} MiB |")
print(f"\nqfx QAT / qfx float: {qq['seconds'] / qf['seconds']:.2f}x; qfx QAT / PyTorch fake-quant: {qq['seconds'] / tq['seconds']:.2f}x")
PY
