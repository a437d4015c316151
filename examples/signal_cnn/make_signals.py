#!/usr/bin/env python3
"""Writes signals.npz: a synthetic set of 1-D signals, 4 classes (0 sine, 1 square, 2 chirp,
3 band-limited noise), each sample one channel of 128 values, with x_train [2400, 1, 128]
float32, y_train [2400] int64, x_test [600, 1, 128], y_test [600] (np.savez_compressed).

Every signal has a random amplitude, offset, frequency and phase, and white noise up to 1.2
times its amplitude; the band-limited noise looks like a slow oscillation and the chirps start
at the sines' frequencies, so the classes overlap and no classifier reaches 100%.

Seeded (numpy's PCG64 generator, SEED below). Uses numpy: when it is not importable, the script
makes a virtual environment in target/examples-venv (pip, numpy==2.2.6) and runs itself there.
Usage:
    python3 examples/signal_cnn/make_signals.py [OUT.npz]
"""

import os
import subprocess
import sys

SEED = 7
LENGTH = 128
TRAIN, TEST = 2400, 600
NUMPY = "numpy==2.2.6"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def ensure_numpy():
    try:
        import numpy  # noqa: F401
        return
    except ImportError:
        pass
    venv = os.path.join(ROOT, "target", "examples-venv")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.check_call([sys.executable, "-m", "venv", venv])
        subprocess.check_call([python, "-m", "pip", "install", "--quiet", NUMPY])
    os.execv(python, [python] + sys.argv)


def make(rng, n):
    import numpy as np

    t = np.arange(LENGTH) / LENGTH
    x = np.empty((n, 1, LENGTH), dtype=np.float32)
    y = np.arange(n, dtype=np.int64) % 4
    rng.shuffle(y)
    for i in range(n):
        amp = rng.uniform(0.5, 2.0)
        offset = rng.normal(0.0, 0.5)
        phase = rng.uniform(0.0, 2 * np.pi)
        f = rng.uniform(2.0, 10.0)
        if y[i] == 0:
            s = np.sin(2 * np.pi * f * t + phase)
        elif y[i] == 1:
            s = np.sign(np.sin(2 * np.pi * f * t + phase))
        elif y[i] == 2:
            f1 = f + rng.uniform(4.0, 12.0)
            s = np.sin(2 * np.pi * (f * t + 0.5 * (f1 - f) * t * t) + phase)
        else:
            width = int(rng.integers(4, 16))
            w = rng.normal(0.0, 1.0, LENGTH + width)
            s = np.convolve(w, np.ones(width) / width, mode="valid")[:LENGTH]
            s = s / (np.abs(s).max() + 1e-6)
        noise = rng.uniform(0.1, 1.2) * amp * rng.normal(0.0, 1.0, LENGTH)
        x[i, 0] = amp * s + offset + noise
    return x, y


def main():
    ensure_numpy()
    import numpy as np

    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "signals.npz")
    rng = np.random.default_rng(SEED)
    x_train, y_train = make(rng, TRAIN)
    x_test, y_test = make(rng, TEST)
    tmp = out + ".tmp.npz"
    np.savez_compressed(tmp, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    os.replace(tmp, out)
    print("wrote %s: %d training and %d test signals of %d values, 4 classes (numpy %s)"
          % (out, TRAIN, TEST, LENGTH, np.__version__))


if __name__ == "__main__":
    main()
