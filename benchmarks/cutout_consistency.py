"""Do a model's cut-outs agree with its pictures? Mean silhouette IoU (jewelgan.cutout.silhouette_iou) over
n samples of a model with alpha, beside the same figure for the archive it was trained on (the ceiling).

    .venv/bin/python benchmarks/cutout_consistency.py [--model default64] [--data ARCHIVE] [--n 256]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import jewelgan
from jewelgan.cutout import silhouette_iou
from jewelgan.data.archive import Archive
from jewelgan.generate import sample_inputs
from jewelgan.grid import to_uint8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model name or folder (default: the shipped default)")
    ap.add_argument("--data", default=None, help="its training archive (RGBA), for the reals' figure")
    ap.add_argument("--n", type=int, default=256)
    args = ap.parse_args()
    model = jewelgan.load_model(args.model)
    if not model.has_alpha:
        raise SystemExit(f"{model.info['path']}: this model draws no alpha channel")
    z, labels, _ = sample_inputs(model.schema, model.G.z_dim, args.n, {}, 0, 1.0, model.info["label_rows"],
                                 truncate_z=False)
    with torch.no_grad():
        fakes = to_uint8(model.G(z, labels))  # seen RGB + alpha, as the model draws them
    scores = np.array([silhouette_iou(im) for im in fakes])
    print(f"model {model.info['path']}: mean silhouette IoU {scores.mean():.3f} "
          f"(5th percentile {np.percentile(scores, 5):.3f}) over {args.n} samples")
    if args.data:
        archive = Archive(args.data)
        if archive.has_alpha:
            reals = np.array([silhouette_iou(archive.images[i]) for i in range(min(args.n, len(archive)))])
            print(f"reals {args.data}: mean silhouette IoU {reals.mean():.3f} "
                  f"(5th percentile {np.percentile(reals, 5):.3f})")


if __name__ == "__main__":
    main()
