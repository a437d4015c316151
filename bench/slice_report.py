"""Combines the qfx and PyTorch slice-quantize timings of one run into the README's table."""
import json
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


qfx, torch = load(sys.argv[1]), load(sys.argv[2])
assert qfx["n"] == torch["n"], "both sides must quantize the same number of values"
t = {(r["kernel"], r["threads"]): r["seconds"] for r in qfx["results"] + torch["results"]}
print(f"\nslice quantize, {qfx['n']} f32 values (PyTorch {torch['torch']}); ratios from this run")
print("| format | threads | qfx vs memcpy (t_memcpy / t_qfx) | qfx speed-up over PyTorch (t_torch / t_qfx) |")
print("|---|---|---|---|")
for fmt in ("ap_fixed<8,3,AP_RND_CONV,AP_SAT>", "ap_fixed<16,6,AP_TRN,AP_WRAP>"):
    for threads in (1, 2):
        q = t[(f"qfx {fmt}", threads)]
        m = t[("qfx memcpy", threads)]
        p = t[(f"torch {fmt}", threads)]
        print(f"| `{fmt}` | {threads} | {100 * m / q:.0f}% | {p / q:.1f}x |")
