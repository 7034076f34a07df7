"""Which models exist: the shipped ones, and model folders on disk; a name or path -> a folder.

A model is used through jewelgan.inference.Model:

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

from pathlib import Path

from jewelgan.inference.errors import ModelNotFound

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
DEFAULT_MODEL = "default64"


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


def describe(path: Path) -> dict:
    """What `jewelgan models` shows of a model folder (reads model.json and stage file names, no weights)."""
    from jewelgan.formats import read_tagged_json
    from jewelgan.inference.folder import FORMAT, VERSION, ModelFolderError
    from jewelgan.upsample.stage import sizes, stage_pairs

    meta = read_tagged_json(path / "model.json", FORMAT, VERSION, ModelFolderError)
    cfg = meta.get("config", {})

    return {"path": str(path), "model": meta.get("model"), "res": cfg.get("res"), "alpha": cfg.get("alpha") is True,
            "sizes": sizes(cfg.get("res"), stage_pairs(path)),
            "kimg": meta.get("kimg"), "attributes": meta.get("model_schema", {}).get("attributes", {}),
            "evaluation": (meta.get("evaluation") or {}).get("metrics", {})}


def list_models(dirs: list[str | Path] = ()) -> list[tuple[str, dict]]:
    """(name, description) of the shipped models, then of every model folder directly inside `dirs`."""
    from jewelgan.inference.folder import ModelFolderError

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
