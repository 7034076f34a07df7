"""CLI: `jewelgan export`: a run's generator as a model folder. Parses flags and calls jewelgan.inference.export."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from jewelgan.cli.app import app, fail


@app.command("export")
def export_cmd(
    run: Path = typer.Option(..., "--run", help="Run directory or checkpoint folder."),
    out: Path = typer.Option(..., "--out", help="Model folder to write."),
    which: str = typer.Option("ema", "--which", help="ema or G."),
    fmt: List[str] = typer.Option(["safetensors"], "--format",
                                  help="safetensors (always written) and/or onnx (adds generator.onnx)."),
    evaluation: Optional[Path] = typer.Option(None, "--evaluation",
                                              help="A `jewelgan evaluate --out` JSON of this model: its figures go "
                                                   "into the model card."),
    overwrite: bool = typer.Option(False, "--overwrite"),
) -> None:
    """Export a trained generator as a self-contained model folder (safetensors + JSON + model card)."""
    from jewelgan.inference import GenerateError
    from jewelgan.inference.export import FORMATS, save_pretrained

    bad = [f for f in fmt if f not in FORMATS]
    if bad:
        raise fail(f"--format {bad[0]!r}: choose from {', '.join(FORMATS)}", 2)
    try:
        path = save_pretrained(run, out, which, overwrite, onnx="onnx" in fmt, evaluation=evaluation)
    except (GenerateError, FileExistsError, ValueError) as e:
        raise fail(str(e))
    typer.echo(f"exported: {path}")
