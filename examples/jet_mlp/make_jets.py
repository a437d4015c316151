#!/usr/bin/env python3
"""Writes jets.csv: a synthetic table shaped like the hls4ml jet-tagging data set (16 jet
features, 5 classes: gluon, light quark, W, Z, top), made to be hard.

Each class is a mixture of three Gaussian clusters in a 6-dimensional latent space, with cluster
centres drawn close enough that the classes overlap; the 16 features are nonlinear functions of
the latent point (products, exponentials, logistic and trigonometric terms, a rounded count, a
heavy-tailed ratio) on very different scales, plus measurement noise, and one feature is pure
noise. A classifier cannot reach 100%.

Seeded (SEED below) and standard library only: the same Python gives the same file. Usage:
    python3 examples/jet_mlp/make_jets.py [OUT.csv]
"""

import math
import os
import random
import sys

SEED = 2024
SAMPLES = 8000
CLASSES = ["g", "q", "W", "Z", "t"]
LATENT = 6
CLUSTERS = 3
CENTRE_SPREAD = 1.0  # spread of the cluster centres around 0
CLUSTER_SPREAD = 0.8  # spread of the points around their centre

NAMES = [
    "j_mass", "j_pt", "j_mult", "j_tau21", "j_tau32", "j_logr", "j_sinz", "j_dz",
    "j_z04", "j_gauss", "j_lin", "j_tanh", "j_c2", "j_d2", "j_eta", "j_e",
]


def features(z, noise):
    """The 16 features of latent point z (noise: a generator of N(0, 1) draws)."""
    n = noise
    return [
        50.0 + 25.0 * z[0] + 8.0 * z[1] * z[2] + 3.0 * n(),
        400.0 * math.exp(0.25 * z[1]) + 20.0 * n(),
        float(max(1, round(20.0 + 6.0 * z[2] + 3.0 * z[3] * z[3] + 2.0 * n()))),
        1.0 / (1.0 + math.exp(-(z[3] - 0.5 * z[0]))) + 0.05 * n(),
        1.0 / (1.0 + math.exp(-(z[4] + 0.3 * z[5]))) + 0.05 * n(),
        math.log(1.0 + z[0] * z[0] + z[5] * z[5]) + 0.1 * n(),
        math.sin(z[1]) * z[2] + 0.1 * n(),
        abs(z[3] - z[4]) + 0.1 * n(),
        z[0] * z[4] + 0.1 * n(),
        math.exp(-0.5 * z[5] * z[5]) + 0.05 * n(),
        z[2] + 0.5 * z[3] - 0.3 * z[0] + 0.1 * n(),
        math.tanh(z[1] - z[5]) + 0.05 * n(),
        math.log((z[0] * z[0] + 1.0) / (z[2] * z[2] + 0.1)) + 0.1 * n(),
        z[4] ** 3 / 10.0 + 0.1 * n(),
        4.0 * random_uniform() - 2.0,
        1000.0 + 200.0 * z[3] + 30.0 * n(),
    ]


rng = random.Random(SEED)


def random_uniform():
    return rng.random()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "jets.csv")
    centres = [
        [[rng.gauss(0.0, CENTRE_SPREAD) for _ in range(LATENT)] for _ in range(CLUSTERS)]
        for _ in CLASSES
    ]
    noise = lambda: rng.gauss(0.0, 1.0)
    lines = [",".join(NAMES + ["class"])]
    for i in range(SAMPLES):
        label = i % len(CLASSES)
        centre = centres[label][rng.randrange(CLUSTERS)]
        z = [c + rng.gauss(0.0, CLUSTER_SPREAD) for c in centre]
        row = features(z, noise)
        lines.append(",".join("%.5g" % v for v in row) + ",%d" % label)
    # Shuffled, so the classes are not in a pattern by line.
    body = lines[1:]
    rng.shuffle(body)
    tmp = out + ".tmp"
    with open(tmp, "w", newline="\n") as f:
        f.write("\n".join([lines[0]] + body) + "\n")
    os.replace(tmp, out)
    print("wrote %s: %d rows, %d features, %d classes (%s)" % (
        out, SAMPLES, len(NAMES), len(CLASSES), ", ".join(CLASSES)))


if __name__ == "__main__":
    main()
