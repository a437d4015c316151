"""PyTorch twins of crates/qfx-train/benches/train_speed.rs, same shapes and settings.

    python train_speed_torch.py epoch --mode plain|qat [--images N] --json PATH
        one epoch of the small CNN (conv16-BN-ReLU-pool, conv32-BN-ReLU-pool, linear), batch 64,
        Adam, seeded random images; `qat` fake-quantizes the cast points qfx's 4-bit small CNN
        has: input; per-channel conv weights, accumulator (wrapping), output; BatchNorm folded
        into a quantized per-channel scale and shift, and its output; ReLU outputs; classifier
        weights, bias, accumulator and logits (FakeQuant of resnet_step_torch.py, learned
        binary points with the same straight-through gradients).
    python train_speed_torch.py kernels --json PATH
        max pooling and convolution (forward, forward + backward) on the same shapes as qfx's.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from resnet_step_torch import QBN, Q, QConv, QReLU

W = 4  # the demo's width


def conv_block(cin, cout, quant):
    """conv–BN–ReLU–maxpool, the modules (and cast points) of resnet_step_torch.py at W bits."""
    return nn.Sequential(
        QConv(cin, cout, 3, 1, 1, quant, W), QBN(cout, quant, W), QReLU(quant, W), nn.MaxPool2d(2)
    )


class SmallCnn(nn.Module):
    def __init__(self, quant):
        super().__init__()
        self.quant = quant
        self.blocks = nn.Sequential(conv_block(1, 16, quant), conv_block(16, 32, quant))
        self.fc = nn.Linear(32 * 7 * 7, 10)
        if quant:
            self.inq = Q(1, W)
            self.wq, self.bq = Q(10, W, axis=0), Q(1, W)
            self.acc, self.out = Q(10, 24, axis=1, wrap=True, frac=10.0), Q(1, W)

    def forward(self, x):
        if self.quant:
            x = self.inq(x)
        x = self.blocks(x).flatten(1)
        if not self.quant:
            return self.fc(x)
        return self.out(self.acc(F.linear(x, self.wq(self.fc.weight), self.bq(self.fc.bias))))


def epoch(mode, images):
    torch.manual_seed(0)
    model = SmallCnn(mode == "qat")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(images, 1, 28, 28)
    y = torch.arange(images) % 10
    start = time.perf_counter()
    for at in range(0, images, 64):
        opt.zero_grad()
        loss = F.cross_entropy(model(x[at : at + 64]), y[at : at + 64])
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def timed(reps, f):
    f()
    f()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def kernels():
    torch.manual_seed(3)
    rows = []
    for name, shape in (("max pool 2×2, [64,16,28,28]", (64, 16, 28, 28)), ("max pool 2×2, [64,32,14,14]", (64, 32, 14, 14))):
        x = torch.randn(*shape)
        with torch.no_grad():
            rows.append((f"{name} forward", timed(20, lambda: F.max_pool2d(x, 2))))

        def fb():
            xg = x.clone().requires_grad_()
            F.max_pool2d(xg, 2).sum().backward()

        rows.append((f"{name} forward + backward", timed(20, fb)))
    for name, inp, out in (
        ("conv 3×3 1→16, [64,1,28,28]", (64, 1, 28, 28), 16),
        ("conv 3×3 16→32, [64,16,14,14]", (64, 16, 14, 14), 32),
        ("conv 3×3 16→16, [128,16,32,32]", (128, 16, 32, 32), 16),
        ("conv 3×3 64→64, [128,64,8,8]", (128, 64, 8, 8), 64),
    ):
        x, w = torch.randn(*inp), torch.randn(out, inp[1], 3, 3)
        with torch.no_grad():
            rows.append((f"{name} forward", timed(10, lambda: F.conv2d(x, w, None, 1, 1))))

        def fb():
            xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()
            F.conv2d(xg, wg, None, 1, 1).sum().backward()

        rows.append((f"{name} forward + backward", timed(10, fb)))
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["epoch", "kernels"])
    p.add_argument("--mode", choices=["plain", "qat"], default="plain")
    p.add_argument("--images", type=int, default=6000)
    p.add_argument("--json", required=True)
    a = p.parse_args()
    torch.set_num_threads(2)
    if a.what == "epoch":
        s = epoch(a.mode, a.images)
        print(f"pytorch small CNN epoch ({a.mode}, {a.images} images): {s:.2f} s")
        result = {"mode": a.mode, "images": a.images, "seconds": s, "torch": torch.__version__}
    else:
        result = [{"name": n, "seconds": s} for n, s in kernels()]
        for r in result:
            print(f"{r['name']}: {r['seconds'] * 1e3:.2f} ms (PyTorch)")
    with open(a.json, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
