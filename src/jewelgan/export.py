"""Exported model folders: the generator alone, as safetensors plus JSON, with a short model card.

    MODEL_DIR/
        model.json               format tag, model name, training config, label schema and distribution, step
        generator.safetensors    the EMA generator (or the raw one, as chosen at export)
        README.md                model card: what it was trained on, for how long, how to sample
A model folder is what `generate`, `serve` and other users load; it carries no optimiser or D state.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import torch
from safetensors.torch import load as st_load

from jewelgan.formats import read_tagged_json

FORMAT = "jewelgan-model"
VERSION = 1


def save_pretrained(source: str | Path, out: str | Path, which: str = "ema", overwrite: bool = False) -> Path:
    """Export the generator of a run directory (latest checkpoint) or checkpoint folder to `out`."""
    from jewelgan.generate import GenerateError
    from jewelgan.train.checkpoint import CheckpointError, open_checkpoint

    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists (pass overwrite to replace it)")
    try:
        ckpt = open_checkpoint(source)
    except CheckpointError as e:
        raise GenerateError(str(e)) from None
    name = "G_ema" if which == "ema" and ckpt.has("G_ema") else "G"
    state = ckpt.state
    meta = {
        "format": FORMAT, "version": VERSION, "model": state["config"]["model"], "which": which,
        "step": state["step"], "kimg": state.get("kimg", 0.0), "config": state["config"],
        "model_schema": state["model_schema"], "label_rows": state.get("label_rows"),
        "archive": state.get("archive"), "source": str(ckpt.path.resolve()),
        "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copyfile(ckpt.path / f"{name}.safetensors", tmp / "generator.safetensors")
    (tmp / "model.json").write_text(json.dumps(meta, indent=1) + "\n")
    (tmp / "README.md").write_text(_card(meta))
    if out.exists():
        shutil.rmtree(out)
    os.rename(tmp, out)
    return out


def read_model_dir(path: str | Path, which: str = "ema") -> tuple[dict, dict[str, torch.Tensor]]:
    path = Path(path)
    meta = read_tagged_json(path / "model.json", FORMAT, VERSION)
    weights = path / "generator.safetensors"
    if not weights.is_file():
        raise ValueError(f"{weights}: missing")
    return dict(meta, path=str(path)), st_load(weights.read_bytes())


def from_pretrained(path: str | Path, device: str = "cpu"):
    """(G, schema, info) from an exported model folder; same as generate.load_generator."""
    from jewelgan.generate import load_generator

    return load_generator(path, device)


def _card(meta: dict) -> str:
    cfg = meta["config"]
    attrs = meta["model_schema"].get("attributes", {})
    lines = [
        f"# jewelgan model: {meta['model']} at {cfg['res']} px", "",
        f"- trained for {meta['kimg']:.1f} kimg ({meta['step']} steps) on `{cfg['data']}`"
        + (f" (archive {meta['archive']['content_hash']})" if meta.get("archive") else ""),
        f"- loss {cfg['loss']}, batch {cfg['batch']}, seed {cfg['seed']}; weights: {meta['which']}",
        "- conditioning: " + ("; ".join(f"{k}: {', '.join(v)}" for k, v in attrs.items()) or "none"), "",
        "Sample from Python:", "```python",
        "from jewelgan.generate import load_generator, sample_images",
        "G, schema, info = load_generator('THIS_FOLDER')",
        "images = sample_images(G, schema, 16, attrs={}, seed=0)  # uint8 (16, R, R, 3)", "```", "",
        "Or: `jewelgan generate --run THIS_FOLDER --n 100 --out samples/`", "",
    ]
    return "\n".join(lines)
