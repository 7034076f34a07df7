"""CLI commands for demo (filled in by its issue)."""

from jewelgan.cli.app import app  # noqa: F401
