"""Summarizes bench/bnn_results.sh: accuracy (mean ± half the min–max spread over seeds),
the resource estimate of the first seed's model, and its HLS verification."""
import glob, json, os, re, statistics, sys

out = sys.argv[1]


def acc(run):
    d = os.path.join(run, "checkpoints")
    latest = open(os.path.join(d, "latest")).read().strip()
    return json.load(open(os.path.join(d, latest, "meta.json")))["test_accuracy"] * 100


def estimate(run):
    m = re.search(r"reuse factor 1\): (\d+) DSP, about (\d+) LUT",
                  open(os.path.join(run, "report.md")).read())
    return f"{int(m.group(1)):,}", f"{int(m.group(2)):,}"


def mismatches(run):
    path = os.path.join(run, "verify.log")
    if not os.path.exists(path):
        return "-"
    m = re.search(r"(\d+) samples, \d+ output values compared: (\d+) mismatches",
                  open(path).read())
    return f"{m.group(2)} ({m.group(1)} images)" if m else "failed"


def row(name, pattern, baseline):
    runs = sorted(glob.glob(os.path.join(out, pattern)))
    if not runs:
        return None
    vals = [acc(r) for r in runs]
    mean = statistics.mean(vals)
    cost = f"{baseline - mean:+.2f}" if baseline is not None else ""
    dsp, lut = estimate(runs[0]) if os.path.exists(os.path.join(runs[0], "report.md")) else ("-", "-")
    print(f"| {name} | {mean:.2f} ± {(max(vals) - min(vals)) / 2:.2f} (n={len(vals)}) | {cost} "
          f"| {dsp} | {lut} | {mismatches(runs[0])} |")
    return mean


print("| element-wise multipliers | test top-1 (%) | accuracy cost | est. DSP | est. LUT "
      "| HLS mismatches |")
print("|---|---|---|---|---|---|")
base = row("fixed point", "bnn-fixed-s*", None)
ks = sorted({int(re.search(r"khot(\d+)-", p).group(1))
             for p in glob.glob(os.path.join(out, "bnn-khot*-s*"))})
for k in ks:
    row(f"{k}-hot", f"bnn-khot{k}-s*", base)
