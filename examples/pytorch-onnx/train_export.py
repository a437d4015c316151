"""Trains a small CNN in PyTorch on the embedded Fashion-MNIST subset and exports it to ONNX.

    python train_export.py OUT_DIR [EPOCHS]

A model written for PyTorch, not for qfx: conv–BN–ReLU–maxpool twice, then a linear classifier,
trained with Adam on the 6,000 training images of data/fashion-mnist-subset, inputs normalized
as torchvision's Normalize((0.2860,), (0.3530,)) would. Prints the float test accuracy on the
1,000 test images and writes OUT_DIR/cnn.onnx (eval mode, opset 17, dynamic batch), exported
the way most PyTorch users export (the BatchNorms are folded into the convolutions by the
exporter).
"""

import gzip
import os
import sys

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "data", "fashion-mnist-subset")
MEAN, STD = 0.2860, 0.3530


def idx(name):
    with gzip.open(os.path.join(DATA, name)) as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def images(name):
    x = idx(name).astype(np.float32) / 255.0
    return torch.from_numpy((x - MEAN) / STD).unsqueeze(1)


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def main():
    out = sys.argv[1]
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1)
    torch.set_num_threads(2)
    xtr, ytr = images("train-images-idx3-ubyte.gz"), torch.from_numpy(idx("train-labels-idx1-ubyte.gz").astype(np.int64))
    xte, yte = images("t10k-images-idx3-ubyte.gz"), torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))
    model = Cnn()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * ((len(xtr) + 63) // 64))
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            b = order[i:i + 64]
            loss = nn.functional.cross_entropy(model(xtr[b]), ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            acc = (model(xte).argmax(1) == yte).float().mean().item()
        print(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.4f}, test top-1 {100 * acc:.2f}%")
    print(f"PyTorch float test top-1: {100 * acc:.2f}% ({len(xte)} images)")
    torch.onnx.export(model, xte[:1], os.path.join(out, "cnn.onnx"), input_names=["image"],
                      output_names=["logits"], opset_version=17,
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    print(f"wrote {os.path.join(out, 'cnn.onnx')}")


if __name__ == "__main__":
    main()
