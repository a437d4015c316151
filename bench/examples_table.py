#!/usr/bin/env python3
"""Prints the examples' results table from their run directories (examples/run.sh):
test accuracy of the float model, PTQ and QFX at each width (from each run's latest
checkpoint), and what verify-hls found (from verifyW.txt).

    python3 bench/examples_table.py RUNS [EXAMPLE ...]
"""

import json
import os
import re
import sys

EXAMPLES = ["jet_mlp", "dscnn_fashion", "signal_cnn"]


def meta(run):
    try:
        with open(os.path.join(run, "checkpoints", "latest")) as f:
            name = f.read().strip()
        with open(os.path.join(run, "checkpoints", name, "meta.json")) as f:
            return json.load(f)
    except OSError:
        return None


def score(run):
    m = meta(run)
    if m is None or not m.get("finished"):
        return "-"
    if m.get("test_accuracy") is not None:
        return "%.2f%%" % (100 * m["test_accuracy"])
    if m.get("test_mse") is not None:
        return "MSE %.4f" % m["test_mse"]
    return "-"


def verify(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return "-"
    m = re.search(r"(\d+) samples, (\d+) output values compared: (\d+) mismatches", text)
    if not m:
        return "-"
    return "%s / %s inputs (%s values)" % (m.group(3), m.group(1), m.group(2))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    runs = sys.argv[1]
    examples = sys.argv[2:] or EXAMPLES
    print("| example | W | float | PTQ | QFX | verify-hls mismatches |")
    print("|---|---|---|---|---|---|")
    for ex in examples:
        d = os.path.join(runs, ex)
        widths = sorted(
            int(n[3:]) for n in os.listdir(d) if re.fullmatch(r"qfx\d+", n)
        ) if os.path.isdir(d) else []
        for w in widths:
            print("| %s | %d | %s | %s | %s | %s |" % (
                ex, w, score(os.path.join(d, "float")), score(os.path.join(d, "ptq%d" % w)),
                score(os.path.join(d, "qfx%d" % w)), verify(os.path.join(d, "verify%d.txt" % w))))


if __name__ == "__main__":
    main()
