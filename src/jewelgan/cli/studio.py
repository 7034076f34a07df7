"""CLI commands for studio (filled in by its issue)."""

from jewelgan.cli.app import app  # noqa: F401
