"""jewelgan render-pairs / train-translator: the metal translator (the same piece in another metal)."""

from pathlib import Path
from typing import Optional

import typer

from jewelgan.cli.app import app, fail


@app.command("render-pairs")
def render_pairs_cmd(
    out: Path = typer.Argument(..., help="The .npz to write."),
    n: int = typer.Option(640, "--n", help="Pieces; each is rendered in every metal."),
    res: int = typer.Option(256, "--res"),
    seed: int = typer.Option(0, "--seed"),
    workers: int = typer.Option(2, "--workers"),
) -> None:
    """Render studio pieces in every metal, taken apart (the piece's colour per metal, exact alpha, shadow,
    material map): the exact pairs the metal translator trains on."""
    from jewelgan.edit.pairs import render_metal_pairs

    if n < 1 or res < 64 or workers < 1:
        raise fail("--n and --workers must be at least 1, --res at least 64", 2)
    typer.echo(f"wrote {render_metal_pairs(out, n, res, seed, workers)}")


@app.command("train-translator")
def train_translator_cmd(
    pairs: Optional[Path] = typer.Option(None, "--pairs", help="Metal pairs from `render-pairs`."),
    photos: Optional[Path] = typer.Option(None, "--photos", help="A folder of your own photos: their borders "
                                          "join the backdrops the pairs are composed over."),
    kimg: Optional[float] = typer.Option(None, "--kimg", help="Budget in thousands of training pairs."),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="Or a budget in minutes (constant rate)."),
    out: Path = typer.Option(Path("runs"), "--out"),
    name: Optional[str] = typer.Option(None, "--name"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this translator run exactly."),
    into: Optional[Path] = typer.Option(None, "--into", help="When done, write the translator into this model "
                                        "folder (translator.safetensors + .json; `edit` uses it)."),
    seed: int = typer.Option(0, "--seed"),
    threads: Optional[int] = typer.Option(None, "--threads"),
    batch: int = typer.Option(8, "--batch"),
    crop: int = typer.Option(128, "--crop", help="Training crop side, a multiple of 64."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Train the metal translator (pix2pix-style) on the studio's same-piece pairs over many backdrops."""
    from jewelgan.edit.trainer import TranslatorConfig, TranslatorConfigError, TranslatorTrainer

    try:
        if resume is not None:
            overrides = {k: v for k, v in (("minutes", minutes), ("kimg", kimg)) if v is not None}
            trainer = TranslatorTrainer(resume=resume, overrides=overrides)
        else:
            if pairs is None:
                raise fail("--pairs is required (or --resume RUN)", 2)
            cfg = TranslatorConfig(pairs=str(pairs), photos=str(photos) if photos else None, kimg=kimg,
                                   minutes=minutes, out=str(out), name=name, seed=seed, threads=threads,
                                   batch=batch, crop=crop, lr_final=0.05 if kimg else 1.0)
            trainer = TranslatorTrainer(cfg)
        run = trainer.run_loop(progress)
    except (TranslatorConfigError, FileExistsError) as e:
        raise fail(str(e), 2)
    typer.echo(f"run: {run}")
    if into is not None:
        from jewelgan.edit.calibrate import export_translator

        path, confident_at = export_translator(run, into, trainer.pairs, trainer.val_idx, trainer.photos)
        typer.echo(f"wrote {path} (source metal read from the photo at p >= {confident_at:.2f})")
