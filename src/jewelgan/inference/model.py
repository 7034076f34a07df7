"""One loaded model folder and everything a caller does with it: the one object the CLI, the HTTP server,
edit, try-on, the demo and the report draw images through.

    import jewelgan
    model = jewelgan.load_model()                      # the shipped default
    images = model.generate(8, attrs={"category": "ring", "metal": "rose_gold"}, seed=0)
    cutouts = model.generate(8, transparent=True)      # RGBA, where the model learnt alpha
    rings, metals = model.variants("metal", seed=3)    # one piece in every metal
    strip = model.interpolate(3, 11, steps=8)          # one piece morphing into another
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jewelgan.inference.catalog import resolve_model
from jewelgan.inference.errors import GenerateError
from jewelgan.inference.forward import (FORWARD_BATCH, finish_images, interpolate_images, mix_styles,
                                        run_generator, synthesize, takes_truncation)
from jewelgan.inference.inputs import sample_inputs, variant_inputs


@dataclass
class Model:
    """A loaded generator with its attribute vocabulary and training facts (info: model, step, kimg, res,
    z_dim, config, label_rows, path, which, noise)."""

    G: object
    schema: object
    info: dict
    stages: list = field(default_factory=list)  # upsampling stages (upsample/stage.py), from the model folder

    @property
    def sizes(self) -> list[int]:
        """Every size this model draws: its generator's, and each one its upsampling stages reach."""
        from jewelgan.upsample.stage import sizes

        return sizes(self.resolution, self.stages)

    @property
    def attributes(self) -> dict[str, list[str]]:
        return {name: list(values) for name, values in self.schema.attributes.items()}

    @property
    def has_alpha(self) -> bool:
        return self.info["config"].get("alpha") is True

    @property
    def resolution(self) -> int:
        return int(self.info["res"])

    @property
    def label_rows(self):
        """The training label distribution as an int array, made once (sampling reads it for every image)."""
        if not hasattr(self, "_label_rows"):
            rows = self.info.get("label_rows")
            self._label_rows = None if not rows else np.asarray(rows, dtype=np.int64)
        return self._label_rows

    # the inputs of each kind of request, drawn exactly as the CLI draws them (the HTTP server uses these)
    def sample_inputs(self, n: int, attrs: dict[str, str] | None = None, seed: int = 0, truncation: float = 1.0):
        """(z, labels, seeds) of n images; image i is seed + i."""
        return sample_inputs(self.schema, self.G.z_dim, n, attrs, seed, truncation, self.label_rows,
                             truncate_z=not takes_truncation(self.G))

    def variant_inputs(self, attribute: str, seed: int = 0, attrs: dict[str, str] | None = None,
                       truncation: float = 1.0):
        """(z, labels, values): the piece of `seed` in every value of `attribute`."""
        return variant_inputs(self.schema, self.G.z_dim, attribute, seed, attrs, truncation, self.label_rows,
                              truncate_z=not takes_truncation(self.G))

    def render(self, z, labels, truncation: float = 1.0, transparent: bool = False,
               batch: int | None = None, size: int | None = None, resize: bool = False) -> np.ndarray:
        """Drawn inputs -> uint8 images (RGBA cut-outs with transparent), at `size` px (default: the generator's)."""
        if size is None or size == self.resolution:
            return run_generator(self.G, z, labels, truncation, batch or FORWARD_BATCH, transparent)
        raw = synthesize(self.G, z, labels, truncation, batch or FORWARD_BATCH)
        return finish_images(self.enlarge(raw, labels, size, resize), transparent)

    def enlarge(self, raw: np.ndarray, labels, size: int, resize: bool = False) -> np.ndarray:
        """The generator's uint8 images (every channel) -> `size` px through the upsampling stages. A size no
        stage reaches is refused with the sizes there are, unless resize: then the largest reachable size not
        above it is resampled (Lanczos) to it."""
        from jewelgan.inference.cascade import plan, resample_to, upsample

        if size == self.resolution:
            return raw
        if resize and size not in self.sizes:
            below = [s for s in self.sizes if s <= size] or [self.resolution]
            return resample_to(self.enlarge(raw, labels, max(below)), size)
        return upsample(plan(self.resolution, self.stages, size), raw, labels, self.schema, FORWARD_BATCH)

    def generate(self, n: int, attrs: dict[str, str] | None = None, seed: int = 0, truncation: float = 1.0,
                 transparent: bool = False, batch: int | None = None, size: int | None = None,
                 resize: bool = False) -> np.ndarray:
        """n images, uint8 (n, S, S, 3) as seen on the backdrop, or (n, S, S, 4) cut-outs with transparent; S is
        `size` (one of model.sizes; default the generator's). Image i is reproducible alone from seed + i;
        attributes left out are drawn as in training."""
        z, labels, _ = self.sample_inputs(n, attrs, seed, truncation)
        return self.render(z, labels, truncation, transparent, batch, size, resize)

    def variants(self, attribute: str, seed: int = 0, attrs: dict[str, str] | None = None,
                 truncation: float = 1.0, transparent: bool = False, size: int | None = None,
                 resize: bool = False) -> tuple[np.ndarray, list[str]]:
        """One piece in every value of an attribute: model.variants("metal", seed=3) -> (images, metals)."""
        z, labels, values = self.variant_inputs(attribute, seed, attrs, truncation)
        return self.render(z, labels, truncation, transparent, size=size, resize=resize), values

    def interpolate_raw(self, seed_a: int, seed_b: int, steps: int = 8, attrs: dict[str, str] | None = None,
                        truncation: float = 1.0):
        """(uint8 images with every channel, label rows) of the strip; see forward.interpolate_images."""
        return interpolate_images(self.G, self.schema, seed_a, seed_b, steps, attrs, truncation, self.label_rows,
                                  FORWARD_BATCH)

    def interpolate(self, seed_a: int, seed_b: int, steps: int = 8, attrs: dict[str, str] | None = None,
                    truncation: float = 1.0, transparent: bool = False, size: int | None = None,
                    resize: bool = False) -> np.ndarray:
        """`steps` images morphing from seed_a's piece into seed_b's (both ends included)."""
        raw, labels = self.interpolate_raw(seed_a, seed_b, steps, attrs, truncation)
        if size is not None:
            raw = self.enlarge(raw, labels, size, resize)
        return finish_images(raw, transparent)

    def mix_styles(self, seed_coarse: int, seed_fine: int, cutoffs: list[int] | None = None,
                   attrs: dict[str, str] | None = None, truncation: float = 1.0):
        """(uint8 images with every channel, cutoffs): coarse styles of one seed, fine of another."""
        return mix_styles(self.G, self.schema, seed_coarse, seed_fine, cutoffs, attrs, truncation, self.label_rows,
                          FORWARD_BATCH)

    def generate_bulk(self, request, out: str | Path, progress: bool = False, should_stop=None,
                      on_progress=None) -> Path:
        """Write request.n images and OUT/manifest.jsonl, resumably; see bulk.BulkRequest."""
        from jewelgan.inference.bulk import generate_bulk

        return generate_bulk(self, request, out, progress, should_stop, on_progress)


def load_model(name_or_path: str | Path | None = None, device: str = "cpu", compile: bool = False,
               which: str = "ema", noise: str | None = None) -> Model:
    """The shipped default (no argument), a shipped model by name, or a model/run/checkpoint folder.

    which: "ema" (averaged weights) or "G" (raw) of a run; noise: see loading.load_generator.
    compile: run G through torch.compile (about twice the images/s on a CPU, benchmarks/generate_throughput.py;
    the first call of each batch size compiles, which takes about a minute)."""
    import torch

    from jewelgan.inference.loading import load_generator

    from jewelgan.upsample.stage import StageError, read_stages

    folder = resolve_model(name_or_path)
    G, schema, info = load_generator(folder, device, which, noise)
    if compile:
        G = torch.compile(G, dynamic=False)
        G.jewelgan_info = info
    try:
        stages = read_stages(folder)
    except StageError as e:
        raise GenerateError(str(e)) from None
    return Model(G, schema, info, stages)
