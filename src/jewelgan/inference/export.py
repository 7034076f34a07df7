"""Export: a run's generator alone as a model folder (safetensors plus JSON, with a model card; layout in
model_folder.py), optionally with an ONNX graph beside it. A model folder is what `generate`, `serve` and
other users load; it carries no optimiser or D state.

The card states what a user needs to trust the model: the training data (archive file name, hash, count), the
training time and hardware, and, when an evaluation is given (`jewelgan evaluate --out eval.json`), the
measured figures with the command that measured them.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path, PureWindowsPath

from jewelgan.runs.checkpoint import CheckpointError, open_checkpoint
from jewelgan.runs.rundir import RunDir, lineage_totals
from jewelgan.inference.folder import FORMAT, VERSION

FORMATS = ("safetensors", "onnx")
# evaluation figures carried into model.json and the card, in this order
CARD_METRICS = ("fid", "kid", "precision", "recall", "mem_flagged_share")


def save_pretrained(source: str | Path, out: str | Path, which: str = "ema", overwrite: bool = False,
                    onnx: bool = False, evaluation: str | Path | None = None) -> Path:
    """Export the generator of a run directory (latest checkpoint) or checkpoint folder to `out`.

    onnx: also write generator.onnx (onnx_export.py). evaluation: a `jewelgan evaluate --out` JSON of
    this model, whose figures go into model.json ("evaluation") and the card."""
    from jewelgan.inference.errors import GenerateError

    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists (pass overwrite to replace it)")
    try:
        ckpt = open_checkpoint(source)
    except CheckpointError as e:
        raise GenerateError(str(e)) from None
    name = "G_ema" if which == "ema" and ckpt.has("G_ema") else "G"
    state = ckpt.state
    meta = {
        "format": FORMAT, "version": VERSION, "model": state["config"]["model"], "which": which,
        "step": state["step"], "kimg": state.get("kimg", 0.0), "config": state["config"],
        "model_schema": state["model_schema"], "label_rows": state.get("label_rows"),
        "archive": state.get("archive"), "source": str(ckpt.path.resolve()),
        "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "training": _training(ckpt),
    }
    if evaluation is not None:
        meta["evaluation"] = _evaluation(Path(evaluation))
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        shutil.copyfile(ckpt.path / f"{name}.safetensors", tmp / "generator.safetensors")
        (tmp / "model.json").write_text(json.dumps(meta, indent=1) + "\n")
        if onnx:
            from jewelgan.inference.loading import load_generator
            from jewelgan.inference.onnx_export import export_onnx

            G, schema, _ = load_generator(tmp)
            export_onnx(G, len(schema), tmp / "generator.onnx")
        (tmp / "README.md").write_text(_card(meta, onnx))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    os.rename(tmp, out)
    return out


def _training(ckpt) -> dict:
    """Time, images and hardware of the run behind a checkpoint (its run.json)."""
    info = {"seconds": round(float(ckpt.state.get("elapsed_s", 0.0)), 1), "world": ckpt.state.get("world", 1)}
    run = RunDir.of(ckpt.path).provenance()
    if run:
        info["hardware"] = {k: run[k] for k in ("cpu", "gpu", "platform") if k in run}
        info["versions"] = run.get("versions", {})
        info["git"] = run.get("git")
        if run.get("init_from"):
            info["init_from"] = run["init_from"]
    return info


def _evaluation(path: Path) -> dict:
    from jewelgan.inference.errors import GenerateError

    try:
        result = json.loads(path.read_text())
        metrics = result["metrics"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise GenerateError(f"{path}: not a `jewelgan evaluate --out` result ({e})") from None
    figures = {k: metrics[k] for k in CARD_METRICS if k in metrics}
    attrs = {a: round(s["accuracy"], 4) for a, s in result.get("details", {}).get("attr", {}).items()}
    return {"n": result.get("n"), "reference": result.get("archive"), "content_hash": result.get("content_hash"),
            "metrics": figures, "attribute_accuracy": attrs, "file": path.name}


def _continued(init_from: dict | None, kimg: float, seconds: float) -> list[str]:
    """The card's line for a generator that started from another (train --init-from), with the totals."""
    if not init_from:
        return []
    before_kimg, before_s = lineage_totals(init_from)
    return [f"- G started from `{init_from['source']}` ({init_from['kimg']:.1f} kimg, {init_from['seconds'] / 3600:.2f} h"
            f"; D fresh): {before_kimg + kimg:.1f} kimg, {(before_s + seconds) / 3600:.2f} h of training in all"]


