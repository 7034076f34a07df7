"""The Typer application object that every command module registers on."""

import typer

app = typer.Typer(
    name="jewelgan",
    help="GANs for jewelry product images: prepare, render, train, evaluate, generate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
dataset_app = typer.Typer(help="Inspect dataset archives.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")
classifier_app = typer.Typer(help="Attribute classifier used by `evaluate`.", no_args_is_help=True)
app.add_typer(classifier_app, name="classifier")


def fail(message: str, code: int = 1) -> "typer.Exit":
    """Print a one-line error to stderr and return the Exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)
