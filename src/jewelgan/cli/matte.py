"""jewelgan train-matte / cutout: the jewelry matte (alpha and a shadow layer for product photos)."""

from pathlib import Path
from typing import List, Optional

import typer

from jewelgan.cli.app import app, fail


@app.command("train-matte")
def train_matte_cmd(
    layers: Optional[Path] = typer.Option(None, "--layers", help="Studio pieces taken apart, from "
                                          "`render-layers` (exact alpha, colour, shadow, materials)."),
    photos: Optional[Path] = typer.Option(None, "--photos", help="A folder of your own photos: their borders "
                                          "join the backdrops the matte learns to see through."),
    kimg: Optional[float] = typer.Option(None, "--kimg", help="Budget in thousands of training crops."),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="Or a budget in minutes (constant rate)."),
    out: Path = typer.Option(Path("runs"), "--out"),
    name: Optional[str] = typer.Option(None, "--name"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this matte run exactly."),
    into: Optional[Path] = typer.Option(None, "--into", help="When done, write the matte into this folder "
                                        "(matte.safetensors + matte.json; `cutout --matte` reads it)."),
    seed: int = typer.Option(0, "--seed"),
    threads: Optional[int] = typer.Option(None, "--threads"),
    batch: int = typer.Option(8, "--batch"),
    crop: int = typer.Option(160, "--crop", help="Training crop side, a multiple of 32."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Train the jewelry matte on studio renders composited over many backdrops."""
    from jewelgan.matte.predict import Matte, write_matte
    from jewelgan.matte.trainer import MatteConfig, MatteConfigError, MatteTrainer

    try:
        if resume is not None:
            overrides = {k: v for k, v in (("minutes", minutes), ("kimg", kimg)) if v is not None}
            trainer = MatteTrainer(resume=resume, overrides=overrides)
        else:
            if layers is None:
                raise fail("--layers is required (or --resume RUN)", 2)
            cfg = MatteConfig(layers=str(layers), photos=str(photos) if photos else None, kimg=kimg,
                              minutes=minutes, out=str(out), name=name, seed=seed, threads=threads, batch=batch,
                              crop=crop, lr_final=0.05 if kimg else 1.0)
            trainer = MatteTrainer(cfg)
        run = trainer.run_loop(progress)
    except (MatteConfigError, FileExistsError) as e:
        raise fail(str(e), 2)
    typer.echo(f"run: {run}")
    if into is not None:
        matte = Matte.from_run(run)
        write_matte(into, matte.net, {"run": run.name, "kimg": matte.meta.get("kimg")})
        typer.echo(f"wrote {into / 'matte.json'}")


@app.command("render-layers")
def render_layers_cmd(
    out: Path = typer.Argument(..., help="The .npz to write."),
    n: int = typer.Option(1000, "--n"),
    res: int = typer.Option(256, "--res"),
    seed: int = typer.Option(0, "--seed"),
    workers: int = typer.Option(2, "--workers"),
) -> None:
    """Render studio pieces taken apart (image, exact alpha, the piece's own colour, floor shadow, material
    map): what the matte trains on and is measured against."""
    from jewelgan.matte.examples import render_layer_set

    if n < 1 or res < 32 or workers < 1:
        raise fail("--n and --workers must be at least 1, --res at least 32", 2)
    typer.echo(f"wrote {render_layer_set(out, n, res, seed, workers)}")


@app.command("cutout")
def cutout_cmd(
    photos: List[Path] = typer.Argument(..., help="Product photos (a piece on its backdrop)."),
    out: Path = typer.Option(..., "--out", help="Folder for NAME.png (transparent, the photo's own size)."),
    shadow: bool = typer.Option(False, "--shadow/--no-shadow", help="Also write NAME-shadow.png: the piece's "
                                "shadow as a layer to put under the cut-out (keep it or drop it)."),
    matte: Optional[Path] = typer.Option(None, "--matte", help="A matte folder (default: the shipped one)."),
) -> None:
    """Cut jewelry out of product photos: transparent PNGs at each photo's own size."""
    from PIL import Image

    from jewelgan.data.imageio import RejectedImage, load_full_size
    from jewelgan.matte.predict import Matte, MatteError

    try:
        m = Matte.load(matte)
    except MatteError as e:
        raise fail(str(e), 2)
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in photos:
        try:
            result = m(load_full_size(path))
        except (RejectedImage, MatteError) as e:
            typer.secho(f"{path}: skipped: {e}", fg=typer.colors.YELLOW, err=True)
            failed += 1
            continue
        target = out / f"{path.stem}.png"
        Image.fromarray(result.cutout()).save(target)
        if shadow:
            Image.fromarray(result.shadow_layer()).save(out / f"{path.stem}-shadow.png")
        typer.echo(f"wrote {target} ({result.alpha.shape[1]}x{result.alpha.shape[0]})")
    if failed:
        raise fail(f"{failed} of {len(photos)} photos could not be cut out (named above); the others were written", 1)
