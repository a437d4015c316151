"""Tables of bench/train_speed.sh: medians over the rounds, ratios to PyTorch from the same run.

    python3 bench/train_speed_table.py RESULTS_DIR ROUNDS
"""
import json
import os
import platform
import statistics
import sys

d, rounds = sys.argv[1], int(sys.argv[2])


def load(name):
    with open(os.path.join(d, name)) as f:
        return json.load(f)


def median(prefix):
    values = []
    for r in range(1, rounds + 1):
        v = load(f"{prefix}_{r}.json")
        values.append((v[0] if isinstance(v, list) else v)["seconds"])
    return statistics.median(values)


torch_version = load("cnn_torch_plain_1.json")["torch"]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"\nMachine: {cpu}, {os.cpu_count()} cores; PyTorch {torch_version} on 2 threads; medians of {rounds} rounds.")

for title, net, unit in (("Small CNN, one epoch (6,000 images, batch 64, Adam)", "cnn", "s"), ("ResNet-20, one training step (batch 128, SGD)", "resnet", "s")):
    tp, tq = median(f"{net}_torch_plain"), median(f"{net}_torch_qat")
    print(f"\n{title}")
    print("| configuration | time | / PyTorch plain | / PyTorch fake-quant |")
    print("|---|---|---|---|")
    rows = [("PyTorch plain", tp), ("PyTorch fake-quant", tq)]
    for k, label in (("own", "qfx kernels"), ("burn", "burn kernels")):
        rows.append((f"qfx float ({label})", median(f"{net}_qfx_{k}_float")))
        rows.append((f"qfx QAT ({label})", median(f"{net}_qfx_{k}_qat")))
    for name, s in rows:
        print(f"| {name} | {s:.3f} {unit} | {s / tp:.2f} | {s / tq:.2f} |")

own, burn, torch = (load(f"kernels_{n}.json") for n in ("qfx_own", "qfx_burn", "torch"))
print("\nPer kernel (median of repeated calls; forward + backward includes the autodiff bookkeeping)")
print("| kernel | qfx | burn | PyTorch | qfx / PyTorch | qfx / burn |")
print("|---|---|---|---|---|---|")
for o, b, t in zip(own, burn, torch):
    assert o["name"] == b["name"] == t["name"], (o, b, t)
    print(f"| {o['name']} | {o['seconds'] * 1e3:.2f} ms | {b['seconds'] * 1e3:.2f} ms | {t['seconds'] * 1e3:.2f} ms | {o['seconds'] / t['seconds']:.2f} | {o['seconds'] / b['seconds']:.2f} |")
