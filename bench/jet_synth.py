"""Writes a synthetic jet-tagging-shaped tabular dataset as IDX files (what `qfx train` reads):
16 features per sample stored as a 1x4x4 8-bit "image", 5 classes. Each class is a Gaussian
mixture of two clusters with seeded, overlapping centres, so a 16-64-32-32-5 MLP learns it to a
useful but imperfect accuracy (the quantized variants can then differ). Deterministic.

Usage: python3 bench/jet_synth.py OUT_DIR [TRAIN] [TEST]
"""
import os, random, struct, sys

out = sys.argv[1]
n_train = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
n_test = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
rng = random.Random(2024)
features, classes = 16, 5
centres = [[[rng.gauss(0, 1.0) for _ in range(features)] for _ in range(2)] for _ in range(classes)]
# Correlated features: a fixed random mixing of the noise, as detector observables are.
mix = [[rng.gauss(0, 0.35) + (1.0 if i == j else 0.0) for j in range(features)] for i in range(features)]

def sample(r):
    c = r.randrange(classes)
    centre = centres[c][r.randrange(2)]
    z = [r.gauss(0, 1.0) for _ in range(features)]
    x = [centre[i] + 2.0 * sum(mix[i][j] * z[j] for j in range(features)) for i in range(features)]
    pixels = bytes(max(0, min(255, int(round(128 + 16 * v)))) for v in x)
    return pixels, c

def write(prefix, n, seed):
    r = random.Random(seed)
    data = [sample(r) for _ in range(n)]
    with open(os.path.join(out, f"{prefix}-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 4, 4))
        for p, _ in data:
            f.write(p)
    with open(os.path.join(out, f"{prefix}-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, n))
        f.write(bytes(c for _, c in data))

os.makedirs(out, exist_ok=True)
write("train", n_train, 1)
write("t10k", n_test, 2)
print(f"wrote {n_train} training and {n_test} test samples to {out}")
