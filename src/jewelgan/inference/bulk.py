"""Bulk generation into a folder: images + manifest.jsonl, resumable, from a request object."""

from __future__ import annotations

import json
from pathlib import Path

from dataclasses import dataclass

import torch

from jewelgan.atomic import atomic_write_json
from jewelgan.inference.errors import GenerateError
from jewelgan.inference.forward import FORWARD_BATCH, takes_truncation
from jewelgan.inference.inputs import sample_inputs


@dataclass
class BulkRequest:
    """What to write: n images from seed on (image i is seed + i), attributes fixed as given (a dict, or CLI-style
    ["metal=rose_gold", ...]), truncation psi, images per forward pass (an image's bytes depend on its seed and
    this), file format, and RGBA cut-outs (png or webp) instead of images on the backdrop."""

    n: int
    attrs: dict[str, str] | list[str] | None = None
    seed: int = 0
    truncation: float = 1.0
    batch: int = FORWARD_BATCH
    fmt: str = "png"
    transparent: bool = False
    size: int | None = None      # one of the model's sizes (upsampling stages); None = the generator's own
    resize: bool = False         # a size no stage reaches is resampled (Lanczos) instead of refused


def generate_bulk(model, request: BulkRequest, out: str | Path, progress: bool = False, should_stop=None,
                  on_progress=None) -> Path:
    """Write request.n images of a loaded Model and OUT/manifest.jsonl (one line per image: file, seed,
    attributes, model, step).

    Resumable: images already listed in the manifest are skipped, so an interrupted job loses nothing; a
    folder holding a different job is refused. Unknown attribute names or values raise GenerateError.
    should_stop() is asked before each batch (True: return now, the job stays incomplete and resumable);
    on_progress(done, n) is told after each batch (the HTTP server's bulk jobs use both).
    """
    from jewelgan.image_files import check_format, encode_image

    try:
        fmt = check_format(request.fmt, request.transparent)
    except ValueError as e:
        raise GenerateError(str(e)) from None
    G, schema, info = model.G, model.schema, model.info
    if request.size is not None and not request.resize:
        from jewelgan.inference.cascade import plan

        plan(model.resolution, model.stages, request.size)  # refuses, naming the sizes there are, before writing
    n, attrs, seed, truncation, batch = request.n, request.attrs, request.seed, request.truncation, request.batch
    transparent, which, noise = request.transparent, info["which"], info["noise"]
    if isinstance(attrs, list):
        try:
            attrs = schema.parse_attrs(attrs)
        except ValueError as e:
            raise GenerateError(str(e)) from None
    attrs = dict(attrs or {})
    label_rows = model.label_rows
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    job = {"run": str(Path(info["path"]).resolve()), "model": info["model"], "step": info["step"], "which": which,
           "seed": seed, "attributes": attrs, "truncation": truncation, "format": fmt, "noise": noise,
           **({"transparent": True} if transparent else {}),
           **({"size": request.size, "resize": request.resize} if request.size else {})}
    job_file, manifest = out / "manifest.json", out / "manifest.jsonl"
    if job_file.is_file():
        old = json.loads(job_file.read_text())
        same = {k: old.get(k) for k in job} == job
        if not same:
            raise GenerateError(f"{out} already holds a different generation job ({job_file}); choose another --out")
    atomic_write_json(job_file, {**job, "n": n, "complete": False})
    done: set[int] = set()
    if manifest.is_file():
        for line in manifest.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill: that image is simply redone
            if (out / rec["file"]).is_file():
                done.add(int(rec["seed"]))
    todo = [i for i in range(n) if seed + i not in done]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, initial=n - len(todo), unit="img", desc="generate")
    with open(manifest, "a") as mf:
        for start in range(0, len(todo), batch):
            if should_stop is not None and should_stop():
                if bar:
                    bar.close()
                return out
            idx = todo[start:start + batch]
            zs, labs, seeds = [], [], []
            for i in idx:
                z, lab, s = sample_inputs(schema, G.z_dim, 1, attrs, seed + i, truncation, label_rows,
                                          truncate_z=not takes_truncation(G))
                zs.append(z), labs.append(lab), seeds.extend(s)
            images = model.render(torch.cat(zs), torch.cat(labs), truncation, transparent, batch, request.size,
                                  request.resize)
            for img, lab, s in zip(images, torch.cat(labs), seeds):
                name = f"{s:08d}.{fmt}"
                (out / name).write_bytes(encode_image(img, fmt))  # listed in the manifest only once written
                rec = {"file": name, "seed": s, "attributes": schema.decode(lab.numpy()),
                       "requested": attrs, "model": info["model"], "step": info["step"], "truncation": truncation,
                       "noise": info["noise"]}
                mf.write(json.dumps(rec) + "\n")
            mf.flush()
            if bar:
                bar.update(len(idx))
            if on_progress is not None:
                on_progress(n - len(todo) + start + len(idx), n)
    if bar:
        bar.close()
    atomic_write_json(job_file, {**job, "n": n, "complete": True})
    return out


def read_manifest(out: str | Path) -> list[dict]:
    return [json.loads(line) for line in (Path(out) / "manifest.jsonl").read_text().splitlines() if line.strip()]


