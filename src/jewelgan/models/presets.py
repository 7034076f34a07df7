"""Presets of the style model: an architecture (model_args, read by the style builder) plus the
TrainConfig fields that go with it, selected with `--preset`. docs/configs.md describes each one and
its measured figures. CPU presets are chosen for throughput first: on a CPU budget, images seen per
second is quality.
"""

from __future__ import annotations

PRESETS: dict[str, dict] = {
    "cpu-64": dict(
        # Designed for throughput on a 2-core CPU; each choice was measured in 30-minute time-to-quality
        # runs on the studio and on real photos (docs/experiments.md):
        # - G: small widths, a 2-layer mapping at full lr, no style mixing (both only delayed conditioning);
        #   noise inputs, with the fixed buffers at sampling (G follows the labels far better with them);
        #   tanh_leak_bounded output: fakes stay in the reals' range, saturated pixels keep a gradient back,
        #   and nothing runs away where reals sit at exactly +-1 (a photo's pure white backdrop).
        # - D: DCGAN's BatchNorm D with projection at a quarter width (d_ndf 16): it taught shapes where the
        #   residual and projected Ds left blobs, and the narrow width buys ~2x the images per minute.
        model_args=dict(w_dim=128, mapping_layers=2, channel_base=1024, channel_max=128, mixing_prob=0.0,
                        mapping_lr_mul=1.0, output="tanh_leak_bounded", eval_noise="const", d="dcgan", d_ndf=16),
        config=dict(res=64, z_dim=64, batch=32, loss="ns",
                    # equalised-lr G needs ~10x D's lr
                    lr_g=2e-3, lr_d=2e-4, beta1=0.5, beta2=0.999, ema_kimg=2.0,
                    # ADA without its colour group: colour is a label here (metal, gemstone), and D's attribute
                    # classifier learnt it from recoloured reals
                    augment="ada:bg", r1=0.0,
                    # where this CPU runs bf16 faster (train/precision.py); the frozen guidance network stays fp32
                    bf16="auto",
                    # AC-GAN: D classifies the reals' attributes and G is scored on them (category, metal); at 5
                    # it holds metal following with the frozen network at full resolution (below)
                    cls_weight=5.0,
                    # frozen EfficientNet-Lite0 guidance (train/guidance.py): feature matching over the batch and
                    # per attribute value, a second D on the pooled features (at half weight), and matching of
                    # their spread; that network sees the fakes at 64 px: 14-17 FID better than at 48 px on real
                    # photos and the studio alike, and the weaker critic with the stronger classifier keeps metal
                    guide_fm=10.0, guide_cfm=30.0, guide_adv=0.5, guide_fstd=30.0,
                    guide_res=64,
                    # the per-value matching moves each value's fakes by that value's running gap: from the batch
                    # alone, the one ring in a batch of a 3 % category was pulled onto the rings' mean and every
                    # ring came out as one blended picture (docs/real-photos.md, uneven catalogues)
                    guide_value_mean="running",
                    # reals (and so the fakes' labels) drawn in proportion to the square root of each category's
                    # count: on an uneven catalogue (644 earrings, 19 rings) the small categories' spread rose
                    # from 0.56 to 0.78-0.84 of their photos' and their KID fell by a third to two thirds, the
                    # overall FID 105 -> 82 (docs/real-photos.md); a balanced catalogue keeps its proportions
                    balance=0.5,
                    # +36 % images/s on CPU (benchmarks/train_throughput.py)
                    channels_last=True),
    ),
    "cpu-64-projected": dict(
        model_args=dict(w_dim=128, mapping_layers=2, channel_base=2048, channel_max=128, mixing_prob=0.5,
                        output="tanh", d="projected", d_input_res=64, d_head_channels=64,
                        d_proj_channels=[32, 64, 128, 256]),
        config=dict(res=64, z_dim=64, batch=32, loss="hinge", lr_g=2e-4, lr_d=2e-4, beta1=0.0, beta2=0.99,
                    ema_kimg=2.0, augment="diffaug:color,translation,cutout", r1=0.0, bf16=False),
    ),
    "gpu-128": dict(
        model_args=dict(w_dim=256, mapping_layers=4, channel_base=16384, channel_max=256, mixing_prob=0.9,
                        d="projected", d_input_res=224, d_head_channels=128, d_proj_channels=[64, 128, 256, 512]),
        config=dict(res=128, z_dim=256, batch=64, loss="hinge", lr_g=2e-3, lr_d=2e-3, beta1=0.0, beta2=0.99,
                    ema_kimg=10.0, augment="diffaug:color,translation,cutout", r1=0.0, bf16=True),
    ),
    "gpu-256": dict(
        model_args=dict(w_dim=512, mapping_layers=8, channel_base=32768, channel_max=512, mixing_prob=0.9,
                        d="projected", d_input_res=256, d_head_channels=128, d_proj_channels=[64, 128, 256, 512]),
        config=dict(res=256, z_dim=512, batch=64, loss="hinge", lr_g=2e-3, lr_d=2e-3, beta1=0.0, beta2=0.99,
                    ema_kimg=10.0, augment="diffaug:color,translation,cutout", r1=0.0, bf16=True),
    ),
    "gpu-512": dict(
        model_args=dict(w_dim=512, mapping_layers=8, channel_base=32768, channel_max=512, mixing_prob=0.9,
                        d="resnet", d_channel_base=32768, d_channel_max=512),
        # lazy R1 every 16 steps (StyleGAN2's): with R1 at every step the H200 ran 24.7 images/s
        config=dict(res=512, z_dim=512, batch=32, loss="ns", lr_g=2.5e-3, lr_d=2.5e-3, beta1=0.0, beta2=0.99,
                    ema_kimg=10.0, augment="ada:bgc,target=0.6,speed=500000", r1=8.0, r1_every=16, bf16=True),
    ),
}


def get_preset(name: str) -> dict:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]


def preset_config(name: str) -> dict:
    """TrainConfig fields for a preset (model="style", model_args naming the preset).

    Callers apply their own explicit options on top: `TrainConfig(**{**preset_config(p), **mine})`.
    """
    preset = get_preset(name)
    return {"model": "style", **preset["config"], "model_args": {"preset": name}}
