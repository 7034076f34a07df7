"""How far can an attribute classifier's reading of generated images be trusted?

Attribute accuracy on generated images is only meaningful if the classifier reads the attribute,
not how exactly the image matches the renders it was trained on. This prints its accuracy on real
images of the archive (its held-out split when the archive is the one it was trained on), clean and
after the defects generated images have (a trip through a smaller resolution, blur, pixel noise, a
different exposure), and after a hue rotation, which should change what it reads for metal and
gemstone and nothing else. Pass several classifiers to compare them on the same images.

    python benchmarks/classifier_robustness.py --data studio64.jga --classifier cls_old cls_new
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from fid_ruler import down_up, gaussian_blur, to_tensor


def hue_rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate colours about the grey axis (keeps luminance and saturation); x in [-1, 1]."""
    a = math.radians(degrees)
    axis = torch.full((3,), 1 / math.sqrt(3))
    k = torch.tensor([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = torch.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * (k @ k)  # Rodrigues
    return torch.einsum("ij,njhw->nihw", rot, x).clamp(-1, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="labelled dataset archive (.jga)")
    p.add_argument("--classifier", nargs="+", required=True, help="classifier folder(s)")
    p.add_argument("--n", type=int, default=1000, help="real images (from the classifier's held-out split first)")
    p.add_argument("--attributes", default="category,metal,gemstone,view")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from jewelgan.data.archive import Archive
    from jewelgan.metrics.attributes import load_classifier, predict_tensor, split_indices, to_input

    archive = Archive(args.data)
    names = args.attributes.split(",")
    gen = torch.Generator().manual_seed(0)
    for path in args.classifier:
        model, schema, info = load_classifier(path)
        if info.get("content_hash") == archive.content_hash:  # score images it never trained on
            _, held = split_indices(len(archive), 0.15, info.get("seed", 0))
            pick = held[: args.n]
        else:
            pick = np.arange(min(args.n, len(archive)))
        images = archive.rgb(np.sort(pick))
        labels = archive.labels[pick]
        real = to_tensor(images)
        rows = {
            "clean": real, "at 32 px": down_up(real, 32), "at 16 px": down_up(real, 16),
            "blurred, sigma 1 px": gaussian_blur(real, 1.0),
            "noise, std 8/255": real + (8 / 127.5) * torch.randn(real.shape, generator=gen),
            "noise, std 20/255": real + (20 / 127.5) * torch.randn(real.shape, generator=gen),
            "exposure x0.85": ((real + 1) * 0.85 - 1), "exposure x1.15": ((real + 1) * 1.15 - 1).clamp(-1, 1),
            "hue rotated 60 deg": hue_rotate(real, 60),
        }
        print(f"{path} (augment: {','.join(info.get('augment', ['flip', 'shift']))}), {len(pick)} reals "
              f"of {args.data}")
        print(f"{'reals':22s}" + "".join(f"{n:>10s}" for n in names))
        for row, x in rows.items():
            pred = predict_tensor(model, to_input(((x.clamp(-1, 1) + 1) * 127.5).round().byte()
                                                  .permute(0, 2, 3, 1).numpy(), model.resolution))
            accs = []
            for n in names:
                j = schema.names.index(n)
                known = labels[:, j] >= 0
                accs.append(float((pred[known, j] == labels[known, j]).mean()))
            print(f"{row:22s}" + "".join(f"{a:10.3f}" for a in accs), flush=True)
        print()


if __name__ == "__main__":
    main()
