"""The gemstone edit's study for benchmarks/edit_quality.py (`--stones`; run that script).

Held-out studio pieces that carry stones (set --seed), rendered in their own stone at each size, each edited to
every other stone, against the renderer's image of the same piece, pose and light with that stone: PSNR over the
stone pixels (the exact material map) and over the piece (alpha-weighted), perceptual distance of the whole
image, the mean change (grey levels) outside the stones (1 px round them excluded: edges mix) and whether the
photo's own stone was read right from its tint. Beside it: the photo unchanged, and a per-channel colour transfer
(Reinhard) inside the exact stone mask, an oracle no user has. On real photos (--real): the first --real-n photos
the matte and the material map find stones in, each with every other stone, as a sheet (--stones-sheet).
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.ndimage import binary_dilation

from metal_translation import _q, real_photos


def stone_pixels(seed: int, n: int, res: int, stone: str):
    """Per-channel mean and std of the stone pixels of n reference renders with this stone (pieces with stones)."""
    from jewelgan.studio.dataset import render_one_layers

    px, i = [], 0
    while len(px) < n:
        own, labels = render_one_layers(seed, i, res)
        i += 1
        if labels["gemstone"] == "none" or (own.material == 2).sum() < 20:
            continue
        layers, _ = render_one_layers(seed, i - 1, res, gemstone=stone)
        px.append(_q(layers.image)[layers.material == 2].astype(np.float64))
    p = np.concatenate(px)
    return p.mean(0), p.std(0) + 1e-6


def stone_study(args, translator, res: int) -> list[dict]:
    from jewelgan.edit import perceptual_distance, psnr
    from jewelgan.edit.translate import TranslatorError
    from jewelgan.studio.dataset import render_one_layers

    stones = list(translator.stones)
    ref = {g: stone_pixels(args.seed + 1, args.reference, res, g) for g in stones}
    rows, i, done = [], 0, 0
    while done < args.pieces:
        own, labels = render_one_layers(args.seed, i, res)
        i += 1
        is_stone = own.material == 2
        if labels["gemstone"] == "none" or is_stone.sum() < 30:
            continue
        done += 1
        photo = _q(own.image)
        keep = ~binary_dilation(is_stone, iterations=1)
        read = None
        for target in stones:
            if target == labels["gemstone"]:
                continue
            truth = _q(render_one_layers(args.seed, i - 1, res, gemstone=target)[0].image)
            try:
                e = translator.change_stone(photo, target)
            except TranslatorError:  # the material map found no stone: the photo comes back unchanged
                e = None
            read = e.source if e else "nothing"
            x = photo.astype(np.float64)
            moved = (x - ref[labels["gemstone"]][0]) / ref[labels["gemstone"]][1] * ref[target][1] + ref[target][0]
            oracle = np.clip(np.round(np.where(is_stone[..., None], moved, x)), 0, 255).astype(np.uint8)
            row = {"piece": i - 1, "from": labels["gemstone"], "to": target, "category": labels["category"],
                   "read_right": read == labels["gemstone"], "found": e is not None,
                   "seconds": e.seconds if e else float("nan")}
            for name, im in (("translator", e.image if e else photo), ("unchanged", photo),
                             ("colour (stone oracle)", oracle)):
                row[name] = {"psnr_stone": psnr(im, truth, is_stone.astype(np.float32)),
                             "psnr": psnr(im, truth, own.coverage), "perc": perceptual_distance(im, truth),
                             "outside": float(np.abs(im.astype(np.float64) - photo)[keep].mean())}
            rows.append(row)
        print(f"  {res} px piece {i - 1:3d} {labels['category']:9s} {labels['gemstone']:9s} read {read:9s} "
              "stone PSNR " + " ".join(f"{r['translator']['psnr_stone']:.1f}" for r in rows[-3:]) + " dB (unchanged "
              + " ".join(f"{r['unchanged']['psnr_stone']:.1f}" for r in rows[-3:]) + ")", flush=True)
    return rows


def report_stones(rows: list[dict], res: int) -> None:
    print(f"\n{res} px gemstones: {len(rows)} edits of {len({r['piece'] for r in rows})} held-out pieces")
    print(f"{'':24s} {'stone PSNR':>10s} {'piece PSNR':>10s} {'perceptual':>10s} {'outside stones':>14s}")
    for n in ("translator", "unchanged", "colour (stone oracle)"):
        mean = lambda k: np.mean([r[n][k] for r in rows])  # noqa: E731
        print(f"{n:24s} {mean('psnr_stone'):10.2f} {mean('psnr'):10.2f} {mean('perc'):10.3f} {mean('outside'):14.2f}")
    gain = np.mean([r["translator"]["psnr_stone"] - r["unchanged"]["psnr_stone"] for r in rows])
    print(f"stone read right from its tint on {np.mean([r['read_right'] for r in rows]):.0%} of pieces; stone PSNR "
          f"{gain:+.2f} dB over the unchanged photo; median {np.nanmedian([r['seconds'] for r in rows]):.2f} s an "
          f"edit; no stone found on {np.mean([not r['found'] for r in rows]):.0%} of edits")
    for g in sorted({r["to"] for r in rows}):
        sub = [r for r in rows if r["to"] == g]
        print(f"  to {g:9s}: stone PSNR {np.mean([r['translator']['psnr_stone'] for r in sub]):.2f} dB "
              f"(oracle {np.mean([r['colour (stone oracle)']['psnr_stone'] for r in sub]):.2f}, {len(sub)} edits)")


def real_stones(args, translator) -> None:
    from jewelgan.data.imageio import load_full_size
    from jewelgan.edit.translate import TranslatorError, piece_alpha
    from jewelgan.grid import fit_tile, make_grid

    tiles, captions = [], []
    for path in real_photos(args.real, 10 * args.real_n):
        if len(tiles) >= args.real_n * (len(translator.stones)):
            break
        photo = load_full_size(path)
        if max(photo.shape[:2]) > 1024:
            im = Image.fromarray(photo)
            im.thumbnail((1024, 1024), Image.LANCZOS)
            photo = np.asarray(im)
        alpha = piece_alpha(photo)
        try:
            first = translator.change_stone(photo, "diamond", alpha=alpha)
        except TranslatorError as e:
            print(f"  {path.name}: {e}")
            continue
        edits = [translator.change_stone(photo, g, first.source, alpha) for g in translator.stones
                 if g != first.source]
        print(f"  {path.parent.name}/{path.name}: read {first.source}, stone pixels "
              f"{int((edits[0].mask > 0.5).sum()) if edits else 0}")
        for im, cap in [(photo, f"photo ({first.source})")] + [(e.image, e.target) for e in edits]:
            tiles.append(fit_tile(im, 192))
            captions.append(cap)
    if args.stones_sheet and tiles:
        make_grid(np.stack(tiles), ncol=len(translator.stones), captions=captions).save(args.stones_sheet)
        print(f"wrote {args.stones_sheet}")
