"""Tables of bench/width_budget.sh: accuracy and LUT estimate per configuration (mean and
spread over seeds), the budget error of the learned-width runs, verify-hls mismatches, and the
per-layer widths one learned model chose."""
import glob
import json
import os
import re
import sys
from collections import defaultdict

out = sys.argv[1]


def last(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def mismatches(run):
    text = open(os.path.join(run, "verify.txt")).read()
    m = re.search(r"(\d+) mismatch", text)
    return int(m.group(1)) if m else text.strip().splitlines()[-1]


def width(fmt):
    return int(re.search(r"<(\d+)", fmt).group(1))


groups = defaultdict(list)
for run in sorted(glob.glob(os.path.join(out, "*-s[0-9]*"))):
    name = os.path.basename(run)
    if name.startswith("float") or not os.path.exists(os.path.join(run, "verify.txt")):
        continue
    config, seed = name.rsplit("-s", 1)
    m = last(run)
    groups[config].append((int(seed), m["test"]["top1"] * 100, m["cost"]["lut"], m["cost"]["dsp"], m.get("beta"), mismatches(run)))


def order(c):
    kind, *rest = c.split("-")
    n = int(re.sub(r"\D", "", rest[-1]))
    return ({"uniform": 0, "sized": 1, "learned": 2}[kind], c.split("-")[1] if kind == "learned" else "", n)


budgets = {}
for c in groups:
    if c.startswith("uniform-w"):
        w = c[len("uniform-w"):]
        budgets[w] = sum(r[2] for r in groups[c]) / len(groups[c])

print("| configuration | seeds | test top-1 (mean, min–max) | LUT estimate (mean, min–max) | DSP | vs budget | verify-hls mismatches |")
print("|---|---|---|---|---|---|---|")
for c in sorted(groups, key=order):
    rows = groups[c]
    acc = [r[1] for r in rows]
    lut = [r[2] for r in rows]
    dsp = max(r[3] for r in rows)
    vs = ""
    if c.startswith("learned"):
        b = budgets.get(c.rsplit("-b", 1)[1])
        if b:
            errs = [(l - round(b)) / round(b) * 100 for l in lut]
            vs = f"{min(errs):+.1f}% … {max(errs):+.1f}% of {round(b)}"
    mm = sum(r[5] for r in rows if isinstance(r[5], int))
    print(f"| {c} | {len(rows)} | {sum(acc)/len(acc):.2f}% ({min(acc):.1f}–{max(acc):.1f}) | {sum(lut)/len(lut):.0f} ({min(lut)}–{max(lut)}) | {dsp} | {vs} | {mm} |")

# Per-layer widths of one learned model.
runs = sorted(glob.glob(os.path.join(out, "learned-lut-b*-s1")))
if runs:
    run = runs[0]
    ir = json.load(open(os.path.join(run, "model.ir.json")))
    print(f"\nWidths chosen by {os.path.basename(run)} (weights: per output channel, min–max and mean; activations: per tensor):\n")
    print("| layer | output | weight widths | all-zero channels |")
    print("|---|---|---|---|")
    for layer in ir["layers"]:
        body = layer["op"]
        out_fmt = layer["output"]
        wtxt, pruned = "", ""
        for key in ("weight", "scale"):
            if isinstance(body, dict) and key in body:
                fm = body[key]["formats"]
                ws = [width(f) for f in fm]
                codes = body[key]["codes"]
                wtxt = f"{key} {min(ws)}–{max(ws)} (mean {sum(ws)/len(ws):.1f})"
                n = len(fm)
                if n > 1:
                    per = len(codes) // n
                    shape = body[key]["shape"]
                    axis = body[key].get("axis")
                    pruned_n = 0
                    if axis is not None:
                        inner = 1
                        for d in shape[axis + 1:]:
                            inner *= d
                        for ch in range(shape[axis]):
                            vals = [codes[i] for i in range(len(codes)) if (i // inner) % shape[axis] == ch]
                            pruned_n += all(v == 0 for v in vals)
                    pruned = f"{pruned_n} of {n}"
        print(f"| {layer['name']} ({body['kind']}) | {width(out_fmt)} bits | {wtxt} | {pruned} |")
