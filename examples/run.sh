#!/usr/bin/env bash
# One example from training to verify-hls, at each width given:
#
#   examples/run.sh jet_mlp|dscnn_fashion|signal_cnn [BITS ...]     (default: 8)
#
# float training (the example's TOML), then per width W: PTQ (`qfx ptq`), QFX (QAT with learned
# binary points from the float model), HLS export of the QFX model and `qfx verify-hls` on 200
# test samples (g++ against the real ap_types headers, fetched on first use). Runs go to
# ${RUNS:-runs/examples}/EXAMPLE/{float,ptqW,qfxW,hlsW}; finished runs are kept, interrupted
# ones resumed, so the script can be run again. QFX=path/to/qfx picks the binary (default
# target/release/qfx, built when missing). Ends with the example's rows of the results table.
set -euo pipefail
cd "$(dirname "$0")/.."

example=${1:?usage: examples/run.sh jet_mlp|dscnn_fashion|signal_cnn [BITS ...]}
shift
widths=("$@")
[ ${#widths[@]} -gt 0 ] || widths=(8)
QFX=${QFX:-target/release/qfx}
RUNS=${RUNS:-runs/examples}

# The float model trains as the TOML says; QFX continues from it for a few epochs at a lower
# learning rate.
case $example in
  jet_mlp) config=examples/jet_mlp/jet_mlp.toml qat_epochs=15 qat_lr=0.003 ;;
  dscnn_fashion) config=examples/dscnn_fashion/dscnn.toml qat_epochs=8 qat_lr=0.003 ;;
  signal_cnn) config=examples/signal_cnn/signal_cnn.toml qat_epochs=15 qat_lr=0.003 ;;
  *) echo "examples/run.sh: unknown example '$example'" >&2; exit 2 ;;
esac
[ -x "$QFX" ] || cargo build --release -p qfx

dir=$RUNS/$example
mkdir -p "$dir"

finished() { # run directory → 0 when its latest checkpoint finished all epochs
  [ -f "$1/checkpoints/latest" ] &&
    grep -q '"finished": true' "$1/checkpoints/$(cat "$1/checkpoints/latest")/meta.json"
}

train() { # run directory, then the flags of a fresh run
  local run=$1
  shift
  if finished "$run"; then
    echo "== $run: finished earlier, kept"
  elif [ -f "$run/checkpoints/latest" ]; then
    "$QFX" train --run "$run" --resume
  else
    "$QFX" train --config "$config" --run "$run" "$@"
  fi
}

echo "== $example: float training"
train "$dir/float" --float
for w in "${widths[@]}"; do
  echo "== $example: PTQ at $w bits"
  if finished "$dir/ptq$w"; then
    echo "== $dir/ptq$w: finished earlier, kept"
  else
    "$QFX" ptq --from "$dir/float" --run "$dir/ptq$w" --bits "$w"
  fi
  echo "== $example: QFX (QAT with learned binary points) at $w bits"
  train "$dir/qfx$w" --from "$dir/float" --bits "$w" --epochs "$qat_epochs" --lr "$qat_lr"
  echo "== $example: HLS export and verify-hls at $w bits"
  "$QFX" export hls --checkpoint "$dir/qfx$w" --out "$dir/hls$w"
  "$QFX" verify-hls --project "$dir/hls$w" --data "$config" --samples 200 | tee "$dir/verify$w.txt"
done
python3 bench/examples_table.py "$RUNS" "$example"
