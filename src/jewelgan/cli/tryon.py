"""`jewelgan tryon`: a cut-out placed on a customer's photo."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from jewelgan.cli.app import app, fail


def _point(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise fail(f"--anchor {text!r} must look like X,Y (pixels of the photo)", 2) from None
    return x, y


@app.command("tryon")
def tryon_cmd(
    photo: Path = typer.Argument(..., help="The customer's photo (any format `prepare` reads)."),
    out: Path = typer.Option(..., "--out", help="The composite image to write (PNG, JPEG or WebP by extension)."),
    anchor: List[str] = typer.Option([], "--anchor", help="X,Y in the photo's pixels where the piece's centre "
                                     "goes; two for earrings. Default: found from face, pose or hand landmarks "
                                     "(needs the tryon extra)."),
    category: Optional[str] = typer.Option(None, "--category", help="What --item is (earrings, pendant, ring), "
                                           "for automatic placement; with --attr it comes from there."),
    item: Optional[Path] = typer.Option(None, "--item", help="An RGBA cut-out (a shop's own, or from `generate "
                                        "--transparent`)."),
    attr: List[str] = typer.Option([], "--attr", help="Or draw the piece with the model: --attr category=earrings"),
    model: Optional[str] = typer.Option(None, "--model", help="The model for --attr (default: the shipped one)."),
    seed: int = typer.Option(0, "--seed", help="The model's image seed for --attr."),
    scale: Optional[float] = typer.Option(None, "--scale", help="The piece's width as a share of the photo's "
                                          "width (default: from the landmarks, or 0.1 with --anchor)."),
    angle: Optional[float] = typer.Option(None, "--angle", help="Degrees, counter-clockwise (default: from the "
                                          "landmarks, or 0)."),
    key_background: bool = typer.Option(False, "--key-background", help="Cut an --item without alpha out of its "
                                        "plain backdrop."),
    shadow: bool = typer.Option(True, "--shadow/--no-shadow"),
    match_light: bool = typer.Option(True, "--match-light/--no-match-light"),
    occlusion: bool = typer.Option(True, "--occlusion/--no-occlusion", help="Hide the piece behind hair and "
                                   "fingers in front of it (needs the tryon extra and a known category)."),
) -> None:
    """Place a jewelry cut-out on a photo: at the anchor(s), at the asked scale and angle, with a soft contact
    shadow and the piece's light matched to the photo."""
    from PIL import Image

    from jewelgan.tryon import MAX_EDGE, TryOnError, fit_piece, load_cutout, load_photo

    if (item is None) == (not attr):
        raise fail("give --item CUTOUT.png, or --attr NAME=VALUE to draw the piece with the model", 2)
    anchors = [_point(a) for a in anchor]
    try:
        image = load_photo(photo)
        if item is not None:
            cutout = load_cutout(item, key_background)
        else:
            import jewelgan
            from jewelgan.inference import GenerateError
            from jewelgan.inference import ModelNotFound

            try:
                m = jewelgan.load_model(model)
                attrs = m.schema.parse_attrs(attr)
                cutout = m.generate(1, attrs, seed=seed, transparent=True, size=max(m.sizes))[0]  # the largest it draws
            except (GenerateError, ModelNotFound, ValueError) as e:
                raise TryOnError(str(e)) from None
        kind = category or dict(a.split("=", 1) for a in attr if "=" in a).get("category")
        if not anchors and kind is None:
            raise TryOnError("give --anchor X,Y, or --category (or --attr category=...) for automatic placement")
        fitted = fit_piece(image, cutout, kind, anchors, scale, angle, shadow=shadow, match_light=match_light,
                           occlusion=occlusion, on_found=lambda source: typer.echo(f"found the {source}"))
    except TryOnError as e:
        raise fail(str(e), 2)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise fail(f"--out {out}: write .png, .jpg or .webp", 2)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(fitted.composite).save(out)
    note = f" (photo downscaled to {MAX_EDGE} px)" if max(fitted.composite.shape[:2]) == MAX_EDGE else ""
    for p in fitted.placements:
        typer.echo(f"placed at {p.centroid[0]:.0f},{p.centroid[1]:.0f}, {p.width:.0f} px wide, {p.angle:g} deg")
    typer.echo(f"wrote {out}{note}")
