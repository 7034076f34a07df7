"""Command line: a thin skin over the library. Each module registers the commands of one area."""

from jewelgan.cli.app import app
from jewelgan.cli import data, studio, train, evaluate, demo, serve, edit, study, tryon  # noqa: F401  (registers commands)


def main() -> None:
    app()
