"""How right are edits? The studio renders the same piece in every metal, so each edit has a ground truth.

Two studies. The metal translator (the default edit), at product-page sizes:

    python benchmarks/edit_quality.py --sizes 256,512 [--pieces 24] [--invert-pieces 8]
                                      [--real PHOTOS --real-n 24 --sheet docs/images/metal_edits_real.png]

  For each held-out piece (set --seed) rendered in its own metal at each size, every other metal by: the
  translator; colour transfer inside the piece's exact alpha (below) and, as an oracle no user has, inside the
  exact metal mask; and (first --invert-pieces pieces) the inversion edit enlarged by the model's stage. Per
  edit: PSNR over the piece (alpha-weighted), perceptual distance of the whole image, and the mean change
  (grey levels) where the truth is not metal (pixels within 1 px of metal excluded: they mix). On real photos
  (a folder of category folders, the first --real-n across categories): the metal read by the translator's
  classifier, each other metal's edit, the hue and saturation of the edited metal pixels against the range of
  the studio's renders of that metal (5th-95th percentile of the means of --range-renders renders), and the
  change where the matte sees backdrop; a sheet of the edits; and the time for one 1,024 px photo. With
  `--shop-metal rose_gold --shop-photos FOLDER` (the shop's photos of that metal), instead: edits to it with the
  studio's tint and with the tint measured on half of those photos (`jewelgan edit --reference`), judged against
  the other half's range (benchmarks/metal_translation.py, shop_metal_study).

The gemstone edit (`--stones`, benchmarks/gemstone_translation.py says what is measured):

    python benchmarks/edit_quality.py --stones --sizes 256,512 [--pieces 16] [--real PHOTOS --real-n 8
                                      --stones-sheet docs/images/gemstone_edits_real.png]

The inversion study at the model's size (the path `--method invert` takes):

    python benchmarks/edit_quality.py --classifier CLF [--model default64] [--pieces 24] [--seed 4242]
                                      [--w-steps 100] [--wplus-steps 50] [--tune-steps 0] [--threads 1]

For each held-out piece (set --seed, never the shipped model's training seed 0): render it in its own
metal (the "photo"), invert it with its labels given, edit it to each other metal, and compare with the
renderer's image of the same piece, pose and light in that metal. Two baselines draw the same target:
  colour: the photo's piece pixels moved to the target metal's colour statistics (per-channel mean and
          std over the pieces of that metal in reference renders, Reinhard-style, inside the alpha);
  resample: the model with the piece's labels but the new metal and a random latent.
Per edit: masked PSNR (dB, over the piece's alpha), perceptual distance (frozen EfficientNet-Lite0
features, lower is better); the classifier's reading of the edit's metal and whether category, view
and style stay; the inversion's time. Prints a table and the goals.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def colour_stats(metal: str, seed: int, n: int, res: int):
    """Per-channel mean and std of piece pixels (alpha > 0.5) over n reference renders in this metal."""
    from jewelgan.studio.dataset import render_variant

    pixels = []
    for i in range(n):
        im, _ = render_variant(seed, i, res, alpha=True, metal=metal)
        pixels.append(im[im[..., 3] > 127][:, :3].astype(np.float64))
    p = np.concatenate(pixels)
    return p.mean(0), p.std(0) + 1e-6


def colour_transfer(photo: np.ndarray, alpha: np.ndarray, source, target) -> np.ndarray:
    """Reinhard-style: inside the piece, (x - mean_src) / std_src * std_tgt + mean_tgt; backdrop untouched."""
    x = photo[..., :3].astype(np.float64)
    moved = (x - source[0]) / source[1] * target[1] + target[0]
    a = alpha[..., None]
    return np.clip(np.round(a * moved + (1 - a) * x), 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--classifier", default=None, help="attribute classifier (jewelgan classifier train): runs "
                    "the inversion study instead of the translator's")
    ap.add_argument("--pieces", type=int, default=24)
    ap.add_argument("--seed", type=int, default=4242, help="render set of the held-out pieces")
    ap.add_argument("--reference", type=int, default=32, help="reference renders per metal for the colour baseline")
    ap.add_argument("--range-renders", type=int, default=48,
                    help="renders per metal whose per-render means give the studio's 5th-95th percentile range")
    ap.add_argument("--w-steps", type=int, default=100)
    ap.add_argument("--wplus-steps", type=int, default=50)
    ap.add_argument("--tune-steps", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sizes", default="256,512", help="translator study: sizes of the held-out renders")
    ap.add_argument("--translator", default=None, help="a translator folder or run (default: the model's)")
    ap.add_argument("--invert-pieces", type=int, default=0, help="pieces also edited by inversion (slow)")
    ap.add_argument("--real", default=None, help="a folder of real photos (category sub-folders)")
    ap.add_argument("--real-n", type=int, default=24)
    ap.add_argument("--sheet", default=None, help="write the real photos' edits as one sheet here")
    ap.add_argument("--studio-sheet", default=None, help="write the first 4 pieces' edits at the largest size here")
    ap.add_argument("--shop-metal", default=None, help="with --shop-photos and --real: the study of edits to this "
                    "metal against the shop's own photos of it (reference tint vs studio tint), instead of the "
                    "real-photo study")
    ap.add_argument("--shop-photos", default=None, help="a folder of the shop's photos of --shop-metal")
    ap.add_argument("--real-metal", default=None, help="--shop-metal study: the metal the --real photos show "
                    "(default: each photo's metal as the translator's classifier reads it)")
    ap.add_argument("--stones", action="store_true", help="the gemstone study instead of the metal one "
                    "(benchmarks/gemstone_translation.py)")
    ap.add_argument("--stones-sheet", default=None, help="--stones --real: write the real photos' edits here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.stones:
        stones_study(args)
    elif args.classifier is None:
        from metal_translation import translator_study

        translator_study(args, colour_stats, colour_transfer)
    else:
        inversion_study(args)


def stones_study(args) -> None:
    import jewelgan
    from gemstone_translation import real_stones, report_stones, stone_study
    from metal_translation import load_translator

    translator = load_translator(args, jewelgan.load_model(args.model))
    if not translator.stones:  # a run, not yet written into a model folder: the tints export would write
        from jewelgan.edit.gemstones import studio_stone_tints

        translator.stones = studio_stone_tints()
    for res in [int(s) for s in args.sizes.split(",") if s]:
        report_stones(stone_study(args, translator, res), res)
    if args.real:
        real_stones(args, translator)


def inversion_study(args) -> None:

    import jewelgan
    from jewelgan.edit import edit, invert, perceptual_distance, psnr
    from jewelgan.metrics.attributes import load_classifier, predict
    from jewelgan.studio.dataset import render_one, render_variant

    model = jewelgan.load_model(args.model)
    res = model.resolution
    clf, clf_schema, _ = load_classifier(args.classifier)
    metals = model.attributes["metal"]
    stats = {m: colour_stats(m, args.seed + 1, args.reference, res) for m in metals}

    rows, seconds = [], []
    for i in range(args.pieces):
        photo, labels = render_one(args.seed, i, res, alpha=True)
        alpha = photo[..., 3].astype(np.float64) / 255
        start = time.perf_counter()
        inv = invert(model, photo, labels=labels, w_steps=args.w_steps, wplus_steps=args.wplus_steps,
                     tune_steps=args.tune_steps, seed=i)
        seconds.append(time.perf_counter() - start)
        recon = {"psnr": psnr(inv.reconstruction, photo, alpha),
                 "perc": perceptual_distance(inv.reconstruction[..., :3], photo[..., :3])}
        for metal in metals:
            if metal == labels["metal"]:
                continue
            truth, _ = render_variant(args.seed, i, res, alpha=True, metal=metal)
            candidates = {
                "edit": edit(model, inv, {"metal": metal})[..., :3],
                "edit+detail": edit(model, inv, {"metal": metal}, keep_detail=True)[..., :3],
                "colour": colour_transfer(photo, alpha, stats[labels["metal"]], stats[metal]),
                "resample": model.generate(1, dict(labels, metal=metal), seed=10_000 + i)[0],
            }
            row = {"piece": i, "from": labels["metal"], "to": metal, "recon": recon}
            for name, im in candidates.items():
                row[name] = {"psnr": psnr(im, truth, alpha), "perc": perceptual_distance(im, truth[..., :3])}
            for mode in ("edit", "edit+detail"):
                pred = predict(clf, candidates[mode][None])[0]
                read = {n: clf_schema.attributes[n][int(pred[k])] for k, n in enumerate(clf_schema.names)}
                row[mode]["metal_read"] = read.get("metal") == metal
                row[mode]["kept"] = {n: read.get(n) == labels[n] for n in ("category", "view", "style") if n in read}
            rows.append(row)
        print(f"piece {i:3d} {labels['category']:9s} {labels['metal']:11s} inverted in {seconds[-1]:5.1f} s, "
              f"reconstruction PSNR {recon['psnr']:5.2f} dB, perceptual {recon['perc']:.3f}", flush=True)

    def mean(name, key):
        return float(np.mean([r[name][key] for r in rows]))

    print(f"\n{len(rows)} edits of {args.pieces} held-out pieces (set {args.seed}), model {args.model or 'default64'}, "
          f"steps w {args.w_steps} + w+ {args.wplus_steps} + tuning {args.tune_steps}, {args.threads} thread(s)")
    print(f"{'':12s} {'PSNR dB':>8s} {'perceptual':>10s}")
    for name in ("edit", "edit+detail", "colour", "resample"):
        print(f"{name:12s} {mean(name, 'psnr'):8.2f} {mean(name, 'perc'):10.3f}")
    print(f"{'recon':12s} {np.mean([r['recon']['psnr'] for r in rows]):8.2f} "
          f"{np.mean([r['recon']['perc'] for r in rows]):10.3f}   (inversion vs the photo itself)")
    for mode in ("edit", "edit+detail"):
        wins = [r[mode]["perc"] < min(r["colour"]["perc"], r["resample"]["perc"]) for r in rows]
        wins_psnr = np.mean([r[mode]["psnr"] > max(r["colour"]["psnr"], r["resample"]["psnr"]) for r in rows])
        beats = {b: np.mean([r[mode]["perc"] < r[b]["perc"] for r in rows]) for b in ("colour", "resample")}
        per_piece = {}
        for r, w in zip(rows, wins):
            per_piece.setdefault(r["piece"], []).append(w)
        pieces_won = np.mean([np.mean(v) > 0.5 for v in per_piece.values()])
        metal_ok = np.mean([r[mode]["metal_read"] for r in rows])
        kept = {n: np.mean([r[mode]["kept"][n] for r in rows]) for n in rows[0][mode]["kept"]}
        print(f"\n{mode}: closer than both baselines (perceptual) on {np.mean(wins):.0%} of edits, {pieces_won:.0%} "
              f"of pieces (goal >= 80%); than colour {beats['colour']:.0%}, than resample {beats['resample']:.0%}; "
              f"by PSNR than both {wins_psnr:.0%}")
        print(f"  new metal read right by the classifier: {metal_ok:.0%} (goal >= 90%); kept: "
              + ", ".join(f"{n} {v:.0%}" for n, v in kept.items()) + " (goal >= 95% for category and view)")
    print(f"inversion time: median {np.median(seconds):.1f} s, max {np.max(seconds):.1f} s (goal <= 20 s)")


if __name__ == "__main__":
    main()
