"""A ruler for FID on one archive: the FID of its own real images after known degradations.

FID values only mean something against each other. This prints what a few familiar defects cost on
the archive at hand (real images shown at a quarter or half of their resolution, blurred, with
sensor noise), next to the floor (undegraded reals: the FID of a sample of n against the reference
set). With --run it scores the run's generator as it is and after the same round trip through half
resolution: if that lowers its FID, the detail it draws at full resolution is doing harm.

    python benchmarks/fid_ruler.py --data studio64.jga --n 500 [--run runs/style]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """NHWC uint8 -> NCHW float in [-1, 1], the generators' range (grid.to_uint8 is the inverse)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def down_up(x: torch.Tensor, size: int) -> torch.Tensor:
    """Area-downsample to size px, bilinear back: what the image holds at that resolution."""
    small = F.interpolate(x, size=(size, size), mode="area")
    return F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-t.square() / (2 * sigma * sigma))
    k = k / k.sum()
    kernel = (k[:, None] * k[None, :]).expand(x.shape[1], 1, 2 * r + 1, 2 * r + 1)
    return F.conv2d(F.pad(x, [r] * 4, mode="replicate"), kernel, groups=x.shape[1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="dataset archive (.jga)")
    p.add_argument("--n", type=int, default=500, help="images per row (FID is biased upwards at small n)")
    p.add_argument("--run", default=None, help="also score this run's (or model dir's) generator")
    p.add_argument("--cache-dir", default=None, help="reference statistics cache (default: the evaluation suite's)")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from jewelgan.data.archive import Archive
    from jewelgan.grid import to_uint8
    from jewelgan.metrics.api import compute_metrics
    from jewelgan.metrics.cache import default_cache_dir

    archive = Archive(args.data)
    cache = args.cache_dir or default_cache_dir()
    res = archive.resolution
    pick = np.sort(np.random.default_rng(0).choice(len(archive), min(args.n, len(archive)), replace=False))
    real = to_tensor(archive.rgb(np.sort(pick)))
    rows = {"reals (the floor)": real, f"reals at {res // 2} px": down_up(real, res // 2),
            f"reals at {res // 4} px": down_up(real, res // 4), "reals blurred, sigma 0.7 px": gaussian_blur(real, 0.7),
            "reals blurred, sigma 1 px": gaussian_blur(real, 1.0),
            "reals + noise, std 8/255": real + (8 / 127.5) * torch.randn(real.shape, generator=torch.Generator().manual_seed(0))}
    if args.run:
        from jewelgan.inference import load_generator, sample_images

        G, schema, _ = load_generator(args.run)
        fake = to_tensor(sample_images(G, schema, len(pick), seed=1))
        rows["generator"] = fake
        rows[f"generator at {res // 2} px"] = down_up(fake, res // 2)
    print(f"FID against {args.data} ({len(archive)} images, {res} px), n = {len(pick)} per row")
    for name, images in rows.items():
        flat, _ = compute_metrics(to_uint8(images), archive, ["fid"], cache_dir=cache)
        print(f"{name:32s} {flat['fid']:8.1f}", flush=True)


if __name__ == "__main__":
    main()
