"""CLI: `jewelgan generate` (images in bulk, with a manifest) and `jewelgan models` (the models it can draw
from). Parses flags and calls jewelgan.inference."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from jewelgan.cli.app import app, fail


@app.command("generate")
def generate_cmd(
    run: Optional[Path] = typer.Option(None, "--run", help="Run directory or checkpoint folder."),
    model: Optional[str] = typer.Option(None, "--model", help="A shipped model's name or a model folder "
                                        "(`jewelgan models` lists them). Default: the shipped default model."),
    n: int = typer.Option(100, "--n", help="Number of images."),
    out: Path = typer.Option(..., "--out", help="Output folder (images + manifest.jsonl)."),
    attr: List[str] = typer.Option([], "--attr", help="Fix an attribute: --attr category=ring --attr metal=rose_gold"),
    seed: int = typer.Option(0, "--seed", help="Image i uses seed + i."),
    truncation: float = typer.Option(1.0, "--truncation", help="psi in [0, 1]; 1 = off."),
    batch: int = typer.Option(16, "--batch", help="Images per forward pass; an image's bytes depend on its seed "
                                                 "and this (the HTTP server uses the default, 16)."),
    device: str = typer.Option("cpu", "--device"),
    which: str = typer.Option("ema", "--which", help="ema (averaged weights) or G."),
    fmt: str = typer.Option("png", "--format", help="png, jpg (or jpeg) or webp."),
    noise: Optional[str] = typer.Option(None, "--noise",
                                        help="Style model only: const (fixed noise buffers) or none; default: the run's."),
    size: Optional[int] = typer.Option(None, "--size", help="Image edge in px: one the model draws (`jewelgan models` "
                                       "lists its sizes: the upsampling stages'); default: the generator's own."),
    resize: bool = typer.Option(False, "--resize", help="Allow a size no stage reaches: the nearest smaller size the "
                                "model draws, resampled (Lanczos)."),
    transparent: bool = typer.Option(False, "--transparent",
                                     help="Write RGBA cut-outs (png/webp); the model must have been trained with alpha."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the generator (about a minute to start, "
                                                        "then faster; the same images as `serve --compile`)."),
) -> None:
    """Generate images in bulk with a manifest; every image is reproducible from its own seed.

    With neither --run nor --model, the shipped default model draws them."""
    from jewelgan.inference import BulkRequest, GenerateError, ModelNotFound, load_model

    if n < 1:
        raise fail(f"--n must be >= 1, got {n}", 2)
    if run is not None and model is not None:
        raise fail("give --run or --model, not both", 2)
    try:
        loaded = load_model(run if run is not None else model, device, compile, which, noise)
        request = BulkRequest(n, attr, seed, truncation, batch, fmt, transparent, size, resize)
        if size is not None and resize and size not in loaded.sizes:
            below = max([s for s in loaded.sizes if s <= size] or [loaded.resolution])
            typer.echo(f"note: the model draws {', '.join(map(str, loaded.sizes))} px; {size} px is {below} px "
                       "resampled (Lanczos), not drawn", err=True)
        out_dir = loaded.generate_bulk(request, out, progress)
    except (GenerateError, ModelNotFound, ValueError) as e:
        # a bad model folder, attribute or value: nothing was written (generate_bulk checks before writing)
        raise fail(str(e), 2)
    typer.echo(f"wrote {n} images and manifest.jsonl to {out_dir}")


@app.command("models")
def models_cmd(
    dirs: List[Path] = typer.Argument(None, help="Model folders, or folders holding model folders, to list too."),
) -> None:
    """List the models jewelgan knows: the shipped ones, then model folders in DIRS, with their attributes."""
    from jewelgan.inference import DEFAULT_MODEL, list_models

    found = list_models(dirs or [])
    if not found:
        typer.echo("no models found (the package ships none, and no model folder was given)")
    for name, d in found:
        if "error" in d:
            typer.echo(f"{name}: unreadable: {d['error']}")
            continue
        tag = " (default)" if name == DEFAULT_MODEL else ""
        figures = ", ".join(f"{k} {v:.3g}" for k, v in d["evaluation"].items() if k in ("fid", "kid"))
        typer.echo(f"{name}{tag}: {d['model']} {', '.join(map(str, d['sizes']))} px{', alpha' if d['alpha'] else ''}, {d['kimg']:.0f} kimg"
                   + (f"; {figures}" if figures else "") + f"  [{d['path']}]")
        for attr, values in d["attributes"].items():
            typer.echo(f"    {attr}: {', '.join(values)}")
