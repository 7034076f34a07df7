"""A trained generator from disk: an exported model folder, a run directory or a checkpoint folder."""

from __future__ import annotations

from pathlib import Path

import torch

from jewelgan.data.labels import LabelSchema
from jewelgan.inference.errors import GenerateError


def load_generator(path: str | Path, device: str | torch.device = "cpu", which: str = "ema",
                   noise: str | None = None):
    """Load a generator from a run directory, a checkpoint folder or an exported model folder.

    which: "ema" (the averaged weights, best for sampling) or "G" (the raw training weights).
    noise: for a generator with noise inputs (the style model), how samples take them: "const" (the
    fixed buffers learnt in training) or "none"; None keeps what the run stored. "const" on a run that
    stored "none" samples it the way cpu-64 samples. Random noise is not offered: an image must stay
    reproducible from its seed alone.
    Returns (G in eval mode on device, the model's LabelSchema, info dict with model, step, kimg, res,
    z_dim, config, label_rows and path).
    """
    from jewelgan.config import TrainConfig
    from jewelgan.models import build_model
    from jewelgan.models.style_generator import EVAL_NOISE_MODES

    path = Path(path)
    if which not in ("ema", "G"):
        raise GenerateError(f"which must be 'ema' or 'G', got {which!r}")
    if noise is not None and noise not in EVAL_NOISE_MODES:
        raise GenerateError(f"noise must be one of {', '.join(EVAL_NOISE_MODES)}, got {noise!r}")
    if not path.exists():
        raise GenerateError(f"{path}: no such run, checkpoint or model folder")
    from jewelgan.config import ConfigError
    from jewelgan.inference.folder import ModelFolderError, read_generator

    try:
        meta, tensors = read_generator(path, which)
        config = TrainConfig.from_dict(meta["config"], source=f"{path} config")
    except (ModelFolderError, ConfigError) as e:
        raise GenerateError(str(e)) from None
    schema = LabelSchema.from_json(meta["model_schema"])
    G, _ = build_model(config.model, config, schema, discriminator=False)
    try:
        G.load_state_dict(tensors)
    except RuntimeError as e:
        raise GenerateError(f"{path}: weights do not fit model {config.model!r}: {str(e).splitlines()[0]}") from None
    if noise is not None:
        if not hasattr(G, "eval_noise"):
            raise GenerateError(f"{path}: model {config.model!r} has no noise inputs, so noise={noise!r} does not apply")
        G.eval_noise = noise
    G.to(device).eval().requires_grad_(False)
    info = {
        "model": config.model, "step": int(meta.get("step", 0)), "kimg": float(meta.get("kimg", 0.0)),
        "res": config.res, "z_dim": int(G.z_dim), "config": config.to_dict(),
        "label_rows": meta.get("label_rows"), "path": meta.get("path", str(path)), "which": which,
        "noise": getattr(G, "eval_noise", None),
    }
    G.jewelgan_info = info  # lets sample_images find the training label distribution on its own
    return G, schema, info

