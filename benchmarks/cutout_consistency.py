"""Do a model's cut-outs agree with its pictures? Mean silhouette IoU (jewelgan.inference.cutout.silhouette_iou) over
n samples of a model with alpha, beside the same figure for the archive it was trained on (the ceiling).
Against the cut-out composited over the backdrop (the headline) and against the opaque picture (which
also counts the studio's contact shadow), each at 8 levels and at 4 and 16 to show how much rests on the
threshold; per metal at 8 (silver on the white sweep is where both fall short).

    .venv/bin/python benchmarks/cutout_consistency.py [--model default64] [--data ARCHIVE] [--n 256]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import jewelgan
from jewelgan.inference.cutout import silhouette_iou
from jewelgan.data.archive import Archive
from jewelgan.inference import sample_inputs
from jewelgan.grid import to_uint8

THRESHOLDS = (4.0, 8.0, 16.0)


def report(name: str, images, metals: np.ndarray | None, metal_names: list[str] | None) -> None:
    for against in ("cutout", "picture"):
        by_threshold = {t: np.array([silhouette_iou(im, t, against) for im in images]) for t in THRESHOLDS}
        main = by_threshold[8.0]
        curve = ", ".join(f"{t:g}: {s.mean():.3f}" for t, s in by_threshold.items())
        print(f"{name}, against the {against}: mean silhouette IoU {main.mean():.3f} (5th percentile "
              f"{np.percentile(main, 5):.3f}) over {len(images)} images; by threshold {curve}")
        if metals is not None:
            parts = [f"{v} {main[metals == k].mean():.3f} (n {int((metals == k).sum())})"
                     for k, v in enumerate(metal_names) if (metals == k).any()]
            print(f"  per metal at 8 levels: {', '.join(parts)}")


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
    names = list(model.schema.attributes)
    metal = names.index("metal") if "metal" in names else None
    metal_names = model.schema.attributes["metal"] if metal is not None else None
    report(f"model {model.info['path']}", fakes, labels[:, metal].numpy() if metal is not None else None,
           metal_names)
    if args.data:
        archive = Archive(args.data)
        if archive.has_alpha:
            n = min(args.n, len(archive))
            real_names = list(archive.schema.attributes)
            real_metals = archive.labels[:n, real_names.index("metal")] if "metal" in real_names else None
            report(f"reals {args.data}", [archive.images[i] for i in range(n)], real_metals,
                   archive.schema.attributes.get("metal"))


if __name__ == "__main__":
    main()
