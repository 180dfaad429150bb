"""Larger MNIST-like spans for scale tests, deterministically: the original images plus shifted and
rotated copies (the infinite-MNIST idea), labels kept.

    python benchmarks/scale_data.py --factor 4 --out /tmp/mnist_x4      # 280k examples: 240k train + 40k test
    python benchmarks/scale_data.py --factor 16 --out /tmp/mnist_x16    # 1.12M
    python benchmarks/scale_data.py --factor 16 --shards 8 --out /tmp/mnist_x16_8   # as 8 shard pairs each

Copy k of an image (k = 1..factor-1) is rotated by up to +-12 degrees and shifted by up to +-2
pixels, the amounts drawn from a generator seeded with k: the same factor gives the same bytes.
Written as <out>/span-1/ with the four IDX files, ready for IdxExampleGen; with --shards N each
pair is N shard pairs (modules.idx.shard_paths naming), which ExampleGen reads on several workers.
"""

import argparse
import os

import numpy as np
from PIL import Image

from modules import idx
from pipeline.configs import DATA_ROOT

SPAN = os.path.join(DATA_ROOT, "span-1")

MAX_DEGREES, MAX_SHIFT = 12.0, 2


def distorted_copy(images: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    angles = rng.uniform(-MAX_DEGREES, MAX_DEGREES, len(images))
    shifts = rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, (len(images), 2))
    out = np.empty_like(images)
    for i, (image, angle, (dy, dx)) in enumerate(zip(images, angles, shifts)):
        rotated = np.asarray(Image.fromarray(image).rotate(angle, resample=Image.BILINEAR))
        out[i] = np.roll(np.roll(rotated, dy, axis=0), dx, axis=1)
        # np.roll wraps around; MNIST digits have empty borders, so wrapped pixels are (nearly) black.
    return out


def write_span(factor: int, out_dir: str, source: str = SPAN, shards: int = 1) -> dict:
    span = os.path.join(out_dir, "span-1")
    os.makedirs(span, exist_ok=True)
    counts = {}
    for kind, (images_file, labels_file) in idx.PAIRS.items():
        images, labels = idx.read_pair(os.path.join(source, images_file), os.path.join(source, labels_file))
        seed_base = 0 if kind == "train" else 1_000_000
        copies = [images] + [distorted_copy(images, seed_base + k) for k in range(1, factor)]
        idx.write_shards(span, kind, np.concatenate(copies), np.tile(labels, factor), shards)
        counts[kind] = len(labels) * factor
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--factor", type=int, required=True, help="copies of MNIST (4: 280k, 16: 1.12M)")
    p.add_argument("--shards", type=int, default=1, help="shard pairs per pair (default 1: MNIST's own layout)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    print(write_span(args.factor, args.out, shards=args.shards))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
