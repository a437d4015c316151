#!/usr/bin/env bash
# Slice-quantize benchmark (issue 2): qfx's kernels against a plain memcpy and against the
# composed PyTorch emulation peers use, measured in one run on this machine.
#
#   bench/slice_quantize.sh
#
# PyTorch lives only in this benchmark's own virtual environment (target/bench-venv), never in
# the build or the tests. The first run installs it from PyPI (several GB: the Linux wheel
# depends on the CUDA runtime libraries even when only the CPU is used).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/bench-venv
if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  echo "installing PyTorch into $venv (first run only)..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet torch numpy
fi

out=target/bench-results
mkdir -p "$out"
# cargo runs benches from the crate folder: hand it an absolute path.
cargo bench -p qfx-fixed --bench slice_quantize -- --json "$PWD/$out/slice_qfx.json"
"$venv/bin/python" bench/slice_quantize_torch.py --json "$out/slice_torch.json"
python3 bench/slice_report.py "$out/slice_qfx.json" "$out/slice_torch.json"
