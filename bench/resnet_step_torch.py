"""ResNet-20 training step in PyTorch, plain and with fake quantization at the same cast points
as qfx's 8-bit ResNet-20: input; every conv's per-channel weights, accumulator (wrapping) and
output; BatchNorm folded with batch statistics into a per-channel scale and a shift, each
quantized, and its output; every ReLU, residual add, the pooled features; the classifier's
weights, bias, accumulator and logits. The binary points are learned with the same straight-
through gradients (torch.autograd.Function).

    python resnet_step_torch.py --mode plain|qat --steps N --json PATH
"""
import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

LN2 = math.log(2.0)


class FakeQuant(torch.autograd.Function):
    """x̂ = O(round(x·2^F))·2^-F with F = round(f) per channel (axis), W bits."""

    @staticmethod
    def forward(ctx, x, f, width, signed, axis, wrap):
        shape = [1] * x.dim()
        if f.numel() > 1:
            shape[axis] = f.numel()
        frac = torch.round(f).reshape(shape)
        scale = torch.exp2(frac)
        lo = -(2 ** (width - 1)) if signed else 0
        hi = 2 ** (width - 1) - 1 if signed else 2**width - 1
        q = torch.round(x * scale)
        clipped = (q > hi) | (q < lo)
        if wrap:
            qo = q - torch.floor((q - lo) / 2**width) * 2**width
        else:
            qo = torch.clamp(q, lo, hi)
        xhat = qo / scale
        ctx.save_for_backward(x, xhat, clipped, scale)
        ctx.meta = (f.shape, axis, wrap, lo, hi)
        return xhat

    @staticmethod
    def backward(ctx, g):
        x, xhat, clipped, scale = ctx.saved_tensors
        fshape, axis, wrap, lo, hi = ctx.meta
        gx = g if wrap else g * (~clipped)
        bound = torch.where(x > 0, hi / scale, lo / scale) if wrap else xhat
        d = torch.where(clipped, -LN2 * bound, LN2 * (x - xhat))
        gd = g * d
        if fshape.numel() > 1:
            dims = [i for i in range(g.dim()) if i != axis]
            gf = (gd.sum(dim=dims) if dims else gd).reshape(fshape)
        else:
            gf = gd.sum().reshape(fshape)
        return gx, gf, None, None, None, None


class Q(nn.Module):
    def __init__(self, channels=1, width=8, signed=True, axis=1, wrap=False, frac=5.0):
        super().__init__()
        self.f = nn.Parameter(torch.full((channels,), frac))
        self.width, self.signed, self.axis, self.wrap = width, signed, axis, wrap

    def forward(self, x):
        return FakeQuant.apply(x, self.f, self.width, self.signed, self.axis, self.wrap)


class QConv(nn.Module):
    def __init__(self, cin, cout, k, stride, pad, quant, width=8):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, pad, bias=False)
        self.quant = quant
        if quant:
            self.wq, self.acc, self.out = Q(cout, width, axis=0), Q(cout, 24, wrap=True, frac=10.0), Q(1, width)

    def forward(self, x):
        if not self.quant:
            return self.conv(x)
        y = F.conv2d(x, self.wq(self.conv.weight), None, self.conv.stride, self.conv.padding)
        return self.out(self.acc(y))


class QBN(nn.Module):
    def __init__(self, c, quant, width=8):
        super().__init__()
        self.bn = nn.BatchNorm2d(c)
        self.quant = quant
        if quant:
            self.sq, self.tq, self.out = Q(c, width, axis=0), Q(1, width), Q(1, width)

    def forward(self, x):
        if not self.quant:
            return self.bn(x)
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False)
        with torch.no_grad():
            self.bn.running_mean.mul_(0.9).add_(0.1 * mean)
            self.bn.running_var.mul_(0.9).add_(0.1 * var)
        scale = self.bn.weight / torch.sqrt(var + self.bn.eps)
        shift = self.bn.bias - mean * scale
        c = scale.numel()
        return self.out(x * self.sq(scale).reshape(1, c, 1, 1) + self.tq(shift).reshape(1, c, 1, 1))


class QReLU(nn.Module):
    def __init__(self, quant, width=8):
        super().__init__()
        self.quant = quant
        self.out = Q(1, width, signed=False) if quant else None

    def forward(self, x):
        y = F.relu(x)
        return self.out(y) if self.quant else y


class Block(nn.Module):
    def __init__(self, cin, cout, stride, quant):
        super().__init__()
        self.c1, self.b1, self.r1 = QConv(cin, cout, 3, stride, 1, quant), QBN(cout, quant), QReLU(quant)
        self.c2, self.b2 = QConv(cout, cout, 3, 1, 1, quant), QBN(cout, quant)
        self.stride, self.pad = stride, cout - cin
        self.add = Q() if quant else None
        self.r2 = QReLU(quant)

    def forward(self, x):
        y = self.b2(self.c2(self.r1(self.b1(self.c1(x)))))
        s = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        if self.pad:
            s = F.pad(s, (0, 0, 0, 0, 0, self.pad))
        z = y + s
        return self.r2(self.add(z) if self.add is not None else z)


class ResNet20(nn.Module):
    def __init__(self, quant):
        super().__init__()
        self.quant = quant
        self.inq = Q() if quant else None
        self.stem, self.bn, self.relu = QConv(3, 16, 3, 1, 1, quant), QBN(16, quant), QReLU(quant)
        blocks, c = [], 16
        for s, w in enumerate((16, 32, 64)):
            for b in range(3):
                blocks.append(Block(c, w, 2 if s > 0 and b == 0 else 1, quant))
                c = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, 10)
        if quant:
            self.poolq, self.wq, self.bq, self.acc, self.out = Q(), Q(10, axis=0), Q(), Q(10, 24, wrap=True, frac=10.0), Q()

    def forward(self, x):
        if self.quant:
            x = self.inq(x)
        x = self.blocks(self.relu(self.bn(self.stem(x))))
        x = x.mean(dim=(2, 3))
        if not self.quant:
            return self.fc(x)
        x = self.poolq(x)
        y = F.linear(x, self.wq(self.fc.weight), self.bq(self.fc.bias))
        return self.out(self.acc(y))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["plain", "qat"], required=True)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--json", required=True)
    a = p.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = ResNet20(a.mode == "qat")
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(128, 3, 32, 32)
    y = torch.arange(128) % 10
    times = []
    for step in range(a.steps + 2):
        t = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if step >= 2:
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"pytorch {a.mode}: median {med:.3f} s over {a.steps} steps, peak RSS {peak:.0f} MiB")
    with open(a.json, "w") as f:
        json.dump({"mode": a.mode, "seconds": med, "peak_mib": peak, "torch": torch.__version__}, f)


if __name__ == "__main__":
    main()
