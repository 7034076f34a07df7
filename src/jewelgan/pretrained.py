"""Models ready to use: the one shipped inside the package, and any exported model folder.

    import jewelgan
    model = jewelgan.load_model()                      # the shipped default
    images = model.generate(8, attrs={"category": "ring", "metal": "rose_gold"}, seed=0)
    cutouts = model.generate(8, transparent=True)      # RGBA, where the model learnt alpha
    rings, metals = model.variants("metal", seed=3)    # one piece in every metal
    strip = model.interpolate(3, 11, steps=8)          # one piece morphing into another

The shipped models live in jewelgan/pretrained/<name>/ (a model folder each: model.json,
generator.safetensors, README.md with the training data and measured figures, generator.onnx).
`jewelgan models` lists them, and the model folders found in the directories it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHIPPED_DIR = Path(__file__).parent / "pretrained"
DEFAULT_MODEL = "default64"


class ModelNotFound(ValueError):
    """A model name or path that names no model folder."""


def shipped_models() -> dict[str, Path]:
    """Name -> folder of each model shipped in the package."""
    if not SHIPPED_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(SHIPPED_DIR.iterdir()) if (p / "model.json").is_file()}


def resolve_model(name_or_path: str | Path | None = None) -> Path:
    """A shipped model's name, a model folder, a run or checkpoint folder -> its path (None = the default)."""
    shipped = shipped_models()
    if name_or_path is None:
        if DEFAULT_MODEL not in shipped:
            raise ModelNotFound(f"the default model {DEFAULT_MODEL!r} is not installed (looked in {SHIPPED_DIR}); "
                                "pass --model or --run")
        return shipped[DEFAULT_MODEL]
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    path = Path(name_or_path)
    if not path.exists():
        known = ", ".join(shipped) or "none"
        raise ModelNotFound(f"{path}: no such model folder, run or checkpoint (shipped models: {known})")
    return path


@dataclass
class Model:
    """A loaded generator with its attribute vocabulary; generate() is sample_images with the model bound."""

    G: object
    schema: object
    info: dict

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
        from jewelgan.generate import sample_inputs, takes_truncation

        return sample_inputs(self.schema, self.G.z_dim, n, attrs, seed, truncation, self.label_rows,
                             truncate_z=not takes_truncation(self.G))

    def variant_inputs(self, attribute: str, seed: int = 0, attrs: dict[str, str] | None = None,
                       truncation: float = 1.0):
        """(z, labels, values): the piece of `seed` in every value of `attribute`."""
        from jewelgan.generate import takes_truncation, variant_inputs

        return variant_inputs(self.schema, self.G.z_dim, attribute, seed, attrs, truncation, self.label_rows,
                              truncate_z=not takes_truncation(self.G))

    def render(self, z, labels, truncation: float = 1.0, transparent: bool = False,
               batch: int | None = None) -> np.ndarray:
        """Drawn inputs -> uint8 images (RGBA cut-outs with transparent)."""
        from jewelgan.generate import FORWARD_BATCH, run_generator

        return run_generator(self.G, z, labels, truncation, batch or FORWARD_BATCH, transparent)

    def generate(self, n: int, attrs: dict[str, str] | None = None, seed: int = 0, truncation: float = 1.0,
                 transparent: bool = False, batch: int | None = None) -> np.ndarray:
        """n images, uint8 (n, R, R, 3) as seen on the backdrop, or (n, R, R, 4) cut-outs with transparent.
        Image i is reproducible alone from seed + i; attributes left out are drawn as in training."""
        z, labels, _ = self.sample_inputs(n, attrs, seed, truncation)
        return self.render(z, labels, truncation, transparent, batch)

    def variants(self, attribute: str, seed: int = 0, attrs: dict[str, str] | None = None,
                 truncation: float = 1.0, transparent: bool = False) -> tuple[np.ndarray, list[str]]:
        """One piece in every value of an attribute: model.variants("metal", seed=3) -> (images, metals)."""
        z, labels, values = self.variant_inputs(attribute, seed, attrs, truncation)
        return self.render(z, labels, truncation, transparent), values

    def interpolate_raw(self, seed_a: int, seed_b: int, steps: int = 8, attrs: dict[str, str] | None = None,
                        truncation: float = 1.0):
        """(uint8 images with every channel, label rows) of the strip; see generate.interpolate_images."""
        from jewelgan.generate import FORWARD_BATCH, interpolate_images

        return interpolate_images(self.G, self.schema, seed_a, seed_b, steps, attrs, truncation, self.label_rows,
                                  FORWARD_BATCH)

    def interpolate(self, seed_a: int, seed_b: int, steps: int = 8, attrs: dict[str, str] | None = None,
                    truncation: float = 1.0, transparent: bool = False) -> np.ndarray:
        """`steps` images morphing from seed_a's piece into seed_b's (both ends included)."""
        from jewelgan.generate import finish_images

        return finish_images(self.interpolate_raw(seed_a, seed_b, steps, attrs, truncation)[0], transparent)


def load_model(name_or_path: str | Path | None = None, device: str = "cpu", compile: bool = False) -> Model:
    """The shipped default (no argument), a shipped model by name, or a model/run/checkpoint folder.

    compile: run G through torch.compile (about twice the images/s on a CPU, benchmarks/generate_throughput.py;
    the first call of each batch size compiles, which takes about a minute)."""
    import torch

    from jewelgan.generate import load_generator

    G, schema, info = load_generator(resolve_model(name_or_path), device)
    if compile:
        G = torch.compile(G, dynamic=False)
    return Model(G, schema, info)


def describe(path: Path) -> dict:
    """What `jewelgan models` shows of a model folder (reads model.json only, no weights)."""
    from jewelgan.formats import read_tagged_json
    from jewelgan.model_folder import FORMAT, VERSION, ModelFolderError

    meta = read_tagged_json(path / "model.json", FORMAT, VERSION, ModelFolderError)
    cfg = meta.get("config", {})
    return {"path": str(path), "model": meta.get("model"), "res": cfg.get("res"), "alpha": cfg.get("alpha") is True,
            "kimg": meta.get("kimg"), "attributes": meta.get("model_schema", {}).get("attributes", {}),
            "evaluation": (meta.get("evaluation") or {}).get("metrics", {})}


def list_models(dirs: list[str | Path] = ()) -> list[tuple[str, dict]]:
    """(name, description) of the shipped models, then of every model folder directly inside `dirs`."""
    from jewelgan.model_folder import ModelFolderError

    found = list(shipped_models().items())
    for d in map(Path, dirs):
        if (d / "model.json").is_file():
            found.append((str(d), d))
        elif d.is_dir():
            found += [(str(p), p) for p in sorted(d.iterdir()) if (p / "model.json").is_file()]
    out = []
    for name, path in found:
        try:
            out.append((name, describe(path)))
        except (ModelFolderError, OSError) as e:
            out.append((name, {"path": str(path), "error": str(e)}))
    return out
