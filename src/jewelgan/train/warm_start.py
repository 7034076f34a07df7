"""Start a new run's generator from a trained one (TrainConfig.init_from): more training for a model
that has stopped, or transfer from the shipped studio model to a shop's own photos.

Every tensor whose name and shape agree is copied; the rest (label embeddings of another label set, the
RGB/RGBA output layer) keep their fresh initialisation and are listed. D always starts fresh: the model
folder holds only the generator, and a fresh D is the usual start of a fine-tune anyway.
"""

from __future__ import annotations

import torch
from torch import nn

from jewelgan.config import ConfigError
from jewelgan.runs.rundir import RunDir

MIN_SHARE = 0.5  # below this share of G's weights copied, the two are not the same network


def load_generator_weights(G: nn.Module, source: str, model: str) -> tuple[int, list[str], dict]:
    """Copy `source`'s generator tensors into G. Returns (tensors copied, names left fresh, origin: what the
    source was trained for, which run.json and the exported model card carry on)."""
    from jewelgan.inference.folder import ModelFolderError, read_generator
    from jewelgan.inference import ModelNotFound, resolve_model

    try:
        path = resolve_model(source)
        meta, tensors = read_generator(path)
    except (ModelFolderError, ModelNotFound) as e:
        raise ConfigError(f"TrainConfig.init_from: {e}") from None
    theirs = meta.get("config", {}).get("model")
    if theirs != model:
        raise ConfigError(f"TrainConfig.init_from: {source} is a {theirs} generator, this run trains {model}")
    own = G.state_dict()
    copied, fresh = {}, []
    for name, t in own.items():
        if name in tensors and tensors[name].shape == t.shape:
            copied[name] = tensors[name].to(t.dtype)
        else:
            fresh.append(name)
    total = sum(t.numel() for t in own.values())
    share = sum(own[n].numel() for n in copied) / max(total, 1)
    if share < MIN_SHARE:
        raise ConfigError(f"TrainConfig.init_from: {source} matches only {share:.0%} of this generator's weights "
                          "(another resolution or architecture; same model_args and res are needed)")
    with torch.no_grad():
        for name, t in copied.items():
            own[name].copy_(t)
    return len(copied), fresh, origin(source, path, meta)


def origin(source: str, path, meta: dict) -> dict:
    """The source's own training (a model folder's model.json, or a checkpoint's state), with its origin in
    turn when it was itself warm-started: the kimg and hours behind a model in all."""
    training = meta.get("training") or {}
    before = training.get("init_from")
    if "training" not in meta:  # a checkpoint: its run's run.json says where its G started
        before = RunDir.of(meta["path"]).provenance().get("init_from")
    seconds = training.get("seconds", meta.get("elapsed_s", 0.0))
    return {"source": source, "path": str(path), "kimg": float(meta.get("kimg") or 0.0),
            "seconds": round(float(seconds or 0.0), 1), "init_from": before}

