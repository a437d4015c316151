"""Summarizes bench/rtl_results.sh and bench/rtl_results_images.sh: per model, the bit-exact
engine's test accuracy, the Verilog design's verification (mismatches, latency, clocks per
inference) and Yosys's measured resources, with and without CSE where both were synthesized."""
import json, os, re, sys

out = sys.argv[1]

def grab(path, pattern, cast=float):
    if not os.path.exists(path):
        return None
    m = re.search(pattern, open(path).read())
    return cast(m.group(1)) if m else None

def describe(name):
    """(network, W, weights) from a run folder's name."""
    m = re.fullmatch(r"(?:(cnn)-)?w(\d+)-(plain|\d)", name)
    if m:
        net = "small CNN 8/16" if m.group(1) else "jet MLP 16-64-32-32-5"
        k = m.group(3)
        return net, m.group(2), "plain fixed point" if k == "plain" else f"{k}-hot"
    if name == "bnn-fixed":
        return "binarized 8/16/16", "12", "fixed point (±1 convs)"
    m = re.fullmatch(r"bnn-khot(\d)", name)
    if m:
        return "binarized 8/16/16", "12", f"{m.group(1)}-hot (±1 convs)"
    return None

rows = []
for name in sorted(os.listdir(out)):
    r = os.path.join(out, name)
    d = describe(name)
    if d is None or not os.path.exists(os.path.join(r, "rtl", "synth.json")):
        continue
    s = json.load(open(os.path.join(r, "rtl", "synth.json")))
    t = s["total"]
    verify = os.path.join(r, "verify.txt")
    nocse = os.path.join(r, "rtl-nocse", "synth.json")
    saving = "-"
    if os.path.exists(nocse):
        n = json.load(open(nocse))["total"]["lut"]
        saving = f"{n:,} → {t['lut']:,} ({100.0 * (n - t['lut']) / n:.1f}%)"
    key = (d[0], int(d[1]), d[2])
    acc = grab(os.path.join(r, "eval.txt"), r"bit-exact integer engine: top-1 ([\d.]+)%")
    mism = grab(verify, r"compared: (\d+) mismatches", int)
    samples = grab(verify, r"(\d+) samples", int)
    latency = grab(verify, r"latency (\d+) cycles", int)
    interval = grab(verify, r"cycles, ([\d.]+) cycle", float)
    rows.append((key, [
        d[0], d[1], d[2],
        f"{acc:.2f}",
        f"{mism} / {samples}",
        str(latency),
        f"{interval:.0f}",
        f"{t['lut']:,}", f"{t['ff']:,}", f"{t['carry']:,}", f"{t['dsp']:,}", f"{t['bram']:g}",
        saving,
    ]))
order = {"jet MLP 16-64-32-32-5": 0, "small CNN 8/16": 1, "binarized 8/16/16": 2}
# Plain (or fixed-point) weights first, then K ascending.
rows.sort(key=lambda kv: (order.get(kv[0][0], 9), kv[0][1], kv[0][2][0].isdigit(), kv[0][2]))
print("| network | W | weights | test top-1 (%, bit-exact) | RTL mismatches / inputs | latency (cycles) "
      "| cycles per inference | LUT | FF | CARRY | DSP | BRAM | LUT without → with CSE |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for _, cells in rows:
    print("| " + " | ".join(cells) + " |")
yosys = None
for root, _, files in os.walk(out):
    if "synth.json" in files:
        yosys = json.load(open(os.path.join(root, "synth.json")))["yosys"]
        break
print(f"\nMeasured with {yosys}, `synth_xilinx -family xcup`, hierarchy kept, no I/O buffers.")
