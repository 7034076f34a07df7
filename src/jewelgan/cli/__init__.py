"""Command line: a thin skin over the library. Each module registers the commands of one area."""

from jewelgan.cli.app import app
# importing a module registers its commands; `jewelgan --help` lists them in this order
from jewelgan.cli import data, studio, train, generate, export, evaluate  # noqa: F401
from jewelgan.cli import demo, serve, edit, study, tryon, upsample, matte, translate  # noqa: F401


def main() -> None:
    app()