def _archive_name(path: str | None) -> str:
    """An archive as the card names it: by file name, beside its content hash. The card travels with the
    model, and the folders of the machine it was trained on mean nothing to its readers (model.json keeps
    the full path). PureWindowsPath splits on both / and \\, so a path from either kind of machine works."""
    return f"`{PureWindowsPath(path).name}`" if path else "an unnamed archive"


def _card(meta: dict, onnx: bool) -> str:
    cfg = meta["config"]
    attrs = meta["model_schema"].get("attributes", {})
    training = meta.get("training", {})
    hw = training.get("hardware", {})
    cpu = hw.get("cpu", {})
    device = (hw.get("gpu") or {}).get("name") if isinstance(hw.get("gpu"), dict) else None
    device = device or (f"{cpu.get('model', 'CPU')}, {cpu.get('cores', '?')} cores" if cpu else "unknown")
    archive = meta.get("archive") or {}
    alpha = cfg.get("alpha") is True
    lines = [
        f"# jewelgan model: {meta['model']} at {cfg['res']} px" + (" with alpha (transparent cut-outs)" if alpha else ""),
        "",
        "## Training",
        f"- data: {_archive_name(archive.get('path', cfg['data']))}, {archive.get('count', '?')} images"
        + (f" (archive {archive['content_hash']})" if archive.get("content_hash") else ""),
        f"- {meta['kimg']:.1f} kimg ({meta['step']} steps) in {training.get('seconds', 0) / 3600:.2f} h on {device}"
        + (f" x {training['world']} processes" if training.get("world", 1) > 1 else ""),
        *_continued(training.get("init_from"), meta["kimg"], training.get("seconds", 0)),
        f"- recipe: model_args {json.dumps({k: v for k, v in cfg['model_args'].items() if k != 'preset'})}, "
        f"loss {cfg['loss']}, batch {cfg['batch']}, seed {cfg['seed']}; weights: {meta['which']}",
        "- conditioning: " + ("; ".join(f"{k}: {', '.join(v)}" for k, v in attrs.items()) or "none"),
    ]
    ev = meta.get("evaluation")
    if ev:
        lines += ["", "## Measured", f"Against {_archive_name(ev.get('reference'))}"
                  + (f" (archive {ev['content_hash']})" if ev.get("content_hash") else "")
                  + f" with n = {ev.get('n')} generated images "
                  f"(`jewelgan evaluate --model THIS_FOLDER --data ARCHIVE --n {ev.get('n')} --out {ev.get('file')}`):", ""]
        lines += [f"- {k}: {v:.4g}" for k, v in ev["metrics"].items()]
        lines += [f"- attribute accuracy, {k}: {v:.3f}" for k, v in ev.get("attribute_accuracy", {}).items()]
    lines += [
        "", "## Use", "```python", "import jewelgan",
        "model = jewelgan.load_model('THIS_FOLDER')",
        "images = model.generate(16, attrs={'metal': 'rose_gold'}, seed=0)"
        + ("  # uint8 (16, R, R, 3); transparent=True: RGBA" if alpha else "  # uint8 (16, R, R, 3)"), "```", "",
        "Or: `jewelgan generate --model THIS_FOLDER --n 100 --out samples/`"
        + (" (add `--transparent` for cut-outs)" if alpha else ""),
    ]
    if onnx:
        lines += ["", "`generator.onnx` takes z (N, z_dim) float32, labels (N, A) int64 (-1 = any) and, for style "
                  "models, truncation (1,) float32, and returns images (N, R, R, C) uint8 (docs/onnx.md)."]
    return "\n".join(lines) + "\n"
