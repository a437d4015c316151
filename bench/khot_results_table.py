"""Summarizes bench/khot_results.sh: accuracy (mean ± spread over seeds) and the resource
estimate of plain and K-hot small CNNs, per weight width W."""
import glob, json, os, re, statistics, sys

out = sys.argv[1]

def acc(run):
    d = os.path.join(run, "checkpoints")
    latest = open(os.path.join(d, "latest")).read().strip()
    return json.load(open(os.path.join(d, latest, "meta.json")))["test_accuracy"] * 100

def estimate(run):
    text = open(os.path.join(run, "report.md")).read()
    m = re.search(r"reuse factor 1\): (\d+) DSP, about (\d+) LUT", text)
    return int(m.group(1)), int(m.group(2))

def cell(pattern):
    runs = sorted(glob.glob(os.path.join(out, pattern)))
    vals = [acc(r) for r in runs]
    if not vals:
        return "-", None, None
    mean = statistics.mean(vals)
    costs = [estimate(r) for r in runs if os.path.exists(os.path.join(r, "report.md"))]
    cost = costs[0] if costs else None
    return f"{mean:.2f} ± {(max(vals) - min(vals)) / 2:.2f} (n={len(vals)})", mean, cost

runs = glob.glob(os.path.join(out, "khot*-w*-s*"))
keys = sorted({(int(p.split("khot")[-1].split("-")[0]), int(p.split("-w")[-1].split("-")[0])) for p in runs})
print("| W | weights | test top-1 (%) | accuracy cost | est. DSP | est. LUT |")
print("|---|---|---|---|---|---|")
for w in sorted({w for _, w in keys}):
    plain, pm, pc = cell(f"qfx-w{w}-s*")
    print(f"| {w} | plain fixed point | {plain} | | {pc[0] if pc else '-'} | {pc[1] if pc else '-'} |")
    for k in sorted({k for k, ww in keys if ww == w}):
        c, m, cost = cell(f"khot{k}-w{w}-s*")
        d = f"{pm - m:+.2f}" if m is not None and pm is not None else "-"
        print(f"| {w} | {k}-hot | {c} | {d} | {cost[0] if cost else '-'} | {cost[1] if cost else '-'} |")
