"""`jewelgan render`: the built-in synthetic jewelry studio."""

from __future__ import annotations

from pathlib import Path

import typer

from jewelgan.cli.app import app, fail


@app.command("render")
def render(
    n: int = typer.Option(..., "--n", help="Number of images to render."),
    res: int = typer.Option(64, "--res", help="Resolution in pixels (32, 64, 128, 256, 512 or 1024)."),
    out: Path = typer.Option(..., "--out", help="Dataset archive to write (a folder, e.g. studio64.jga)."),
    seed: int = typer.Option(0, "--seed", help="Image i depends only on (seed, i)."),
    categories: str = typer.Option("", "--categories",
                                   help="Comma-separated subset of ring,pendant,earrings,bracelet (default: all)."),
    workers: int = typer.Option(2, "--workers", help="Rendering processes (the result does not depend on it)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing archive at --out."),
):
    """Render a fully labelled synthetic dataset of jewelry product shots into an archive."""
    from jewelgan.studio import render_dataset

    cats = [c for c in categories.split(",") if c.strip()] or None
    if out.exists() and not overwrite:
        raise fail(f"{out} already exists (pass --overwrite to replace it)")
    try:
        path = render_dataset(out, n, res=res, seed=seed, categories=cats, workers=workers, overwrite=overwrite)
    except ValueError as e:
        raise fail(f"render: {e}")
    typer.echo(f"wrote {n} images at {res} px to {path}")
