"""The `style` model: the StyleGAN2-family generator (models/style_generator.py) with a discriminator of
choice (DCGAN's BatchNorm D, the residual D or the projected D), built from model_args.

model_args name a preset (models/presets.py) and/or set options one by one; a run stores them written
out in full (`preset: null`), so it rebuilds the same network after a preset changes.
"""

from __future__ import annotations

from jewelgan.models.dcgan import DCGANDiscriminator, default_d_norm
from jewelgan.models.layers import image_channels, schema_sizes
from jewelgan.models.presets import PRESETS, get_preset
from jewelgan.models.projected_d import ProjectedDiscriminator
from jewelgan.models.registry import register_model
from jewelgan.models.resnet_d import ResNetDiscriminator
from jewelgan.models.style_generator import StyleGenerator

G_ARGS = ("w_dim", "mapping_layers", "channel_base", "channel_max", "mixing_prob", "embed_dim", "mean_w_samples",
          "output", "mapping_lr_mul", "noise", "noise_max_res", "eval_noise", "noise_drop")
D_ARGS = ("d", "d_ndf", "d_max_ch", "d_norm", "d_colour", "d_input_res", "d_head_channels", "d_proj_channels",
          "d_cond_dim", "d_channel_base", "d_channel_max")


def resolve_model_args(model_args: dict, res: int) -> dict:
    """model_args -> full settings: the named preset (or defaults sized for res), then explicit keys.

    `preset: null` marks settings already written out (what a run stores): nothing is added beneath
    them, so an option introduced later takes its constructor default, the old behaviour.
    """
    args = dict(model_args or {})
    unknown = set(args) - set(G_ARGS) - set(D_ARGS) - {"preset"}
    if unknown:
        raise ValueError(f"model_args for style: unknown option(s) {', '.join(sorted(unknown))}; "
                         f"known: preset, {', '.join(G_ARGS + D_ARGS)}")
    if "preset" in args and args["preset"] is None:
        base = {}
    elif args.get("preset") is not None:
        base = dict(get_preset(args["preset"])["model_args"])
    else:  # no preset: the nearest one by resolution
        base = dict(PRESETS["cpu-64" if res <= 64 else "gpu-128" if res <= 128 else "gpu-256" if res <= 256
                            else "gpu-512"]["model_args"])
    args.pop("preset", None)
    base.update(args)
    if base.get("d", "projected") not in ("projected", "resnet", "dcgan"):
        raise ValueError(f"model_args.d for style must be 'dcgan', 'projected' or 'resnet', got {base['d']!r}")
    return base


@register_model("style")
def build_style(config, schema, discriminator: bool = True):
    res = int(config.res or 64)
    args = resolve_model_args(config.model_args, res)
    sizes = schema_sizes(schema) if getattr(config, "conditional", True) else []
    channels = image_channels(config)
    if channels == 4 and not _sees_alpha(args):
        raise ValueError("model_args.d: the projected discriminator sees RGB only (its frozen network takes 3 "
                         "channels); train with alpha=false, or d: dcgan or resnet to learn the alpha channel")
    G = StyleGenerator(sizes, resolution=res, z_dim=int(config.z_dim), channels=channels,
                       **{k: args[k] for k in G_ARGS if k in args})
    D = None
    if discriminator:
        if args.get("d", "projected") == "projected":
            D = ProjectedDiscriminator(sizes, resolution=res, input_res=args.get("d_input_res"),
                                       head_channels=int(args.get("d_head_channels", 64)),
                                       proj_channels=tuple(args.get("d_proj_channels", (32, 64, 128, 256))),
                                       cond_dim=int(args.get("d_cond_dim", 64)))
        elif args["d"] == "dcgan":
            D = DCGANDiscriminator(res, sizes, int(args.get("d_ndf", 64)), int(args.get("d_max_ch", 512)),
                                   args.get("d_norm", default_d_norm(config)), config.cls_weight > 0,
                                   int(args.get("d_colour", 0)), channels)
        else:
            D = ResNetDiscriminator(sizes, resolution=res, channel_base=int(args.get("d_channel_base", 8192)),
                                    channel_max=int(args.get("d_channel_max", 256)), channels=channels)
    return G, D


def _resolve_args(config) -> dict:
    """What a run stores as model_args: every setting written out, no preset name to re-read later."""
    return {"preset": None, **resolve_model_args(config.model_args, int(config.res or 64))}


def _sees_alpha(args: dict) -> bool:
    return args.get("d", "projected") != "projected"


build_style.resolve_args = _resolve_args
# whether this configuration can learn an archive's alpha channel (TrainConfig.alpha "auto" asks)
build_style.sees_alpha = lambda config: _sees_alpha(resolve_model_args(config.model_args, int(config.res or 64)))
