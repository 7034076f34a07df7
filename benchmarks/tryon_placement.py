"""Automatic try-on placement against hand-marked points, as a share of the face's width (issue 41's measure).

The portraits are the ones that can be had offline, from PyPI wheels: scikit-image's astronaut.png (frontal) and
camera.png (a profile), matplotlib's grace_hopper.jpg (frontal). Points were marked by eye on 3x crops: the ear
lobes (the bottom of the visible lobe) and, where the neck is visible, the neck base. Needs the landmark models
(mediapipe 0.10.14), which conflict with onnx's protobuf, so run it from an environment of its own:

    python -m venv tryon && tryon/bin/pip install -e . 'mediapipe==0.10.14'
    pip download scikit-image --no-deps -d wheels && unzip -j wheels/scikit_image*.whl \\
        skimage/data/astronaut.png skimage/data/camera.png -d portraits
    tryon/bin/python benchmarks/tryon_placement.py --portraits portraits \\
        --grace tryon/lib/python3.11/site-packages/matplotlib/mpl-data/sample_data/grace_hopper.jpg
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

# (x, y) in each photo's pixels; None where the point cannot be seen
MARKS = {
    "astronaut.png": {"lobes": [(182, 146), (267, 146)], "neck": None},     # the neck base is under the collar
    "camera.png": {"lobes": [(190, 152)], "neck": None},                    # profile: one ear, neck in a scarf
    "grace_hopper.jpg": {"lobes": [(173, 266), (361, 260)], "neck": (269, 380)},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--portraits", type=Path, required=True, help="folder with astronaut.png and camera.png")
    ap.add_argument("--grace", type=Path, required=True, help="matplotlib's grace_hopper.jpg")
    args = ap.parse_args()
    from jewelgan.tryon.landmarks import _face, find_placement

    paths = {"astronaut.png": args.portraits / "astronaut.png", "camera.png": args.portraits / "camera.png",
             "grace_hopper.jpg": args.grace}
    print("| portrait | point | found | marked | error px | share of face width |")
    print("|---|---|---|---|---|---|")
    shares = []
    for name, path in paths.items():
        photo = np.asarray(Image.open(path).convert("RGB"))
        face = _face(photo)
        width = float(np.linalg.norm(face[454] - face[234]))
        ears = sorted(find_placement(photo, "earrings").anchors)
        marks = sorted(MARKS[name]["lobes"])
        rows = [("lobe", f, m) for f, m in zip(ears, marks)] if len(ears) == len(marks) else []
        if len(ears) != len(marks):
            print(f"| {name} | lobes | {len(ears)} found | {len(marks)} marked | - | - |")
        if MARKS[name]["neck"] is not None:
            rows.append(("neck base", find_placement(photo, "pendant").anchors[0], MARKS[name]["neck"]))
        for what, found, marked in rows:
            err = float(np.hypot(found[0] - marked[0], found[1] - marked[1]))
            shares.append(err / width)
            print(f"| {name} | {what} | {found[0]:.0f}, {found[1]:.0f} | {marked[0]}, {marked[1]} | {err:.1f} | "
                  f"{err / width:.1%} (face {width:.0f} px) |")
    print(f"\nmean {np.mean(shares):.1%}, worst {np.max(shares):.1%} over {len(shares)} points (goal <= 5 %)")


if __name__ == "__main__":
    main()
