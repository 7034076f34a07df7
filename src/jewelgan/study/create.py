"""Drawing a study's images: n real images from the archive and n generated ones with the same mix of
attributes, at the same size, on the same kind of backdrop, encoded identically.

Nothing but the picture may tell them apart: both are the RGB image as seen (cut-outs on their
backdrop), both PNG at compression level 0, whose file size depends on the dimensions alone, with no
metadata. Each generated image copies the attributes of one real image (those the model knows), so the
attribute mix is the same on both sides; four more images (two of each) are the labelled calibration.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from jewelgan.study.store import StudyError, StudyStore

CALIBRATION_EACH = 2


def study_png(image: np.ndarray) -> bytes:
    """Uncompressed PNG: the same byte count for every image of one size, so size gives nothing away."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image[..., :3])).save(buf, format="PNG", compress_level=0)
    return buf.getvalue()


def create_study(out: str | Path, model_name_or_path, archive_path: str | Path, n: int = 100, seed: int = 0,
                 truncation: float = 1.0, overwrite: bool = False) -> Path:
    """Write a study file with n real and n generated test images and 2 + 2 calibration images."""
    import jewelgan
    from jewelgan.data.archive import Archive

    out = Path(out)
    if n < 1:
        raise StudyError(f"n must be >= 1, got {n}")
    if out.exists():
        if not overwrite:
            raise StudyError(f"{out} exists already (its answers would be lost); choose another --out")
        out.unlink()
    archive = Archive(archive_path)
    need = n + CALIBRATION_EACH
    if len(archive) < need:
        raise StudyError(f"{archive_path}: {len(archive)} images, the study needs {need} real ones (n + 2)")
    model = jewelgan.load_model(model_name_or_path)
    picked = np.random.default_rng(seed).choice(len(archive), size=need, replace=False)
    rows = []
    for k, idx in enumerate(picked.tolist()):
        role = "test" if k < n else "calibration"
        labels = {a: v for a, v in archive.label_dict(idx).items() if v is not None and v in model.attributes.get(a, [])}
        real = archive.rgb(idx)
        fake = model.generate(1, labels, seed=seed * 1_000_003 + k, truncation=truncation)[0]
        if fake.shape[0] != real.shape[0]:  # shown at one size: the generated image is resized to the archive's
            fake = np.asarray(Image.fromarray(fake).resize(real.shape[:2][::-1], Image.LANCZOS))
        rows.append((role, "real", labels, f"{archive.path.name}#{idx}", study_png(real)))
        rows.append((role, "generated", labels, f"seed {seed * 1_000_003 + k}", study_png(fake)))
    store = StudyStore(out, create=True)
    try:
        store.add_images(rows)
        store.set_meta(model=str(model.info.get("path")), archive=str(Path(archive_path).resolve()), n=n, seed=seed,
                       truncation=truncation, resolution=int(archive.resolution), kimg=model.info.get("kimg"))
    finally:
        store.close()
    return out
