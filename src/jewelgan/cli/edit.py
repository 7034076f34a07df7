"""`jewelgan edit` (a shop's photo in other attributes) and `jewelgan interpolate` (strips, style mixing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from jewelgan.cli.app import app, fail


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for pair in values:
        if "=" not in pair:
            raise fail(f"{flag} {pair!r} must look like name=value", 2)
        name, value = (s.strip() for s in pair.split("=", 1))
        out[name] = value
    return out


@app.command("edit")
def edit_cmd(
    photo: Path = typer.Argument(..., help="A product photo (any format `prepare` reads)."),
    out: Path = typer.Option(..., "--out", help="Folder for sheet.png, reconstruction.png, the edits and edit.json."),
    set_: List[str] = typer.Option([], "--set", help="One edit changing these: --set metal=rose_gold --set gemstone=ruby"),
    every: List[str] = typer.Option([], "--every", help="One edit per value of this attribute: --every metal"),
    attr: List[str] = typer.Option([], "--attr", help="What the photo shows, where known: --attr category=ring"),
    classifier: Optional[Path] = typer.Option(None, "--classifier", help="Attribute classifier for the labels not "
                                              "given (default: a search over the model itself)."),
    model: Optional[str] = typer.Option(None, "--model", help="A shipped model's name or a model folder (a style "
                                        "model). Default: the shipped model."),
    w_steps: int = typer.Option(100, "--w-steps", help="Optimisation steps on one w."),
    wplus_steps: int = typer.Option(50, "--wplus-steps", help="Then steps on w per layer."),
    tune_steps: int = typer.Option(0, "--tune-steps", help="Then pivotal tuning of a copy of G (0: off)."),
    keep_detail: bool = typer.Option(True, "--keep-detail/--resynthesise", help="Add the generator's change to the "
                                     "photo (default), or show the generator's own image."),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads (1 is fastest for one small image)."),
    method: Optional[str] = typer.Option(None, "--method", help="translate: the model's translator changes the "
                                         "photo's metal or gemstone at its own size (the default where the model "
                                         "carries one); invert: invert the photo into the generator and re-draw it "
                                         "(any attribute, at the model's sizes)."),
    source: Optional[str] = typer.Option(None, "--from", help="The photo's own metal or gemstone (translate). "
                                         "Without it the translator reads it: the metal by its classifier, asking "
                                         "for --from when unsure; the stone by its tint."),
    reference: List[str] = typer.Option([], "--reference", help="Your own photos of a metal, as METAL=PHOTO or "
                                        "METAL=FOLDER (repeatable): edits to that metal take its tint measured "
                                        "on them instead of the studio's (translate, metal edits)."),
) -> None:
    """The same piece in another metal or with another gemstone (the translator, at the photo's size), or re-drawn
    with other attributes after inverting the photo into the model (--method invert)."""
    if method is None:
        method = "translate" if _carries_translator(model) else "invert"
    if method == "translate":
        return _translate(photo, out, _pairs(set_, "--set"), every, source, model, threads,
                          _pairs(reference, "--reference"))
    if reference:
        raise fail("--reference is for the translator's metal edits (--method translate)", 2)
    if method != "invert":
        raise fail(f"--method {method!r}: use translate or invert", 2)
    import torch
    from PIL import Image

    from jewelgan.edit import EditError, edit_sheet, invert, load_photo, psnr
    from jewelgan.inference import GenerateError
    from jewelgan.image_files import encode_image
    from jewelgan.inference import ModelNotFound, load_model

    torch.set_num_threads(threads)
    given, changes = _pairs(attr, "--attr"), _pairs(set_, "--set")
    try:
        m = load_model(model)
        from jewelgan.edit import check_invertible

        check_invertible(m)
        for name in [*changes, *every]:
            if name not in m.attributes:
                raise EditError(f"unknown attribute {name!r}; known: {', '.join(m.attributes)}")
        for name, value in changes.items():
            if value not in m.attributes[name]:
                raise EditError(f"unknown value {value!r} for attribute {name!r}; known: {', '.join(m.attributes[name])}")
        image, mask = load_photo(photo, m.resolution)
        inv = invert(m, image, mask, given, classifier, w_steps, wplus_steps, tune_steps, seed=seed)
    except (EditError, ModelNotFound, GenerateError) as e:
        raise fail(str(e), 2)
    edits = ([changes] if changes else []) + [{name: v} for name in every for v in m.attributes[name]]
    if not edits:
        edits = [{"metal": v} for v in m.attributes.get("metal", [])] if "metal" in m.attributes else []
    sheet, images = edit_sheet(m, inv, edits, keep_detail)
    if max(m.sizes) > m.resolution:  # each edit at the largest size the model's upsampling stages reach
        import numpy as np
        import torch

        from jewelgan.edit import label_row

        rows = torch.cat([label_row(m, dict(inv.labels, **e)) for e in edits]) if edits else None
        images = list(m.enlarge(np.stack(images), rows, max(m.sizes))) if edits else images
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(out / "sheet.png")
    (out / "reconstruction.png").write_bytes(encode_image(inv.reconstruction[..., :3], "png"))
    files = []
    for e, im in zip(edits, images):
        name = "-".join(f"{k}={v}" for k, v in e.items()) + ".png"
        (out / name).write_bytes(encode_image(im[..., :3], "png"))
        files.append({"file": name, "changes": e})
    report = {"photo": str(photo), "labels": inv.labels, "label_source": inv.label_source,
              "reconstruction_psnr_db": round(psnr(inv.reconstruction, image, mask), 2),
              "seconds": round(inv.seconds, 2), "steps": {"w": w_steps, "wplus": wplus_steps, "tune": tune_steps},
              "keep_detail": keep_detail, "edits": files}
    (out / "edit.json").write_text(json.dumps(report, indent=1) + "\n")
    typer.echo(f"inverted in {inv.seconds:.1f} s (labels: " + ", ".join(f"{k}={v}" for k, v in inv.labels.items())
               + f"); wrote {len(files)} edits and sheet.png to {out}")


def _carries_translator(model: Optional[str]) -> bool:
    from jewelgan.edit.translate import has_translator
    from jewelgan.inference import ModelNotFound
    from jewelgan.inference.catalog import resolve_model

    try:
        return has_translator(resolve_model(model))
    except ModelNotFound:
        return True  # the translate path names the missing model


def _references(translator, given: dict[str, str]) -> dict:
    """--reference METAL=PATH -> {metal: MetalReference}, every photo read and measured before anything is
    written (a bad one is named)."""
    from jewelgan.data.imageio import RejectedImage, load_full_size
    from jewelgan.edit.reference import measure_reference, reference_files

    found = {}
    for metal, path in given.items():
        files = reference_files(Path(path))
        photos = []
        for f in files:
            try:
                photos.append(load_full_size(f))
            except RejectedImage as e:
                raise fail(f"--reference {metal}: {f}: {e}", 2)
        found[metal] = measure_reference(translator, metal, photos, [str(f) for f in files])
    return found


def _translate(photo: Path, out: Path, changes: dict[str, str], every: list[str], source: Optional[str],
               model: Optional[str], threads: int, reference: dict[str, str]) -> None:
    import torch
    from PIL import Image

    from jewelgan.data.imageio import RejectedImage, load_full_size
    from jewelgan.edit.translate import TranslatorError, edit_metals, edit_stones, metal_sheet, model_translator
    from jewelgan.image_files import encode_image
    from jewelgan.inference import ModelNotFound, load_model

    torch.set_num_threads(threads)
    try:
        m = load_model(model)
        translator = model_translator(m.info["path"])
        if translator is None:
            raise TranslatorError(f"model {m.info['model']!r} carries no metal translator; use --method invert")
        asked = sorted(set(changes) | set(every))
        other = [a for a in asked if a not in ("metal", "gemstone")]
        if other:
            raise TranslatorError(f"the translator changes the metal or the gemstone, not {other[0]!r}; "
                                  "use --method invert")
        if len(asked) > 1:
            raise TranslatorError("the translator changes one attribute per edit: metal or gemstone")
        attribute = asked[0] if asked else "metal"
        if reference and attribute != "metal":
            raise TranslatorError("--reference measures a metal's tint; it is for metal edits")
        known = list(translator.metals) if attribute == "metal" else list(translator.stones)
        targets = [changes[attribute]] if attribute in changes else known
        unused = sorted(set(reference) - set(targets))
        if unused:
            raise TranslatorError(f"--reference {unused[0]}: no edit to {unused[0]} is asked for "
                                  f"(the edits: {', '.join(targets)})")
        if not photo.is_file():
            raise TranslatorError(f"{photo}: no such photo")
        references = _references(translator, reference)
        rgb = load_full_size(photo)
        if attribute == "metal":
            edits = edit_metals(translator, rgb, targets, source, tints={m: r.tint for m, r in references.items()})
        else:
            edits = edit_stones(translator, rgb, targets, source)
    except RejectedImage as e:
        raise fail(f"{photo}: {e}", 2)
    except (TranslatorError, ModelNotFound, ValueError) as e:
        raise fail(str(e), 2)
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(metal_sheet(rgb, edits)).save(out / "sheet.png")
    files = []
    for e in edits:
        name = f"{e.attribute}={e.target}.png"
        (out / name).write_bytes(encode_image(e.image, "png"))
        files.append({"file": name, "changes": {e.attribute: e.target}, "seconds": round(e.seconds, 3)})
    read = edits[0].source_read if edits else "given"
    report = {"photo": str(photo), "method": "translate", "attribute": attribute, "size": list(rgb.shape[1::-1]),
              "source": edits[0].source if edits else source, "source_read": read, "edits": files}
    if references:
        report["references"] = {m: r.describe() for m, r in references.items()}
    (out / "edit.json").write_text(json.dumps(report, indent=1) + "\n")
    typer.echo(f"{photo.name}: {report['source']} ({read}) -> {', '.join(e.target for e in edits) or 'nothing'}; "
               f"wrote {len(files)} edits at {rgb.shape[1]}x{rgb.shape[0]} and sheet.png to {out}")


@app.command("interpolate")
def interpolate_cmd(
    seed_a: Optional[int] = typer.Option(None, "--seed-a", help="The first piece: the image of this seed."),
    seed_b: Optional[int] = typer.Option(None, "--seed-b", help="The second piece."),
    photo_a: Optional[Path] = typer.Option(None, "--photo-a", help="Or: the first piece from a photo (inverted)."),
    photo_b: Optional[Path] = typer.Option(None, "--photo-b", help="And the second from a photo."),
    out: Path = typer.Option(..., "--out", help="Folder for strip.png, strip.webp, strip.gif (and mix.png)."),
    steps: int = typer.Option(8, "--steps"),
    attr: List[str] = typer.Option([], "--attr", help="Fixed attributes for seeds: --attr category=ring"),
    truncation: float = typer.Option(1.0, "--truncation"),
    model: Optional[str] = typer.Option(None, "--model"),
    threads: int = typer.Option(1, "--threads"),
) -> None:
    """A strip (PNG) and a looping animation (WebP, GIF) from one piece to another; for seeds also a style-mixing
    row (mix.png: shape and pose from A, finish from B, one image per layer where they switch)."""
    import numpy as np
    import torch

    from jewelgan.edit import EditError, interpolate_inversions, invert, load_photo
    from jewelgan.inference import GenerateError, finish_images, mix_styles
    from jewelgan.grid import make_grid
    from jewelgan.image_files import encode_animation
    from jewelgan.inference import ModelNotFound, load_model

    torch.set_num_threads(threads)
    use_seeds = seed_a is not None and seed_b is not None
    use_photos = photo_a is not None and photo_b is not None
    if use_seeds == use_photos:
        raise fail("give --seed-a and --seed-b, or --photo-a and --photo-b", 2)
    try:
        m = load_model(model)
        attrs = _pairs(attr, "--attr")
        if use_seeds:
            frames = m.interpolate(seed_a, seed_b, steps, attrs, truncation)
            mixed = None
            if hasattr(m.G, "num_ws"):
                raw, cutoffs = mix_styles(m.G, m.schema, seed_a, seed_b, None, attrs, truncation, m.label_rows)
                mixed = (finish_images(raw), cutoffs)
        else:
            invs = []
            for p in (photo_a, photo_b):
                image, mask = load_photo(p, m.resolution)
                invs.append(invert(m, image, mask, attrs))
            frames = finish_images(interpolate_inversions(invs[0], invs[1], steps))
            mixed = None
    except (EditError, ModelNotFound, GenerateError, ValueError) as e:
        raise fail(str(e), 2)
    out.mkdir(parents=True, exist_ok=True)
    make_grid(frames, ncol=len(frames)).save(out / "strip.png")
    for fmt in ("webp", "gif"):
        (out / f"strip.{fmt}").write_bytes(encode_animation(np.asarray(frames), fmt))
    if mixed is not None:
        images, cutoffs = mixed
        make_grid(images, ncol=len(images), captions=[f"A<{c}" for c in cutoffs], tile=max(64, m.resolution)).save(
            out / "mix.png")
    typer.echo(f"wrote strip.png, strip.webp, strip.gif{' and mix.png' if mixed is not None else ''} to {out}")
