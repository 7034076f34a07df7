"""The metal translator's study for benchmarks/edit_quality.py (run that script; its docstring says what is
measured and how)."""

from __future__ import annotations

import colorsys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import binary_dilation

CATEGORIES_ORDER = ("ring", "pendant", "bracelet", "earring", "necklace")
SHEET: dict[int, list] = {}  # size -> (image, caption) of the first pieces' edits, for --studio-sheet


def _q(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def load_translator(args, model):
    from jewelgan.edit.translate import Translator, has_translator, model_translator

    if args.translator:
        return Translator.load(args.translator) if has_translator(args.translator) else \
            Translator.from_run(args.translator)
    t = model_translator(model.info["path"])
    if t is None:
        raise SystemExit("the model carries no translator; pass --translator FOLDER_OR_RUN")
    return t


def metal_pixels(seed: int, n: int, res: int, metal: str):
    """Metal-only pixels (the exact material map) of n reference renders in this metal: (all pixels (k, 3) uint8,
    per-render mean hue and saturation)."""
    from jewelgan.studio.dataset import render_one_layers

    pixels, hue, sat = [], [], []
    for i in range(n):
        layers, _ = render_one_layers(seed, i, res, metal=metal)
        px = _q(layers.image)[layers.material == 1]
        if len(px) < 20:
            continue
        pixels.append(px)
        h, s = hue_saturation(px)
        hue.append(h)
        sat.append(s)
    return np.concatenate(pixels), np.array(hue), np.array(sat)


def hue_saturation(pixels: np.ndarray) -> tuple[float, float]:
    """Mean hue (circular, in (-0.5, 0.5] turns: reds near 0, gold ~0.1) and mean HSV saturation of uint8 pixels."""
    f = pixels.reshape(-1, 3).astype(np.float64) / 255
    hsv = np.array([colorsys.rgb_to_hsv(*p) for p in f[:: max(1, len(f) // 4000)]])
    angle = np.angle(np.mean(hsv[:, 1] * np.exp(2j * np.pi * hsv[:, 0])))  # weighted by saturation: greys have no hue
    return float(angle / (2 * np.pi)), float(hsv[:, 1].mean())


def metal_transfer(photo: np.ndarray, mask: np.ndarray, source, target) -> np.ndarray:
    """Per-channel mean/std transfer inside an exact metal mask (an oracle: no user has this mask)."""
    x = photo[..., :3].astype(np.float64)
    moved = (x - source[0]) / source[1] * target[1] + target[0]
    out = np.where(mask[..., None], moved, x)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def studio_study(args, model, translator, colour_stats, colour_transfer, res: int) -> list[dict]:
    from jewelgan.edit import edit, invert, label_row, perceptual_distance, psnr
    from jewelgan.studio.dataset import render_one_layers

    metals = translator.metals
    stats = {m: colour_stats(m, args.seed + 1, args.reference, res) for m in metals}
    metal_stats = {}
    for m in metals:
        px = metal_pixels(args.seed + 1, args.reference, res, m)[0].astype(np.float64)
        metal_stats[m] = (px.mean(0), px.std(0) + 1e-6)
    rows = []
    for i in range(args.pieces):
        own, labels = render_one_layers(args.seed, i, res)
        photo, alpha, is_metal = _q(own.image), own.coverage, own.material == 1
        keep = ~binary_dilation(is_metal, iterations=1)
        inv = None
        if i < args.invert_pieces:
            small = np.asarray(Image.fromarray(photo).resize((model.resolution,) * 2, Image.LANCZOS))
            inv = invert(model, small, labels=labels, w_steps=args.w_steps, wplus_steps=args.wplus_steps, seed=i)
        for target in metals:
            if target == labels["metal"]:
                continue
            truth = _q(render_one_layers(args.seed, i, res, metal=target)[0].image)
            started = time.perf_counter()
            edited = translator(photo, target, labels["metal"]).image
            seconds = time.perf_counter() - started
            candidates = {"translator": edited, "translator + colour correction": corrected(translator, photo, target,
                                                                                          labels["metal"]),
                          "colour": colour_transfer(photo, alpha, stats[labels["metal"]], stats[target]),
                          "colour (metal oracle)": metal_transfer(photo, is_metal, metal_stats[labels["metal"]],
                                                                  metal_stats[target])}
            if inv is not None:
                raw = edit(model, inv, {"metal": target}, keep_detail=True)  # RGBA: the stage enlarges alpha too
                candidates["inversion"] = model.enlarge(raw[None], label_row(model, dict(labels, metal=target)),
                                                        res)[0][..., :3]
            row = {"piece": i, "from": labels["metal"], "to": target, "category": labels["category"],
                   "seconds": seconds}
            for name, im in candidates.items():
                row[name] = {"psnr": psnr(im, truth, alpha), "perc": perceptual_distance(im, truth),
                             "outside": float(np.abs(im.astype(np.float64) - photo)[keep].mean())}
            rows.append(row)
            if i < 4 and getattr(args, "studio_sheet", None):
                SHEET.setdefault(res, []).extend([(truth, f"{target} truth"), (edited, "translator"),
                                                  (candidates["colour"], "colour transfer")])
        print(f"  {res} px piece {i:3d} {labels['category']:9s} {labels['metal']:11s} translator "
              + " ".join(f"{r['translator']['psnr']:.1f}" for r in rows[-3:]) + " dB, colour "
              + " ".join(f"{r['colour']['psnr']:.1f}" for r in rows[-3:]) + " dB", flush=True)
    return rows


def corrected(translator, photo: np.ndarray, target: str, source: str | None, alpha=None):
    """The same edit with the network's colour correction on (off in the shipped edit: translate.py says why)."""
    translator.correct_colour = True
    try:
        return translator(photo, target, source, alpha).image
    finally:
        translator.correct_colour = False


def report_studio(rows: list[dict], res: int) -> None:
    names = [n for n in ("translator", "translator + colour correction", "colour", "colour (metal oracle)",
                         "inversion") if n in rows[0] or
             any(n in r for r in rows)]
    print(f"\n{res} px: {len(rows)} edits of {len({r['piece'] for r in rows})} held-out pieces")
    print(f"{'':30s} {'PSNR dB':>8s} {'perceptual':>10s} {'outside metal':>14s} {'edits':>6s}")
    for n in names:
        have = [r for r in rows if n in r]
        print(f"{n:30s} {np.mean([r[n]['psnr'] for r in have]):8.2f} {np.mean([r[n]['perc'] for r in have]):10.3f} "
              f"{np.mean([r[n]['outside'] for r in have]):14.2f} {len(have):6d}")
    gain = np.mean([r["translator"]["psnr"] - r["colour"]["psnr"] for r in rows])
    wins = np.mean([r["translator"]["psnr"] > r["colour"]["psnr"] for r in rows])
    print(f"translator vs colour transfer: {gain:+.2f} dB (goal >= +2), better on {wins:.0%} of edits (goal >= 80%); "
          f"change outside metal {np.mean([r['translator']['outside'] for r in rows]):.2f} grey levels (goal <= 1); "
          f"median {np.median([r['seconds'] for r in rows]):.2f} s an edit")
    for cat in sorted({r["category"] for r in rows}):
        sub = [r for r in rows if r["category"] == cat]
        print(f"  {cat:9s} translator {np.mean([r['translator']['psnr'] for r in sub]):.2f} dB, colour "
              f"{np.mean([r['colour']['psnr'] for r in sub]):.2f} dB ({len(sub)} edits)")


def real_photos(folder: str, n: int) -> list[Path]:
    """The first photos of each category folder in turn (rings, pendants, bracelets, earrings, necklaces)."""
    root = Path(folder)
    cats = sorted((d for d in root.iterdir() if d.is_dir()),
                  key=lambda d: CATEGORIES_ORDER.index(d.name) if d.name in CATEGORIES_ORDER else 99)
    lists = [sorted(p for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")) for d in cats]
    out, k = [], 0
    while len(out) < n and any(k < len(ps) for ps in lists):
        out += [ps[k] for ps in lists if k < len(ps)]
        k += 1
    return out[:n]


def load_at_most_1024(path: Path) -> np.ndarray:
    """A real photo, shrunk to 1,024 px on its long side if larger: the figures are about colour, and 1,024 px
    keeps the studies short."""
    from jewelgan.data.imageio import load_full_size

    im = Image.fromarray(load_full_size(path))
    im.thumbnail((1024, 1024), Image.LANCZOS)
    return np.asarray(im)


def real_study(args, translator) -> None:
    from jewelgan.data.imageio import load_full_size
    from jewelgan.edit.translate import piece_alpha
    from jewelgan.grid import fit_tile, make_grid

    ranges = {}
    for m in translator.metals:
        # 48 renders: with 8 or 16 the 5th-95th percentile is nearly their min and max and moved with the seed
        _, hue, sat = metal_pixels(args.seed + 1, args.range_renders, 256, m)
        ranges[m] = {"hue": np.percentile(hue, [5, 95]), "sat": np.percentile(sat, [5, 95]),
                     "grey": float(np.median(sat)) < 0.15}
        print(f"studio {m:11s}: hue {ranges[m]['hue'][0]:+.3f}..{ranges[m]['hue'][1]:+.3f} turns, "
              f"saturation {ranges[m]['sat'][0]:.3f}..{ranges[m]['sat'][1]:.3f}")
    results, sheet_rows, sure = [], [], []
    for path in real_photos(args.real, args.real_n):
        photo = load_at_most_1024(path)
        probs = translator.read_metal(photo)
        source = max(probs, key=probs.get)
        sure.append(probs[source] >= translator.confident_at)
        alpha = piece_alpha(photo)
        edits = []
        for target in translator.metals:
            if target == source:
                continue
            e = translator(photo, target, source, alpha)
            shown = e.mask > 0.5
            if shown.sum() < 50:
                results.append({"path": path.name, "to": target, "ok": False, "empty": True})
                edits.append(e)
                continue
            r = ranges[target]

            def within(image):
                hue, sat = hue_saturation(image[shown])
                return r["sat"][0] <= sat <= r["sat"][1] and (r["grey"] or r["hue"][0] <= hue <= r["hue"][1]), hue, sat

            ok, hue, sat = within(e.image)
            backdrop = alpha < 0.5
            results.append({"path": path.name, "to": target, "ok": bool(ok), "hue": hue, "sat": sat, "empty": False,
                            "ok_corrected": bool(within(corrected(translator, photo, target, source, alpha))[0]),
                            "backdrop_change": float(np.abs(e.image.astype(float) - photo)[backdrop].mean())
                            if backdrop.any() else 0.0})
            edits.append(e)
        print(f"  {path.parent.name}/{path.name}: read {source} (p = {probs[source]:.2f}) -> "
              + ", ".join(f"{x['to']} {'ok' if x['ok'] else 'OUT'}" + ("" if x["empty"] else
                          f" (hue {x['hue']:+.3f}, sat {x['sat']:.3f})") for x in results[-len(edits):]), flush=True)
        if len(sheet_rows) < 8:
            sheet_rows.append((photo, source, edits))
    ok = np.mean([r["ok"] for r in results])
    print(f"\nreal photos: {len(sure)} photos, {len(results)} edits; target metal's hue and saturation within the "
          f"studio's range on {ok:.0%} (goal >= 90%); metal read confidently (p >= {translator.confident_at:.2f}) "
          f"on {np.mean(sure):.0%} of photos; no metal pixels found on {np.mean([r['empty'] for r in results]):.0%}; "
          f"change on the backdrop {np.mean([r.get('backdrop_change', 0) for r in results]):.2f} grey levels; "
          f"with the network's colour correction on: within range on "
          f"{np.mean([r.get('ok_corrected', False) for r in results]):.0%}")
    for m in translator.metals:
        sub = [r for r in results if r["to"] == m]
        if sub:
            print(f"  to {m:11s}: within range {np.mean([r['ok'] for r in sub]):.0%} of {len(sub)}")
    if args.sheet:
        tiles, captions = [], []
        for photo, source, edits in sheet_rows:
            for im, cap in [(photo, f"photo ({source})")] + [(e.image, e.target) for e in edits]:
                tiles.append(fit_tile(im, 192))
                captions.append(cap)
        make_grid(np.stack(tiles), ncol=len(translator.metals), captions=captions).save(args.sheet)
        print(f"wrote {args.sheet}")
    # one 1,024 px photo, the whole edit (matte included), on both cores
    photo = load_full_size(real_photos(args.real, 1)[0])
    im = Image.fromarray(photo).resize((1024, round(1024 * photo.shape[0] / photo.shape[1])), Image.LANCZOS)
    photo = np.asarray(im)
    torch.set_num_threads(2)
    times = []
    for target in translator.metals[1:] * 2:
        started = time.perf_counter()
        translator(photo, target, translator.metals[0])
        times.append(time.perf_counter() - started)
    torch.set_num_threads(args.threads)
    print(f"one {photo.shape[1]}x{photo.shape[0]} photo (matte included, 2 threads): median {np.median(times):.2f} s "
          f"(goal <= 2 s)")


def shop_metal_study(args, translator) -> None:
    """Edits that look like the shop's own metal (`--shop-metal METAL --shop-photos FOLDER`, FOLDER: the shop's
    photos of that metal). Its photos alternate into a reference half (their tint is measured, as `jewelgan edit
    --reference` does) and a judging half (the 5th-95th percentile of their per-photo metal hue and saturation);
    the --real photos of other metals are edited to METAL with the studio's tint and with the reference tint, and
    each edit is scored inside or outside the judging half's range."""
    from jewelgan.edit.reference import measure_reference, reference_files
    from jewelgan.edit.translate import piece_alpha

    metal = args.shop_metal
    files = reference_files(Path(args.shop_photos))
    ref_files, judge_files = files[0::2], files[1::2]
    reference = measure_reference(translator, metal, [load_at_most_1024(p) for p in ref_files],
                                  [p.name for p in ref_files])
    s = translator.metals.index(metal)
    hues, sats = [], []
    for path in judge_files:
        photo = load_at_most_1024(path)
        other = translator.metals[(s + 1) % len(translator.metals)]
        shown = translator(photo, other, metal).mask > 0.5  # the metal mask an edit uses; the photo's own pixels
        if shown.sum() < 50:
            continue
        h, sat = hue_saturation(photo[shown])
        hues.append(h)
        sats.append(sat)
    hue_range, sat_range = np.percentile(hues, [5, 95]), np.percentile(sats, [5, 95])
    print(f"\nthe shop's {metal}: reference tint {np.round(reference.tint.numpy(), 3).tolist()} from "
          f"{len(ref_files)} photos (studio {np.round(translator.net.tint_mean[s].numpy(), 3).tolist()}); judged "
          f"by {len(hues)} others: hue {hue_range[0]:+.3f}..{hue_range[1]:+.3f}, saturation "
          f"{sat_range[0]:.3f}..{sat_range[1]:.3f}")
    within = {"studio tint": [], "shop's reference tint": []}
    tiles = []
    for path in real_photos(args.real, args.real_n):
        photo = load_at_most_1024(path)
        probs = translator.read_metal(photo)
        source = args.real_metal or max(probs, key=probs.get)
        if source == metal:
            continue
        alpha = piece_alpha(photo)
        row = [(photo, f"photo ({source})")]
        for name, tint in (("studio tint", None), ("shop's reference tint", reference.tint)):
            e = translator(photo, metal, source, alpha, tint)
            h, sat = hue_saturation(e.image[e.mask > 0.5])
            within[name].append(bool(hue_range[0] <= h <= hue_range[1] and sat_range[0] <= sat <= sat_range[1]))
            row.append((e.image, name))
        if len(tiles) < 8 * 3:
            tiles += row
    for name, got in within.items():
        print(f"  edits to {metal} with the {name}: within the shop's own range on {np.mean(got):.0%} of "
              f"{len(got)}")
    if args.sheet:  # the edits, then the shop's own photos of the metal that judged them
        from jewelgan.grid import fit_tile, make_grid

        tiles += [(load_at_most_1024(p), f"the shop's own {metal}") for p in judge_files[:6]]
        make_grid(np.stack([fit_tile(im, 192) for im, _ in tiles]), ncol=6,
                  captions=[c for _, c in tiles]).save(args.sheet)
        print(f"wrote {args.sheet}")


def translator_study(args, colour_stats, colour_transfer) -> None:
    import jewelgan

    model = jewelgan.load_model(args.model)
    translator = load_translator(args, model)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    for res in sizes:
        report_studio(studio_study(args, model, translator, colour_stats, colour_transfer, res), res)
    if args.studio_sheet and sizes:
        from jewelgan.grid import fit_tile, make_grid

        tiles = SHEET[sizes[-1]]  # every piece: 3 metals x (truth, translator, colour transfer)
        small = [np.asarray(Image.fromarray(t).resize((256, 256), Image.LANCZOS)) for t, _ in tiles]
        make_grid(np.stack(small), ncol=9, captions=[c for _, c in tiles]).save(args.studio_sheet)
        print(f"wrote {args.studio_sheet}")
    if args.real and args.shop_metal:
        shop_metal_study(args, translator)
    elif args.real:
        real_study(args, translator)
