"""Summarizes bench/rtl_results.sh: per model, accuracy of the bit-exact engine, the Verilog
design's verification and latency, and Yosys's measured resources with and without CSE."""
import json, os, re, sys

out = sys.argv[1]

def grab(path, pattern, cast=float):
    m = re.search(pattern, open(path).read())
    return cast(m.group(1)) if m else None

def synth(path):
    return json.load(open(path))["total"]

rows = []
print("| W | weights | test top-1 (%, bit-exact) | RTL mismatches (200 inputs) | latency (cycles) "
      "| LUT | FF | CARRY | DSP | LUT without CSE | CSE saving |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for w in (6, 12):
    for k in ("plain", "1", "2", "3"):
        r = os.path.join(out, f"w{w}-{k}")
        if not os.path.exists(os.path.join(r, "rtl", "synth.json")):
            continue
        acc = grab(os.path.join(r, "eval.txt"), r"bit-exact integer engine: top-1 ([\d.]+)%")
        verify = os.path.join(r, "verify.txt")
        mism = grab(verify, r"compared: (\d+) mismatches", int)
        lat = grab(verify, r"latency (\d+) cycles", int)
        s = synth(os.path.join(r, "rtl", "synth.json"))
        n = synth(os.path.join(r, "rtl-nocse", "synth.json"))
        saving = 100.0 * (n["lut"] - s["lut"]) / n["lut"] if n["lut"] else 0.0
        name = "plain fixed point" if k == "plain" else f"{k}-hot"
        print(f"| {w} | {name} | {acc:.2f} | {mism} | {lat} | {s['lut']:,} | {s['ff']:,} | "
              f"{s['carry']:,} | {s['dsp']:,} | {n['lut']:,} | {saving:.1f}% |")
yosys = None
for root, _, files in os.walk(out):
    if "synth.json" in files:
        yosys = json.load(open(os.path.join(root, "synth.json")))["yosys"]
        break
print(f"\nMeasured with {yosys}, synth_xilinx -family xcup, hierarchy kept, no I/O buffers.")
