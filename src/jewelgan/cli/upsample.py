"""jewelgan train-upsampler / add-upsampler: the cascade's learned upsampling stage."""

from pathlib import Path
from typing import Optional

import typer

from jewelgan.cli.app import app, fail


@app.command("train-upsampler")
def train_upsampler_cmd(
    data: Optional[Path] = typer.Option(None, "--data", help="The large images: a studio render (`render --res 256`) "
                                        "or a shop's photos prepared large (`prepare --res 256`)."),
    low: Optional[Path] = typer.Option(None, "--low", help="Exact small renders of the same pieces (`render --res 64` "
                                       "with the same --seed and --n). Without it, --data is degraded to the small size."),
    scale: int = typer.Option(4, "--scale", help="2, 4 or 8."),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="Training budget in minutes."),
    kimg: Optional[float] = typer.Option(None, "--kimg", help="Training budget in thousands of crops."),
    out: Path = typer.Option(Path("runs"), "--out", help="Folder that holds the run directory."),
    name: Optional[str] = typer.Option(None, "--name", help="Run directory name (default: numbered)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this upsampler run exactly."),
    into: Optional[Path] = typer.Option(None, "--into", help="When done, add the stage to this model folder."),
    seed: int = typer.Option(0, "--seed"),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch threads (1 when another job shares 2 cores)."),
    batch: int = typer.Option(8, "--batch"),
    crop: int = typer.Option(32, "--crop", help="Side of the small crops trained on (the large ones are x scale)."),
    width: int = typer.Option(32, "--width"),
    blocks: int = typer.Option(4, "--blocks"),
    lr_final: float = typer.Option(1.0, "--lr-final", help="Learning rates at the end of a --kimg budget, as a share "
                                   "(cosine decay; 1 = constant)."),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="Start from this upsampler run's latest "
                                             "weights (a new run: e.g. a decaying schedule after a plateau)."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Train an upsampling stage (the model draws at 64 px, the stage adds the detail a product page shows)."""
    from jewelgan.data.archive import ArchiveError
    from jewelgan.upsample import PairError, UpsampleConfig, UpsampleConfigError, UpsamplerTrainer

    try:
        if resume is not None:
            overrides = {k: v for k, v in (("minutes", minutes), ("kimg", kimg)) if v is not None}
            trainer = UpsamplerTrainer(resume=resume, overrides=overrides)
        else:
            if data is None:
                raise fail("--data is required (or --resume RUN)", 2)
            cfg = UpsampleConfig(data=str(data), low=str(low) if low else None, scale=scale, minutes=minutes,
                                 kimg=kimg, out=str(out), name=name, seed=seed, threads=threads, batch=batch,
                                 crop=crop, width=width, blocks=blocks, lr_final=lr_final,
                                 init_from=str(init_from) if init_from else None)
            trainer = UpsamplerTrainer(cfg)
        run = trainer.run_loop(progress)
    except (UpsampleConfigError, PairError, ArchiveError, FileExistsError) as e:
        raise fail(str(e), 2)
    typer.echo(f"run: {run}")
    if into is not None:
        add_upsampler_cmd(run, into)


@app.command("add-upsampler")
def add_upsampler_cmd(
    run: Path = typer.Argument(..., help="An upsampler run (its latest checkpoint's averaged weights are used)."),
    model: Path = typer.Argument(..., help="The model folder to add the stage to (`jewelgan export` writes one)."),
) -> None:
    """Add a trained upsampling stage to a model folder: the model then draws at the larger size too."""
    from jewelgan.inference import GenerateError, load_model
    from jewelgan.upsample.stage import StageError, stage_from_run, update_card, write_stage

    try:
        base = load_model(model)
        net, schema, summary = stage_from_run(run)
        size_in = summary.pop("size_in")
        if size_in not in base.sizes:
            raise StageError(f"{run} upsamples {size_in} px images; {model} draws {', '.join(map(str, base.sizes))} px")
        channels = 4 if base.has_alpha else 3
        if summary.pop("channels") != channels:
            raise StageError(f"{run} was trained on {net.channels}-channel images; {model} draws {channels}")
        path = write_stage(model, net, schema, size_in, summary)
        grown = load_model(model)
        update_card(model, grown.stages)
        if (model / "generator.onnx").is_file():  # a folder that ships ONNX ships the cascade too
            from jewelgan.inference.onnx_export import export_cascades

            export_cascades(grown, model)
        sizes = grown.sizes
    except (StageError, GenerateError, ValueError) as e:
        raise fail(str(e), 2)
    typer.echo(f"added {path.name}: {model} now draws {', '.join(map(str, sizes))} px")
