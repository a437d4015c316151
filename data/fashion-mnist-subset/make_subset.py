"""Writes the embedded Fashion-MNIST subset: the first 6,000 training and 1,000 test images of
the full set, in the standard IDX format (gzip), from the Debian package `dataset-fashion-mnist`.

    apt-get download dataset-fashion-mnist && dpkg -x dataset-fashion-mnist_*.deb pkg
    python3 make_subset.py pkg/usr/share/datasets/fashion-mnist .
"""
import gzip
import struct
import sys

TRAIN, TEST = 6000, 1000


def subset(src, dst, name, count):
    with gzip.open(f"{src}/{name}.gz", "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    dims = magic & 0xFF
    shape = list(struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims]))
    item = 1
    for d in shape[1:]:
        item *= d
    header = 4 + 4 * dims
    shape[0] = count
    body = data[header : header + count * item]
    out = struct.pack(">I", magic) + struct.pack(">" + "I" * dims, *shape) + body
    # mtime=0: the same bytes on every run.
    with gzip.GzipFile(f"{dst}/{name}.gz", "wb", mtime=0) as f:
        f.write(out)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    for name, count in (
        ("train-images-idx3-ubyte", TRAIN),
        ("train-labels-idx1-ubyte", TRAIN),
        ("t10k-images-idx3-ubyte", TEST),
        ("t10k-labels-idx1-ubyte", TEST),
    ):
        subset(src, dst, name, count)


if __name__ == "__main__":
    main()
