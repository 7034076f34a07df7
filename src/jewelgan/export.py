"""Export: a run's generator alone as a model folder (safetensors plus JSON, with a short model card;
layout in model_folder.py). A model folder is what `generate`, `serve` and other users load; it carries
no optimiser or D state.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from jewelgan.checkpoint import CheckpointError, open_checkpoint
from jewelgan.model_folder import FORMAT, VERSION


def save_pretrained(source: str | Path, out: str | Path, which: str = "ema", overwrite: bool = False) -> Path:
    """Export the generator of a run directory (latest checkpoint) or checkpoint folder to `out`."""
    from jewelgan.generate import GenerateError

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
