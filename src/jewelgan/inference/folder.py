"""Reading a trained generator from disk: an exported model folder or a training checkpoint.

    MODEL_DIR/
        model.json               format tag, model name, training config, label schema and distribution, step
        generator.safetensors    the EMA generator (or the raw one, as chosen at export)
        README.md                model card
Generation, export and the other users of a trained model read through here, so neither needs the other.
"""

from __future__ import annotations

from pathlib import Path

import torch

from jewelgan.runs.checkpoint import CheckpointError, open_checkpoint
from jewelgan.formats import read_safetensors, read_tagged_json

FORMAT = "jewelgan-model"
VERSION = 1


class ModelFolderError(ValueError):
    """No generator can be read from a path (missing, incomplete or not a jewelgan model)."""


def is_model_folder(path: str | Path) -> bool:
    return (Path(path) / "model.json").is_file()


def read_model_folder(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    path = Path(path)
    meta = read_tagged_json(path / "model.json", FORMAT, VERSION, ModelFolderError)
    for key in ("model", "config", "model_schema"):
        if key not in meta:
            raise ModelFolderError(f"{path / 'model.json'}: no {key!r} entry (not a complete jewelgan model)")
    tensors = read_safetensors(path / "generator.safetensors", ModelFolderError)
    return dict(meta, path=str(path)), tensors


def read_generator(path: str | Path, which: str = "ema") -> tuple[dict, dict[str, torch.Tensor]]:
    """(metadata with config, model_schema, label_rows, step, kimg, path; the generator's tensors) from a
    model folder, a run directory (its latest checkpoint) or a checkpoint folder. which: "ema" or "G"."""
    if is_model_folder(path):
        return read_model_folder(path)
    try:
        ckpt = open_checkpoint(path)
        tensors = ckpt.tensors("G_ema" if which == "ema" and ckpt.has("G_ema") else "G")
    except CheckpointError as e:
        raise ModelFolderError(str(e)) from None
    return dict(ckpt.state, path=str(ckpt.path)), tensors
