"""Summarizes bench/fashion_results.sh: test accuracy mean ± spread over seeds, per W and method."""
import glob, json, os, statistics, sys

out = sys.argv[1]

def acc(run):
    d = os.path.join(run, "checkpoints")
    latest = open(os.path.join(d, "latest")).read().strip()
    return json.load(open(os.path.join(d, latest, "meta.json")))["test_accuracy"] * 100

def cell(pattern):
    runs = sorted(glob.glob(os.path.join(out, pattern)))
    vals = [acc(r) for r in runs]
    if not vals:
        return "-", None
    mean = statistics.mean(vals)
    return f"{mean:.2f} ± {(max(vals) - min(vals)) / 2:.2f} (n={len(vals)})", mean

float_cell, _ = cell("float-s*")
widths = sorted({int(p.split("-w")[1].split("-")[0]) for p in glob.glob(os.path.join(out, "ptq-w*"))})
print("| W | float | PTQ | QAT, fixed points | QFX (learned points) | QFX − PTQ | float − QFX |")
print("|---|---|---|---|---|---|---|")
_, fmean = cell("float-s*")
for w in widths:
    p, pm = cell(f"ptq-w{w}-s*")
    f, _ = cell(f"fixed-w{w}-s*")
    q, qm = cell(f"qfx-w{w}-s*")
    d1 = f"{qm - pm:+.2f}" if qm is not None and pm is not None else "-"
    d2 = f"{fmean - qm:+.2f}" if qm is not None and fmean is not None else "-"
    print(f"| {w} | {float_cell} | {p} | {f} | {q} | {d1} | {d2} |")
