"""A run's networks: G and D built from its config, G warm-started from `init_from` in a new run, G's EMA and
the augmentation, on the run's device in its memory layout. Built under the run's seed, so identical
configs start from identical weights.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from jewelgan.config import ConfigError, TrainConfig
from jewelgan.data.labels import LabelSchema
from jewelgan.models import build_model
from jewelgan.train.ema import make_ema
from jewelgan.train.precision import Precision
from jewelgan.train.warm_start import load_generator_weights


class Networks(NamedTuple):
    G: nn.Module
    D: nn.Module
    G_ema: nn.Module
    augment: nn.Module | None
    init_origin: dict | None  # where G's starting weights came from (init_from), for the run's provenance


def build_networks(cfg: TrainConfig, schema: LabelSchema, precision: Precision, *, warm_start: bool,
                   augment: nn.Module | None = None, announce: bool = True) -> Networks:
    """warm_start: copy init_from's generator into G (a new run; a resumed one has its own weights).
    augment: an augmentation module to use instead of the config's. announce: print what a warm start copied."""
    net, cls_weight = cfg.network, cfg.objective.cls_weight
    if cls_weight > 0 and len(schema) == 0:
        raise ConfigError("TrainConfig.cls_weight: needs a labelled, conditional run (the archive has no labels "
                          "or conditional is off)")
    torch.manual_seed(cfg.run.seed)
    G, D = build_model(net.model, cfg, schema)
    init_origin = None
    if net.init_from and warm_start:
        copied, fresh, init_origin = load_generator_weights(G, net.init_from, net.model)
        if announce:
            left = f"; fresh: {', '.join(fresh)}" if fresh else ""
            print(f"G starts from {net.init_from}: {copied} tensors copied{left}", flush=True)
    G, D = precision.module(G), precision.module(D)
    if cls_weight > 0 and not getattr(D, "classifies", False):
        raise ConfigError(f"TrainConfig.cls_weight: the {net.model} model's discriminator has no attribute "
                          "classifier (supported: mlp, dcgan, style with model_args.d = dcgan)")
    if augment is None and cfg.augmentation.augment:
        from jewelgan.data.augment import build_augment

        try:
            augment = build_augment(cfg.augmentation.augment)
        except ValueError as e:
            raise ConfigError(f"TrainConfig.augment: {e}") from None
    return Networks(G, D, make_ema(G), augment.to(precision.device) if augment is not None else None, init_origin)
