"""CLI commands for data: `jewelgan prepare` and `jewelgan dataset info`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from jewelgan.cli.app import app, dataset_app, fail


class Square(str, Enum):
    pad = "pad"
    crop = "crop"


class AlphaMode(str, Enum):
    none = "none"
    auto = "auto"


@app.command()
def prepare(
    src: Path = typer.Argument(..., help="Folder of product photos (JPEG, PNG, WebP, BMP, TIFF, GIF), searched recursively."),
    out: Path = typer.Argument(..., help="Archive folder to write, e.g. shop.jga."),
    res: int = typer.Option(128, "--res", help="Output resolution: 32, 64, 128, 256, 512 or 1024."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="CSV/TSV/JSON/JSONL label file; paths relative to SRC."),
    folder_attribute: str = typer.Option("category", "--folder-attribute",
                                         help="Without --labels: attribute named by each file's first sub-folder."),
    no_labels: bool = typer.Option(False, "--no-labels", help="Ignore folder names; write an unlabelled archive."),
    square: Square = typer.Option(Square.pad, "--square", help="pad (keep the whole jewel) or crop (centre crop)."),
    background: str = typer.Option("auto", "--background", help="Pad/alpha colour: auto (from the border), white or #RRGGBB."),
    alpha: AlphaMode = typer.Option(AlphaMode.none, "--alpha", help="none (RGB) or auto: key alpha from each photo's plain backdrop "
                              "(photos on a busy background stay opaque and are reported)."),
    drop_near_duplicates: bool = typer.Option(False, "--drop-near-duplicates", help="Drop near duplicates instead of only reporting them."),
    near_threshold: int = typer.Option(6, "--near-threshold", help="pHash Hamming distance (of 64 bits) that counts as near duplicate."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes (default: all cores)."),
    min_size: Optional[int] = typer.Option(None, "--min-size", help="Minimum px of the side that becomes --res (default res/2)."),
    max_pixels: int = typer.Option(100_000_000, "--max-pixels", help="Decompression-bomb cap on width x height."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists (atomically)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Where to write the JSON report (default OUT.report.json)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Turn a folder of product photos into a training archive; bad files are reported, not fatal."""
    from jewelgan.data.prepare import PrepareError, prepare as run_prepare

    if labels is not None and no_labels:
        raise fail("--labels and --no-labels contradict each other")
    try:
        rep = run_prepare(src, out, res, labels=labels, folder_attribute=None if no_labels else folder_attribute,
                          square=square.value, background=background, alpha=alpha.value, drop_near_duplicates=drop_near_duplicates,
                          near_threshold=near_threshold, workers=workers, min_size=min_size,
                          max_pixels=max_pixels, overwrite=overwrite, report_path=report, progress=not quiet)
    except PrepareError as e:
        raise fail(str(e))
    except KeyboardInterrupt:
        raise fail(f"interrupted: {out} was not written (a previous archive there is untouched)", 130)
    except OSError as e:  # e.g. no permission or no space where the archive goes
        raise fail(f"cannot write {out}: {e}")
    attrs = ", ".join(rep.labels.get("attributes") or ([rep.labels["attribute"]] if rep.labels.get("attribute") else [])) or "none"
    typer.echo(f"wrote {rep.written} images ({res} px) to {out} in {rep.seconds:.1f} s "
               f"({rep.images_per_s:.0f} images/s); rejected {len(rep.rejected)}; labels: {attrs}; "
               f"report: {rep.report_path}")


@dataset_app.command("info")
def info(
    archive: Path = typer.Argument(..., help="Archive folder."),
    sheet: Optional[Path] = typer.Option(None, "--sheet", help="Contact sheet PNG to write (default ARCHIVE-sheet.png)."),
    n: int = typer.Option(64, "--n", help="Images on the contact sheet."),
    seed: int = typer.Option(0, "--seed", help="Which images the sheet samples."),
) -> None:
    """Print counts per attribute value and write a contact sheet of labelled samples."""
    from jewelgan.data.archive import Archive, ArchiveError
    from jewelgan.data.contact_sheet import contact_sheet, cutout_sheet
    from jewelgan.data.label_balance import thin_value_warnings

    try:
        a = Archive(archive)
    except ArchiveError as e:
        raise fail(str(e))
    if n < 1:
        raise fail(f"--n must be at least 1, got {n}")
    typer.echo(f"{archive}: {len(a)} images, {a.resolution} px, {'RGB + alpha' if a.has_alpha else 'RGB'}, "
               f"{a.content_hash}")
    counts = a.value_counts()
    if not counts:
        typer.echo("no label attributes (unconditional dataset)")
    for name, values in counts.items():
        typer.echo(f"{name} ({len(a.schema.attributes[name])} values)")
        width = max((len(v) for v in values), default=0)
        for value, count in values.items():
            pct = 100.0 * count / max(1, len(a))
            typer.echo(f"  {value:<{width}}  {count:>7}  {pct:5.1f}%")
    for line in thin_value_warnings(counts, len(a)):
        typer.echo(f"warning: {line}")
    sheet = sheet or archive.with_name(archive.name + "-sheet.png")
    try:
        sheet.parent.mkdir(parents=True, exist_ok=True)
        contact_sheet(a, n=n, seed=seed).save(sheet)
    except OSError as e:
        raise fail(f"{sheet}: cannot write contact sheet ({e.strerror or e})")
    typer.echo(f"contact sheet: {sheet}")
    if a.has_alpha:  # the alpha as a cut-out shows it: on white a haze or a missing stone is invisible
        cutouts = sheet.with_name(sheet.stem + "-cutouts.png")
        try:
            cutout_sheet(a, n=n, seed=seed).save(cutouts)
        except OSError as e:
            raise fail(f"{cutouts}: cannot write the cut-out sheet ({e.strerror or e})")
        typer.echo(f"cut-outs on dark and checks: {cutouts}")
