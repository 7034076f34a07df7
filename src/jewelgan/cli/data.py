"""CLI commands for data (filled in by its issue)."""

from jewelgan.cli.app import app  # noqa: F401
