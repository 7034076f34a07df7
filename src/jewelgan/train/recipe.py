"""The default recipe: what `jewelgan train --data X --minutes M` trains when no model or preset is named.

The choice follows the time-to-quality measurements (docs/real-photos.md): on a CPU budget the style
model's `cpu-64` preset reaches the lowest FID at 64 px, ahead of the half-width DCGAN and the seed's MLP,
on the studio and on real product photos, so a CPU run trains at 64 px whatever the archive's resolution
(a larger one is downscaled; `--res` overrides). Below 64 px, where no preset was measured, the
half-width DCGAN is the choice. On a GPU the preset named for the resolution is taken; their throughput
is measured, their quality on jewelry not yet (docs/configs.md). Labels decide the conditioning: an
unlabelled archive trains unconditionally, without the terms that need labels.
"""

from __future__ import annotations

from dataclasses import dataclass

from jewelgan.data.archive import Archive
from jewelgan.train.guidance import TERMS

# the half-width DCGAN that the demo and the time-to-quality benchmark use
HALF_WIDTH_DCGAN = {"model": "dcgan", "model_args": {"ngf": 32, "ndf": 32}, "channels_last": True, "bf16": "auto"}
# TrainConfig fields that only work with labels: D's classifier and the guidance terms that need them
LABEL_TERMS = ("cls_weight", *(field for field, needs_labels in TERMS.values() if needs_labels))


@dataclass
class Recipe:
    fields: dict      # TrainConfig fields to apply under the user's own flags
    summary: str      # one line: what was chosen
    why: str          # the reason, with where it was measured


def recommend(archive: Archive, device: str = "cpu") -> Recipe:
    """The recipe measured best for this archive (size, resolution, labels) on this kind of device."""
    from jewelgan.models.presets import preset_config

    res, n, labelled = archive.resolution, len(archive), len(archive.schema) > 0
    size = f"{n:,} images at {res} px, {'labelled (' + ', '.join(archive.schema.names) + ')' if labelled else 'unlabelled'}"
    if device.startswith("cuda"):
        preset = "cpu-64" if res <= 64 else "gpu-128" if res <= 128 else "gpu-256" if res <= 256 else "gpu-512"
        fields = preset_config(preset)
        why = (f"GPU: the {preset} preset is the one sized for {min(res, 512)} px "
               f"({'measured on the studio and on real photos' if preset == 'cpu-64' else 'throughput measured, quality on jewelry not yet'})")
        summary = f"style model, preset {preset}"
    elif res >= 64:
        fields = preset_config("cpu-64")
        why = ("CPU: at 64 px the cpu-64 preset reached the lowest FID in 30 minutes, ahead of the half-width DCGAN "
               "and the seed's MLP, on the studio and on real product photos (docs/real-photos.md)")
        summary = "style model, preset cpu-64, at 64 px"
        if res > 64:
            why += f"; the {res} px archive is downscaled to 64 px, which a CPU budget can afford (--res {res} overrides)"
    else:
        fields = HALF_WIDTH_DCGAN
        why = f"CPU below 64 px: no preset was measured at {res} px; the half-width DCGAN is the fastest tested model"
        summary = "half-width DCGAN"
    fields = dict(fields)
    if not labelled:
        for name in LABEL_TERMS:
            if fields.get(name):
                fields[name] = 0.0
        why += "; no labels, so it trains unconditionally without the label terms"
    return Recipe(fields, f"{summary} for {size}", why)
