"""`jewelgan demo`: the README's main command (the shipped model's images; --train: render, train, sample)."""

import typer

from jewelgan.cli.app import app, fail


@app.command()
def demo(
    out: str = typer.Option("demo_out", help="Folder for the archive, the run and the samples."),
    n: int = typer.Option(2000, help="Studio images to render."),
    res: int = typer.Option(64, help="Resolution in pixels."),
    minutes: float = typer.Option(10.0, help="Training time budget in minutes."),
    model: str = typer.Option("dcgan", help="Model to train (mlp, dcgan, style)."),
    seed: int = typer.Option(0, help="Seed for rendering and training."),
    threads: int = typer.Option(None, help="Torch threads for training (use 1 on a busy machine)."),
    train: bool = typer.Option(False, "--train", help="Also render a studio set, train on it for --minutes and "
                                                     "sample from that run."),
) -> None:
    """Show the shipped model's images (a sheet and samples); with --train, the whole render-train-sample path."""
    from jewelgan.demo import run_demo, show_shipped
    from jewelgan.inference import ModelNotFound

    try:
        show_shipped(out, seed=seed)
    except ModelNotFound as e:
        if not train:
            raise fail(f"{e}; `jewelgan demo --train` trains a model instead", 2)
        typer.echo(f"note: {e}")
    if train:
        run_demo(out, n=n, res=res, minutes=minutes, model=model, seed=seed, threads=threads)
