"""How good each matte is on jewelry photos whose alpha is known exactly (issue 41).

Test photos are studio renders taken apart into layers (jewelgan.matte.examples) and put back over every shop
backdrop kind (white and grey sweeps, dark velvet, gradients, fabric, wood, and crops of real shop photos'
borders), --n photos per kind. Each method mattes the uint8 photo and is scored against the exact alpha over the
whole image (jewelgan.metrics.matting):

    SAD (/1000), MSE (x 1e3), Grad and Conn (alphamatting.com gradient and connectivity errors, /1000): how far
    off the matte is, lower is better, mean per photo;
    solid: share of truly solid metal and stone kept >= 0.9 opaque (higher is better);
    haze: share of true backdrop left faintly present, 0 < alpha < 0.05 (lower is better);
    s/img: seconds per photo on this machine (one thread unless OMP_NUM_THREADS says otherwise).

Methods: keying (today's jewelgan.data.keying), u2netp (generic salient-object network), closed_form (Levin et
al. on a trimap from keying), jewelgan (jewelgan.matte.predict.predict_alpha, when it exists); see
matte_baselines.py for how the baselines are obtained. A method that cannot run here is skipped with the reason.

    OMP_NUM_THREADS=1 python benchmarks/matte_quality.py --layers /work/data/matte/test256.npz \
        --photos /work/data/real/photos/holdout --n 40 --sheet /tmp/matte_sheet.png
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy: timings are per thread unless asked otherwise

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matte_baselines  # noqa: E402

from jewelgan.matte.examples import LayerSet, compose, kinds  # noqa: E402
from jewelgan.metrics.matting import (connectivity_error, gradient_error, haze_share, mse, sad,  # noqa: E402
                                      solid_share)

ALL_METHODS = ("keying", "u2netp", "closed_form", "jewelgan")
COLUMNS = ("SAD", "MSE x1e3", "Grad", "Conn", "solid (>=0.9)", "haze", "s/img")


def load_photos(root: Path, count: int, seed: int) -> list[np.ndarray]:
    """`count` real photos (uint8 RGB) drawn at random with `seed` from the .jpg/.png files under root."""
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        return []
    pick = np.random.default_rng(seed).choice(len(files), size=min(count, len(files)), replace=False)
    return [np.asarray(Image.open(files[i]).convert("RGB")) for i in sorted(pick)]


def build_examples(layers: LayerSet, photos: list[np.ndarray], n: int, seed: int) -> list[dict]:
    """n test photos per backdrop kind; each kind takes the next n pieces of the layer set (wrapping round)."""
    rng = np.random.default_rng(seed)
    out = []
    for k, kind in enumerate(kinds(photos)):
        for j in range(n):
            ex = compose(layers.get((k * n + j) % len(layers)), kind, rng, photos)
            out.append({"kind": kind, "rgb": np.round(ex["image"] * 255).astype(np.uint8), "alpha": ex["alpha"],
                        "material": ex["material"]})
    return out


def load_methods(names: list[str], u2netp_model: str | None, matte: Path | None = None) -> dict:
    """The runnable methods among `names` as name -> fn(rgb) -> alpha; prints why any other is skipped."""
    methods = {}
    for name in names:
        if name == "jewelgan":
            try:
                from jewelgan.matte.predict import Matte, predict_alpha
            except ImportError as e:
                print(f"skipped jewelgan: jewelgan.matte.predict.predict_alpha cannot be imported ({e})")
                continue
            if "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
            if matte is not None:  # a candidate: a matte folder, or a training run's latest checkpoint
                m = Matte.load(matte) if (matte / "matte.json").is_file() else Matte.from_run(matte)
                predict_alpha = lambda rgb, m=m: m(rgb).alpha  # noqa: E731
            try:  # a first call loads the shipped matte: skip, not crash, while there is none
                predict_alpha(np.full((32, 32, 3), 128, np.uint8))
            except Exception as e:  # noqa: BLE001
                print(f"skipped jewelgan: predict_alpha does not run yet ({type(e).__name__}: {e})")
                continue
            methods[name] = predict_alpha
            continue
        why = matte_baselines.unavailable(name, u2netp_model)
        if why:
            print(f"skipped {name}: {why}")
            continue
        fn = matte_baselines.METHODS[name]
        methods[name] = (lambda rgb, fn=fn: fn(rgb, u2netp_model)) if name == "u2netp" else fn
    return methods


def score(pred: np.ndarray, ex: dict) -> dict[str, float]:
    true = ex["alpha"]
    return {"SAD": sad(pred, true), "MSE x1e3": mse(pred, true) * 1e3, "Grad": gradient_error(pred, true),
            "Conn": connectivity_error(pred, true), "solid (>=0.9)": solid_share(pred, true, ex["material"]),
            "haze": haze_share(pred, true)}


def run(methods: dict, examples: list[dict], keep: set[int]) -> tuple[dict, dict]:
    """Scores per method and photo, and the alphas of the photos in `keep` (for the contact sheet)."""
    scores = {name: [] for name in methods}
    kept = {name: {} for name in methods}
    for name, fn in methods.items():
        for i, ex in enumerate(examples):
            start = time.perf_counter()
            pred = np.clip(np.asarray(fn(ex["rgb"]), np.float32), 0, 1)
            seconds = time.perf_counter() - start
            if pred.shape != ex["alpha"].shape:
                raise ValueError(f"{name} returned alpha {pred.shape} for a {ex['rgb'].shape} photo")
            scores[name].append({**score(pred, ex), "s/img": seconds, "kind": ex["kind"]})
            if i in keep:
                kept[name][i] = pred
    return scores, kept


def _mean(values) -> float:
    values = np.asarray(values, np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def tables(scores: dict, kind_names: list[str]) -> str:
    fmt = {"SAD": "{:.2f}", "MSE x1e3": "{:.2f}", "Grad": "{:.2f}", "Conn": "{:.2f}", "solid (>=0.9)": "{:.3f}",
           "haze": "{:.3f}", "s/img": "{:.3f}"}
    lines = ["| method | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, rows in scores.items():
        cells = [fmt[c].format(_mean([r[c] for r in rows])) for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "MSE x1e3 by backdrop kind:", "",
              "| method | " + " | ".join(kind_names) + " |", "|---" * (len(kind_names) + 1) + "|"]
    for name, rows in scores.items():
        cells = ["{:.2f}".format(_mean([r["MSE x1e3"] for r in rows if r["kind"] == k])) for k in kind_names]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def contact_sheet(path: Path, examples: list[dict], picks: list[int], kept: dict) -> None:
    """Rows = photos; columns = photo, truth alpha, each method's alpha (grey), with a label row on top."""
    size = examples[0]["rgb"].shape[0]
    names = ["photo", "truth"] + list(kept)
    label_h = 14
    sheet = Image.new("RGB", (size * len(names), label_h + size * len(picks)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(names):
        draw.text((c * size + 3, 1), name, fill="black")
    for r, i in enumerate(picks):
        tiles = [examples[i]["rgb"], examples[i]["alpha"]] + [kept[name][i] for name in kept]
        for c, tile in enumerate(tiles):
            if tile.ndim == 2:
                tile = np.repeat(np.round(np.clip(tile, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=2)
            sheet.paste(Image.fromarray(tile), (c * size, label_h + r * size))
        draw.text((3, label_h + r * size + 2), examples[i]["kind"], fill="red")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=Path, default=Path("/work/data/matte/test256.npz"),
                    help="a render_layer_set .npz")
    ap.add_argument("--photos", type=Path, default=Path("/work/data/real/photos/holdout"),
                    help="real photos for the 'photo' backdrop kind (skipped if none)")
    ap.add_argument("--n-photos", type=int, default=40, help="how many real photos to sample")
    ap.add_argument("--n", type=int, default=40, help="test photos per backdrop kind")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default=",".join(ALL_METHODS), help="comma-separated, of " + ", ".join(ALL_METHODS))
    ap.add_argument("--u2netp", default=None, help="U2-Netp .onnx (default $JEWELGAN_U2NETP or "
                                                   f"{matte_baselines.DEFAULT_U2NETP})")
    ap.add_argument("--matte", type=Path, default=None, help="jewelgan's matte from this folder or training run "
                    "(default: the shipped one)")
    ap.add_argument("--sheet", type=Path, default=None, help="write a contact sheet PNG of 8 test photos here")
    args = ap.parse_args()

    photos = load_photos(args.photos, args.n_photos, args.seed) if args.photos.is_dir() else []
    if not photos:
        print(f"no photos under {args.photos}: the 'photo' backdrop kind is left out")
    layers = LayerSet(args.layers)
    examples = build_examples(layers, photos, args.n, args.seed)
    kind_names = list(kinds(photos))
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(names) - set(ALL_METHODS)
    if unknown:
        ap.error(f"unknown methods {sorted(unknown)}")
    methods = load_methods(names, args.u2netp, args.matte)
    picks = sorted({int(i) for i in np.linspace(0, len(examples) - 1, min(8, len(examples)))})
    scores, kept = run(methods, examples, set(picks) if args.sheet else set())
    print(f"\n{len(examples)} test photos ({args.n} per kind, {layers.res} px, layers {args.layers}), "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}\n")
    print(tables(scores, kind_names))
    if args.sheet:
        contact_sheet(args.sheet, examples, picks, kept)
        print(f"\ncontact sheet: {args.sheet}")


if __name__ == "__main__":
    main()
