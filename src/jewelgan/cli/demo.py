"""`jewelgan demo`: the README's main command (render the studio, train, write samples)."""

import typer

from jewelgan.cli.app import app


@app.command()
def demo(
    out: str = typer.Option("demo_out", help="Folder for the archive, the run and the samples."),
    n: int = typer.Option(2000, help="Studio images to render."),
    res: int = typer.Option(64, help="Resolution in pixels."),
    minutes: float = typer.Option(10.0, help="Training time budget in minutes."),
    model: str = typer.Option("dcgan", help="Model to train (mlp, dcgan, style)."),
    seed: int = typer.Option(0, help="Seed for rendering and training."),
    threads: int = typer.Option(None, help="Torch threads for training (use 1 on a busy machine)."),
) -> None:
    """Render a studio set, train a model on it for a bounded time and write generated samples."""
    from jewelgan.demo import run_demo

    run_demo(out, n=n, res=res, minutes=minutes, model=model, seed=seed, threads=threads)
