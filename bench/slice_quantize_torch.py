"""PyTorch's composed fixed-point emulation, as peers write it, on the same slice size as qfx.

ap_fixed<8,3,AP_RND_CONV,AP_SAT>:  clamp(round(x * 2**F), lo, hi) * 2**-F   (round = ties-to-even)
ap_fixed<16,6,AP_TRN,AP_WRAP>:     ((floor(x * 2**F) - lo) mod 2**W + lo) * 2**-F
"""
import argparse
import json
import time

import torch

N = 16 << 20
REPEATS = 7


def best(fn):
    fn()  # warm up
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def sat_rnd_conv(x, w=8, i=3):
    f = w - i
    lo, hi = -(2 ** (w - 1)), 2 ** (w - 1) - 1
    return torch.clamp(torch.round(x * 2.0**f), lo, hi) * 2.0**-f


def wrap_trn(x, w=16, i=6):
    f = w - i
    lo = -(2 ** (w - 1))
    return (torch.remainder(torch.floor(x * 2.0**f) - lo, 2.0**w) + lo) * 2.0**-f


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(N, dtype=torch.float32) * 2.0
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name, fn in (
            ("ap_fixed<8,3,AP_RND_CONV,AP_SAT>", sat_rnd_conv),
            ("ap_fixed<16,6,AP_TRN,AP_WRAP>", wrap_trn),
        ):
            t = best(lambda: fn(x))
            results.append({"kernel": f"torch {name}", "threads": threads, "seconds": t})
            print(f"torch {name:<36}{threads:>3} threads {t * 1e3:9.2f} ms")
    with open(args.json, "w") as f:
        json.dump({"n": N, "torch": torch.__version__, "results": results}, f)


if __name__ == "__main__":
    main()
